#!/usr/bin/env python3
"""Soak: many short jobs and some experiments through one `trainyard server`
for a long time, with the server SIGKILLed and started again (at once) every
few minutes. Reports jobs per hour, the server's RSS over time (it should stay
flat), and the chaos invariants at the end: every job finished once with its
series complete and no step twice, every experiment with exactly maxTrials
trials, no process left, and SQLite's integrity check.

    /usr/bin/python3 bench/soak.py                       # the issue's run: 1,000 jobs, 10 experiments, 1 hour
    /usr/bin/python3 bench/soak.py --jobs 200 --experiments 3 --minutes 10 --kill-every 90

The baseline is the same server's first measured window: the RSS ratio
last/first says whether memory grows with work done.
"""
import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import BIN

STEPS = 5


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Server:
    def __init__(self, data, log):
        self.data, self.log = data, log
        self.start()

    def start(self):
        self.out = open(self.log, "a+")
        self.out.seek(0, 2)
        pos = self.out.tell()
        env = dict(os.environ, TRAINYARD_NODE_CPU="8")
        self.proc = subprocess.Popen([BIN, "--data-dir", self.data, "server", "--port", "0"], stdout=self.out,
                                     stderr=subprocess.STDOUT, env=env)
        for _ in range(600):
            self.out.seek(pos)
            for line in self.out.read().splitlines():
                if "listening on " in line:
                    self.url = line.split("listening on ")[1].split()[0]
                    return
            time.sleep(0.05)
        sys.exit("the server did not start; see " + self.log)

    def kill_and_restart(self):
        self.proc.kill()
        self.proc.wait()
        self.start()

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        for attempt in range(50):
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")
            except OSError:
                time.sleep(0.2)  # the server is being restarted
                req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        raise RuntimeError(f"{method} {path}: no answer")


def job_spec(i):
    return {"apiVersion": "trainyard.dev/v1", "kind": "TrainJob", "metadata": {"name": f"soak-{i}"},
            "spec": {"command": ["/bin/sh", "-c", f"for s in $(seq 1 {STEPS}); do echo step=$s acc=$s; sleep 0.05; done"],
                     "resources": {"cpu": "100m"}}}


def experiment_spec(i):
    return {"apiVersion": "trainyard.dev/v1", "kind": "Experiment", "metadata": {"name": f"soak-exp-{i}"},
            "spec": {"objective": {"metric": "loss", "goal": "minimize"}, "algorithm": {"name": "random"},
                     "earlyStopping": {"name": "median", "settings": {"min_trials_required": 2, "start_step": 2}},
                     "parameters": [{"name": "x", "type": "double", "min": 0, "max": 1}],
                     "parallelTrials": 3, "maxTrials": 8, "maxFailedTrials": 8, "seed": i,
                     "trialTemplate": {"spec": {"command": ["/bin/sh", "-c", "for s in 1 2 3 4; do echo step=$s loss=${trialParameters.x}; sleep 0.1; done"],
                                                "resources": {"cpu": "100m"}}}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--experiments", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--kill-every", type=float, default=180, help="mean seconds between server kills")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="ty-soak-")
    os.chmod(tmp, 0o711)
    data = os.path.join(tmp, "data")
    s = Server(data, os.path.join(tmp, "server.log"))
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    # Work is spread over the run: jobs and experiments are submitted at an even pace.
    plan = [("job", i) for i in range(args.jobs)] + [("exp", i) for i in range(args.experiments)]
    rng.shuffle(plan)
    pace = args.minutes * 60 * 0.8 / max(1, len(plan))
    next_kill = t0 + rng.expovariate(1 / args.kill_every)
    rss, kills, submitted = [], 0, 0
    next_sample = t0
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if submitted < len(plan) and now >= t0 + submitted * pace:
                kind, i = plan[submitted]
                body = {"yaml": json.dumps(job_spec(i) if kind == "job" else experiment_spec(i))}
                st, out = s.call("POST", "/api/v1/jobs" if kind == "job" else "/api/v1/experiments", body)
                if st not in (201, 409):  # 409: it was stored before a kill took the answer
                    raise RuntimeError(f"submit {kind} {i}: {st} {out}")
                submitted += 1
            if now >= next_kill:
                s.kill_and_restart()
                kills += 1
                next_kill = now + rng.expovariate(1 / args.kill_every)
            if now >= next_sample:
                r = rss_kib(s.proc.pid)
                if r:
                    rss.append((now - t0, r))
                next_sample = now + 10
            if submitted == len(plan):
                st, active = s.call("GET", "/api/v1/jobs?state=active&limit=1")
                st, exps = s.call("GET", "/api/v1/experiments")
                if active.get("total") == 0 and all(e["phase"] != "Running" for e in exps.get("items", [])):
                    break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        # Invariants.
        problems = []
        st, page = s.call("GET", "/api/v1/jobs?limit=1000&trials=false")
        jobs = {j["name"]: j for j in page.get("items", [])}
        done = [n for n, j in jobs.items() if n.startswith("soak-") and not n.startswith("soak-exp") and j["phase"] == "Succeeded"]
        for name in done:
            st, acc = s.call("GET", f"/api/v1/jobs/{name}/metrics/acc?maxPoints=100")
            if acc.get("step") != list(range(1, STEPS + 1)):
                problems.append(f"{name}: steps {acc.get('step')}")
        for i in range(args.experiments):
            st, tr = s.call("GET", f"/api/v1/experiments/soak-exp-{i}/trials?limit=100")
            nums = sorted(t["trial"] for t in tr.get("items", []))
            if st == 200 and nums != list(range(8)):
                problems.append(f"soak-exp-{i}: trials {nums}")
        s.proc.send_signal(signal.SIGTERM)
        s.proc.wait()
        db = sqlite3.connect(os.path.join(data, "trainyard.db"))
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        print(f"soak: {elapsed / 60:.1f} min, {kills} server kills, {submitted} submissions "
              f"({args.jobs} jobs, {args.experiments} experiments of 8 trials)")
        print(f"  jobs finished: {len(done)} of {args.jobs} -> {len(done) / (elapsed / 3600):.0f} jobs/hour")
        if rss:
            first = statistics.median(r for _, r in rss[: max(1, len(rss) // 5)])
            last = statistics.median(r for _, r in rss[-max(1, len(rss) // 5):])
            print(f"  server RSS: first fifth median {first / 1024:.1f} MiB, last fifth {last / 1024:.1f} MiB, "
                  f"max {max(r for _, r in rss) / 1024:.1f} MiB; ratio last/first {last / first:.2f}")
            print("  RSS over time (s, MiB): " + ", ".join(f"{t:.0f}:{r / 1024:.1f}" for t, r in rss[:: max(1, len(rss) // 12)]))
        print(f"  integrity_check: {integrity}; invariant problems: {len(problems)}")
        for p in problems[:20]:
            print("   ", p)
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
        subprocess.run(["pkill", "-9", "-f", data], check=False)


if __name__ == "__main__":
    main()
