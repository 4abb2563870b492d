"""Shared bits of the benchmarks: locating the binary, timing, statistics."""
import os
import statistics
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("TRAINYARD_BIN", os.path.join(ROOT, "build", "bin", "trainyard"))


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def quartiles(xs):
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]
