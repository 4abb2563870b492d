#!/usr/bin/env python3
"""DDP under Trainyard against the same ranks started by a plain shell script
with the same environment, side by side in one run (alternating, repeated).

Reports the ratio of time per training step (target <= 1.02) and of time
from launch to the first step.

    /usr/bin/python3 bench/ddp_overhead.py [--replicas 2] [--epochs 2] [--repeat 3]
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time

from common import BIN, ROOT

FMNIST = os.path.join(ROOT, "examples", "fmnist")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse(master_log, t0):
    """(steady-state seconds per step, seconds from launch to the first step)."""
    points = [(int(s), float(t)) for s, t in re.findall(r"step=(\d+) steps=\d+ loss=\S+ step_time=([0-9.]+)", master_log)]
    (s0, a0), (s1, a1) = points[0], points[-1]
    # step_time is the running average since training began; differences of the
    # running totals leave out the first steps (connection set-up, DDP buckets).
    steady = (a1 * s1 - a0 * s0) / (s1 - s0)
    first = float(re.search(r"first step done at ([0-9.]+)", master_log).group(1))
    return steady, first - t0


def run_shell(n, epochs, work):
    port = free_port()
    t0 = time.time()
    procs = []
    for rank in range(n):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(n), RANK=str(rank),
                   LOCAL_RANK="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONUNBUFFERED="1", TRAINYARD_OUTPUT_DIR=os.path.join(work, "shell-out"))
        log = open(os.path.join(work, f"shell-{rank}.log"), "w")
        procs.append((subprocess.Popen(["/usr/bin/python3", "ddp.py", "--epochs", str(epochs)], cwd=FMNIST, env=env,
                                       stdout=log, stderr=subprocess.STDOUT), log))
    for p, log in procs:
        assert p.wait() == 0
        log.close()
    with open(os.path.join(work, "shell-0.log")) as f:
        return parse(f.read(), t0)


def run_trainyard(n, epochs, work, i):
    data = os.path.join(work, "data")
    name = f"ddp-{i}"
    t0 = time.time()
    subprocess.run([BIN, "--data-dir", data, "run", "-q", os.path.join(FMNIST, "ddp.yaml"), "--set",
                    f"spec.replicas={n}", "--set", f"spec.args[1]={epochs}", "--set", f"metadata.name={name}"],
                   check=True, capture_output=True)
    log = subprocess.run([BIN, "--data-dir", data, "logs", name, "--replica", "master-0"], check=True,
                         capture_output=True, text=True).stdout
    return parse(log, t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ty-bench-ddp-")
    shell, ty = [], []
    for i in range(a.repeat):
        shell.append(run_shell(a.replicas, a.epochs, work))
        ty.append(run_trainyard(a.replicas, a.epochs, work, i))
    s_step = statistics.median(x[0] for x in shell)
    t_step = statistics.median(x[0] for x in ty)
    s_first = statistics.median(x[1] for x in shell)
    t_first = statistics.median(x[1] for x in ty)
    s_min = min(x[1] for x in shell)
    t_min = min(x[1] for x in ty)
    print(f"{a.replicas} ranks, {a.epochs} epochs, median of {a.repeat} alternating runs")
    print(f"time per step (steady state): shell {s_step * 1e3:.3f} ms, trainyard {t_step * 1e3:.3f} ms, "
          f"ratio {t_step / s_step:.3f} (target <= 1.02)")
    print(f"launch to first step, median: shell {s_first:.3f} s, trainyard {t_first:.3f} s, ratio {t_first / s_first:.3f}")
    print(f"launch to first step, best:   shell {s_min:.3f} s, trainyard {t_min:.3f} s, ratio {t_min / s_min:.3f}")
    print("  (torch's TCPStore client retries once a second when it connects before rank 0 listens,")
    print("   so single runs land ~1 s apart under either launcher; the best run shows the launcher's own cost)")
    print("  all runs (shell | trainyard), first-step s:",
          " ".join(f"{x[1]:.2f}" for x in shell), "|", " ".join(f"{x[1]:.2f}" for x in ty))


if __name__ == "__main__":
    main()
