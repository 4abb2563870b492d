#!/usr/bin/env python3
"""Early stopping pays: the Fashion-MNIST sweep (examples/fmnist/sweep.yaml: TPE,
16 trials, 4 in parallel, up to 9 epochs) with ASHA against the same sweep
without early stopping, same seed and trial budget, in one run.

Reports the CPU-seconds spent by all trial processes (their rusage, collected
by `trainyard run`) and the best test accuracy reached.

    /usr/bin/python3 bench/early_stopping.py [--trials 16]
"""
import argparse
import json
import os
import resource
import subprocess
import tempfile
import time

from common import BIN, ROOT

SWEEP = os.path.join(ROOT, "examples", "fmnist", "sweep.yaml")


def run(data, name, trials, early_stopping):
    sets = ["--set", f"metadata.name={name}", "--set", f"spec.maxTrials={trials}"]
    if not early_stopping:
        sets += ["--set", "spec.earlyStopping.name=none"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    subprocess.run([BIN, "--data-dir", data, "run", SWEEP, *sets], check=True, capture_output=True)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    d = json.loads(subprocess.run([BIN, "--data-dir", data, "describe", "experiment", name, "-o", "json"], check=True,
                                  capture_output=True, text=True).stdout)
    stopped = d["counts"].get("EarlyStopped", 0)
    return cpu, wall, d["best"]["objective"]["test_accuracy"], stopped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=16)
    a = ap.parse_args()
    data = tempfile.mkdtemp(prefix="ty-bench-es-")
    cpu_es, wall_es, best_es, stopped = run(data, "with-asha", a.trials, True)
    cpu_no, wall_no, best_no, _ = run(data, "without", a.trials, False)
    print(f"{a.trials} trials, TPE, 4 in parallel, up to 9 epochs each")
    print(f"without early stopping: {cpu_no:.0f} CPU-s ({wall_no:.0f} s wall), best test accuracy {best_no:.4f}")
    print(f"with ASHA:              {cpu_es:.0f} CPU-s ({wall_es:.0f} s wall), best test accuracy {best_es:.4f}, "
          f"{stopped} trials stopped early")
    print(f"CPU-seconds ratio (without / with): {cpu_no / cpu_es:.2f}x (target >= 2x); "
          f"accuracy difference {100 * (best_no - best_es):+.2f} points (target within 0.5)")


if __name__ == "__main__":
    main()
