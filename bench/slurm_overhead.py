#!/usr/bin/env python3
"""Slurm overhead: the same jobs submitted through `trainyard server --backend slurm` and with
plain `sbatch`, on the same real Slurm, in the same run: N single-task jobs and M four-node jobs.

For each job: submit-to-start latency (from the submitting request to the moment the job's
own command runs `date`), median and p99, and jobs/s over the whole burst (first submission
to last start). Trainyard's numbers include its own queue: it admits what the cluster's nodes
hold (sinfo) and hands the rest to Slurm as room frees, where plain sbatch queues everything
in Slurm at once.

    /usr/bin/python3 bench/slurm_overhead.py [--jobs 200] [--wide 20]

Starts a 4-node Slurm of its own (tests/slurm/cluster.sh) unless SLURM_CONF is set.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import BIN, ROOT


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def wait_for(paths, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(os.path.exists(p) and os.path.getsize(p) > 0 for p in paths):
            return
        time.sleep(0.05)
    missing = [p for p in paths if not (os.path.exists(p) and os.path.getsize(p) > 0)]
    sys.exit(f"timed out: {len(missing)} jobs never started (first: {missing[0]})")


def starts(paths):
    """The earliest `date +%s%N` each job wrote (a four-node job: its first task)."""
    out = []
    for p in paths:
        with open(p) as f:
            out.append(min(int(x) for x in f.read().split()) / 1e9)
    return out


def report(label, submitted, started):
    lat = [s - t for s, t in zip(started, submitted)]
    span = max(started) - min(submitted)
    return {"label": label, "median": statistics.median(lat), "p99": p99(lat), "jobs_per_s": len(lat) / span}


def via_sbatch(work, env, n, nodes):
    outs, submitted = [], []
    for i in range(n):
        out = os.path.join(work, f"sb-{nodes}-{i}")
        outs.append(out)
        submitted.append(time.time())
        subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", f"--nodes={nodes}", f"--ntasks={nodes}",
                        "--ntasks-per-node=1", "--mem-per-cpu=32M",
                        "--wrap", f"srun sh -c 'date +%s%N >> {out}'"], check=True, env=env, capture_output=True)
    wait_for(outs, 600)
    return submitted, starts(outs)


def via_trainyard(work, url, n, nodes):
    outs, submitted = [], []
    for i in range(n):
        out = os.path.join(work, f"ty-{nodes}-{i}")
        outs.append(out)
        spec = (f"apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {{name: ty-{nodes}-{i}}}\nspec:\n"
                + (f"  framework: pytorch\n  replicas: {nodes}\n  placement: spread\n" if nodes > 1 else "")
                + f"  command: [/bin/sh, -c, 'date +%s%N >> {out}']\n"
                "  resources: {cpu: 1, memory: 32Mi}\n  metricsCollector: {kind: None}\n")
        req = urllib.request.Request(url + "/api/v1/jobs", data=json.dumps({"yaml": spec}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        submitted.append(time.time())
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
    wait_for(outs, 600)
    return submitted, starts(outs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--wide", type=int, default=20)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ty-bench-slurm-")
    env = dict(os.environ)
    own = None
    if not env.get("SLURM_CONF"):
        own = os.path.join(work, "slurm")
        subprocess.run([os.path.join(ROOT, "tests/slurm/cluster.sh"), "start", own], check=True)
        if os.path.exists(os.path.join(own, "skipped")):
            sys.exit("Slurm is not installed (apt-get install slurm-wlm munge)")
        env["SLURM_CONF"] = os.path.join(own, "slurm.conf")
    server = subprocess.Popen([BIN, "--data-dir", os.path.join(work, "data"), "server", "--port", "0",
                               "--backend", "slurm", "--run-as", os.environ.get("USER", "root")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url = None
        for line in server.stdout:
            m = re.search(r"listening on (\S+)", line)
            if m:
                url = m.group(1)
                break
        if not url:
            sys.exit("trainyard server did not start")
        rows = []
        for nodes, n in ((1, a.jobs), (4, a.wide)):
            # sbatch first, then trainyard, each on an idle cluster.
            rows.append((nodes, report("sbatch", *via_sbatch(work, env, n, nodes)),
                         report("trainyard", *via_trainyard(work, url, n, nodes))))
        print(f"{'jobs':>14} {'path':>10} {'median s':>9} {'p99 s':>7} {'jobs/s':>7}")
        for nodes, sb, ty in rows:
            for r in (sb, ty):
                print(f"{(str(a.jobs if nodes == 1 else a.wide) + ' x ' + str(nodes) + '-node'):>14} {r['label']:>10} "
                      f"{r['median']:9.3f} {r['p99']:7.3f} {r['jobs_per_s']:7.1f}")
            print(f"{'':>14} {'ratio':>10} {ty['median'] / sb['median']:9.2f} {ty['p99'] / sb['p99']:7.2f} "
                  f"{ty['jobs_per_s'] / sb['jobs_per_s']:7.2f}   (trainyard / sbatch)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if own:
            subprocess.run([os.path.join(ROOT, "tests/slurm/cluster.sh"), "stop", own])


if __name__ == "__main__":
    main()
