#!/usr/bin/env python3
"""Launch overhead: N trivial jobs through `trainyard run` against the same N
commands started from a shell loop, side by side in one run.

Reports the ratio of total times, the added wall time per job, and the
submit-to-exec latency (from just before the launcher starts to the moment
the job's own process runs `date`), for trainyard and for the shell.

    /usr/bin/python3 bench/launch_overhead.py [--jobs 200]
"""
import argparse
import os
import subprocess
import tempfile
import time

from common import BIN, quartiles

JOB = """apiVersion: trainyard.dev/v1
kind: TrainJob
metadata: {{name: trivial}}
spec:
  command: [{cmd}]
  metricsCollector: {{kind: None}}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=200)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ty-bench-launch-")
    data = os.path.join(work, "data")
    true_job = os.path.join(work, "true.yaml")
    date_job = os.path.join(work, "date.yaml")
    with open(true_job, "w") as f:
        f.write(JOB.format(cmd="/bin/true"))
    with open(date_job, "w") as f:
        f.write(JOB.format(cmd="/bin/date, +%s%N"))

    # Interleave the two so machine noise hits both alike.
    shell, ty = 0.0, 0.0
    for i in range(a.jobs):
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", "/bin/true"], check=True)
        shell += time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([BIN, "--data-dir", data, "run", "-q", true_job, "--set", f"metadata.name=t-{i}"],
                       check=True, stderr=subprocess.DEVNULL)
        ty += time.perf_counter() - t0

    # Submit-to-exec latency.
    lat_shell, lat_ty = [], []
    for i in range(min(a.jobs, 100)):
        t0 = time.time_ns()
        out = subprocess.run(["/bin/sh", "-c", "/bin/date +%s%N"], check=True, capture_output=True, text=True).stdout
        lat_shell.append((int(out.strip()) - t0) / 1e6)
        t0 = time.time_ns()
        out = subprocess.run([BIN, "--data-dir", data, "run", date_job, "--set", f"metadata.name=d-{i}"],
                             check=True, capture_output=True, text=True).stdout
        lat_ty.append((int(out.strip().splitlines()[0]) - t0) / 1e6)

    qs, qt = quartiles(lat_shell), quartiles(lat_ty)
    print(f"jobs: {a.jobs}")
    print(f"shell loop:      {shell:.3f} s total, {shell / a.jobs * 1e3:.2f} ms/job")
    print(f"trainyard run:   {ty:.3f} s total, {ty / a.jobs * 1e3:.2f} ms/job")
    print(f"ratio (trainyard/shell): {ty / shell:.2f}x; added wall time per job: {(ty - shell) / a.jobs * 1e3:.2f} ms")
    print(f"submit-to-exec ms (q1/median/q3): shell {qs[0]:.2f}/{qs[1]:.2f}/{qs[2]:.2f}, "
          f"trainyard {qt[0]:.2f}/{qt[1]:.2f}/{qt[2]:.2f}; added median {qt[1] - qs[1]:.2f} ms (target < 5 ms)")


if __name__ == "__main__":
    main()
