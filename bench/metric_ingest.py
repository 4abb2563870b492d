#!/usr/bin/env python3
"""Metric ingestion: N `name=value` lines printed by a job, through the stdout
collector into the SQLite store, against a plain `wc -l` of the same file in
the same run.

    /usr/bin/python3 bench/metric_ingest.py [--lines 1000000] [--repeat 3]
"""
import argparse
import os
import random
import sqlite3
import subprocess
import tempfile

from common import BIN, timed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ty-bench-ingest-")
    lines = os.path.join(work, "lines.txt")
    rng = random.Random(1)
    with open(lines, "w") as f:
        for i in range(a.lines):
            f.write(f"loss={rng.random():.6f}\n")
    job = os.path.join(work, "job.yaml")
    with open(job, "w") as f:
        f.write(f"apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {{name: ingest}}\n"
                f"spec:\n  command: [/bin/cat, {lines}]\n")

    best_wc, best_ty = float("inf"), float("inf")
    for r in range(a.repeat):
        best_wc = min(best_wc, timed(lambda: subprocess.run(["wc", "-l", lines], check=True, capture_output=True)))
        data = os.path.join(work, f"data-{r}")
        best_ty = min(best_ty, timed(lambda: subprocess.run([BIN, "--data-dir", data, "run", "-q", job], check=True,
                                                            capture_output=True)))
        stored = sqlite3.connect(os.path.join(data, "trainyard.db")).execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        assert stored == a.lines, f"stored {stored} points, expected {a.lines}"

    print(f"lines: {a.lines} (best of {a.repeat})")
    print(f"wc -l:          {best_wc:.3f} s ({a.lines / best_wc:,.0f} lines/s)")
    print(f"trainyard run:  {best_ty:.3f} s end to end ({a.lines / best_ty:,.0f} points/s stored; target >= 500,000)")
    print(f"ratio (trainyard/wc): {best_ty / best_wc:.1f}x")


if __name__ == "__main__":
    main()
