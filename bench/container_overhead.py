#!/usr/bin/env python3
"""Container start overhead: N trivial jobs with `image:` through `trainyard run` against the same
command with `podman run` directly (the same image, runtime, ulimits and --rm) and against the
job without a container (`--containers host`), interleaved in one run so the machine's noise
falls on all three alike.

Reports the median and p90 wall time of each, and the ratios trainyard/podman (the target:
<= 1.10, Trainyard adding at most 10% to podman run) and podman/host (what a container costs).

    /usr/bin/python3 bench/container_overhead.py [--jobs 50]

Builds the test image (tests/k8s/host_usr_image.sh) when Podman does not have it yet.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from common import BIN, ROOT

IMAGE = "localhost/trainyard-test:1"


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])}... failed ({p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50)
    a = ap.parse_args()
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        tar = tempfile.mktemp(suffix=".tar")
        subprocess.run([os.path.join(ROOT, "tests", "k8s", "host_usr_image.sh"), tar, IMAGE], check=True)
        os.remove(tar)
    work = tempfile.mkdtemp(prefix="ty-bench-containers-")
    data = os.path.join(work, "data")
    spec = os.path.join(work, "job.yaml")
    with open(spec, "w") as f:
        json.dump({"apiVersion": "trainyard.dev/v1", "kind": "TrainJob", "metadata": {"name": "trivial"},
                   "spec": {"image": IMAGE, "imagePullPolicy": "Never", "command": ["/bin/true"],
                            "volumes": [{"hostPath": "/usr", "mountPath": "/usr", "readOnly": True}],
                            "metricsCollector": {"kind": "None"}}}, f)
    # podman run as Trainyard runs it, without Trainyard: the same flags that matter.
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open("/proc/sys/kernel/pid_max") as f:
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], int(f.read()))
    podman = ["podman", "run", "--rm", "--runtime=runc", "--pull=never", "--init", "--network=host",
              "--log-driver=none", f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}",
              f"--volume={work}:{work}", f"--workdir={work}", "--volume=/usr:/usr:ro", "--entrypoint=/bin/true", IMAGE]
    runs = {"trainyard": [], "podman": [], "host": []}
    # One of each first, not counted: caches warm for all three.
    timed([BIN, "--data-dir", data, "run", "-q", spec, "--set", "metadata.name=warm"])
    timed(podman)
    for i in range(a.jobs):
        runs["trainyard"].append(timed([BIN, "--data-dir", data, "run", "-q", spec, "--set", f"metadata.name=c{i}"]))
        runs["podman"].append(timed(podman))
        runs["host"].append(timed([BIN, "--data-dir", data, "run", "-q", "--containers", "host", spec,
                                   "--set", f"metadata.name=h{i}"]))
    left = subprocess.run(["podman", "ps", "-a", "--filter", "label=trainyard.dev/job-uid", "--format", "{{.Names}}"],
                          capture_output=True, text=True).stdout.split()
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"{a.jobs} trivial jobs each, interleaved; wall time per job (ms):")
    for k, v in runs.items():
        print(f"  {k:10s} median {med[k] * 1000:7.1f}   p90 {p90(v) * 1000:7.1f}")
    print(f"ratio trainyard/podman run: median {med['trainyard'] / med['podman']:.2f}x, "
          f"p90 {p90(runs['trainyard']) / p90(runs['podman']):.2f}x (target <= 1.10)")
    print(f"ratio podman run/no container: median {med['podman'] / med['host']:.2f}x")
    print(f"containers left behind: {len(left)}")


if __name__ == "__main__":
    main()
