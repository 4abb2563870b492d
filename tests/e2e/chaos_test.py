"""Chaos: SIGKILL `trainyard run` (and `trainyard server`) at random instants
drawn from a seed, start it again at once each time, and check at the end
that nothing was lost or duplicated: exactly maxTrials trials, no trial
number or job twice, every finished trial's metrics complete with no point
twice, no replica outliving its job, and a store that passes SQLite's
integrity check. A failure prints the seed; TRAINYARD_CHAOS_SEED=N replays
it. (docs/architecture.md, "Crash points", says what is covered.)"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import time

from common import E2E
from server_test import ServerE2E

# 12 trials, 3 at a time, the median rule stopping poor ones early: every
# trial reports steps 1..6 of a loss that depends on x (the best x is 0.3).
EXPERIMENT = """\
apiVersion: trainyard.dev/v1
kind: Experiment
metadata: {name: chaos}
spec:
  objective: {metric: loss, goal: minimize}
  algorithm: {name: random}
  earlyStopping: {name: median, settings: {min_trials_required: 2, start_step: 3}}
  parameters:
    - {name: x, type: double, min: 0, max: 1}
  parallelTrials: 3
  maxTrials: 12
  maxFailedTrials: 12
  seed: 7
  trialTemplate:
    spec:
      command: [/bin/sh, -c, "for s in 1 2 3 4 5 6; do echo step=$s loss=$(awk -v x=${trialParameters.x} -v s=$s 'BEGIN {print (x - 0.3)^2 + 1 / s}'); sleep 0.2; done"]
      resources: {cpu: 100m}
"""
STEPS = list(range(1, 7))


def chaos_seed():
    """(a generator, the message naming its seed): TRAINYARD_CHAOS_SEED, else a fresh seed, printed
    so that a failure can be replayed."""
    s = os.environ.get("TRAINYARD_CHAOS_SEED")
    seed = int(s) if s else random.SystemRandom().randrange(1 << 31)
    print(f"chaos seed {seed} (replay: TRAINYARD_CHAOS_SEED={seed})", flush=True)
    return random.Random(seed), f"chaos seed {seed}"


def counting_job(name, n, sleep=0.1, **spec):
    """A TrainJob (JSON) printing step=s acc=s for s in 1..n."""
    pause = f"; sleep {sleep}" if sleep else ""
    return json.dumps({"apiVersion": "trainyard.dev/v1", "kind": "TrainJob", "metadata": {"name": name},
                       "spec": {"command": ["/bin/sh", "-c", f"for s in $(seq 1 {n}); do echo step=$s acc=$s{pause}; done"],
                                "resources": {"cpu": "100m"}, **spec}})


class Invariants:
    """The end-state checks both variants share (self: an E2E test)."""

    def processes_of(self, root):
        """Live processes whose command line names `root` (this test's directory)."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace").replace("\0", " ")
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if root in cmd and state not in ("Z", "X"):
                found.append((int(pid), cmd[:200]))
        return found

    def check_store(self, msg):
        db = sqlite3.connect(os.path.join(self.data, "trainyard.db"))
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", msg)
            # No metric point twice: (job, name, step) is unique among the stored points.
            dup = db.execute("SELECT job_id, name_id, step, COUNT(*) FROM metrics GROUP BY job_id, name_id, step HAVING COUNT(*) > 1 LIMIT 5").fetchall()
            self.assertEqual(dup, [], f"{msg}: metric points stored twice")
        finally:
            db.close()

    def check_experiment(self, trials, msg):
        self.assertEqual(sorted(t["trial"] for t in trials), list(range(12)), f"{msg}: exactly maxTrials, each number once")
        jobs = [t["job"] for t in trials]
        self.assertEqual(len(set(jobs)), len(jobs), f"{msg}: a job for two trials")
        for t in trials:
            self.assertIn(t["state"], ("Succeeded", "EarlyStopped"), f"{msg}: {t}")
            got = self.tyjson("get", "metrics", t["job"], "--all", "--metric", "loss")["metrics"]
            steps = [m["step"] for m in got]
            self.assertEqual(len(steps), len(set(steps)), f"{msg}: trial {t['trial']} has a step twice: {steps}")
            if t["state"] == "Succeeded":
                self.assertEqual(steps, STEPS, f"{msg}: trial {t['trial']} is missing points")
            x = float(t["parameters"]["x"])
            for m in got:
                self.assertAlmostEqual(m["value"], (x - 0.3) ** 2 + 1 / m["step"], places=4, msg=f"{msg}: trial {t['trial']}")


class ChaosRun(E2E, Invariants):
    def test_run_killed_at_ten_random_instants_loses_and_duplicates_nothing(self):
        rng, msg = chaos_seed()
        path = self.write("chaos.yaml", EXPERIMENT)
        # A whole run takes a few seconds; the instants cover all of it: start-up and the
        # first trials' creation, metric ingestion, early-stopping decisions, completions.
        kills = 0
        while kills < 10:
            proc = self.popen("run", path)
            time.sleep(rng.uniform(0.05, 1.5))  # the chaos instant itself, drawn from the seed
            if proc.poll() is not None:
                break  # finished before its instant came
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            kills += 1
        self.assertGreaterEqual(kills, 5, f"{msg}: the experiment ended before the chaos did")
        p = self.ty("run", path, timeout=600)
        self.assertEqual(p.returncode, 0, f"{msg}\n{p.stderr[-3000:]}")
        trials = self.tyjson("get", "trials", "chaos")["items"]
        self.check_experiment(trials, msg)
        # `run`'s replicas die with it (and the last run ended every trial).
        self.wait_until("no process of this test left", lambda: not self.processes_of(self.dir), timeout=30)
        self.check_store(msg)
        print(f"{msg}: {kills} kills, {sum(t['runs'] for t in trials)} trial runs for 12 trials", flush=True)


class ChaosServer(ServerE2E, Invariants):
    store_url = None  # SQLite in the data dir; the PostgreSQL variant below sets one

    def check_store(self, msg):
        if not self.store_url:
            return super().check_store(msg)
        # PostgreSQL's own consistency: no point, trial or job twice, no row without its job.
        q = lambda sql: subprocess.run(["psql", self.store_url, "-tAc", sql], capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(q("SELECT COUNT(*) FROM (SELECT job_id, name_id, step FROM metrics GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d"), "0", msg)
        self.assertEqual(q("SELECT COUNT(*) FROM (SELECT experiment_id, number FROM trials GROUP BY 1, 2 HAVING COUNT(*) > 1) d"), "0", msg)
        self.assertEqual(q("SELECT COUNT(*) FROM (SELECT name FROM jobs GROUP BY 1 HAVING COUNT(*) > 1) d"), "0", msg)
        self.assertEqual(q("SELECT COUNT(*) FROM metrics m LEFT JOIN jobs j ON j.id = m.job_id WHERE j.id IS NULL"), "0", msg)
        self.assertEqual(q("SELECT COUNT(*) FROM attempts a LEFT JOIN jobs j ON j.id = a.job_id WHERE j.id IS NULL"), "0", msg)

    def start(self, *args, **kw):
        return super().start(*(("--store", self.store_url) if self.store_url else ()), *args, **kw)

    def test_server_killed_at_ten_random_instants_loses_and_duplicates_nothing(self):
        rng, msg = chaos_seed()
        self.env["TRAINYARD_NODE_CPU"] = "8"
        s = self.start()
        jobs = {}
        for i in range(4):
            n = 20 + 10 * i
            jobs[f"steady-{i}"] = n
            self.ty("submit", self.write(f"steady-{i}.yaml", counting_job(f"steady-{i}", n, restartPolicy="OnFailure")), check=0)
        self.ty("submit", self.write("chaos.yaml", EXPERIMENT), check=0)
        for k in range(10):
            time.sleep(rng.uniform(0.05, 1.5))  # the chaos instant, drawn from the seed
            s.proc.kill()  # SIGKILL, then at once a new server on the same data
            s.proc.wait()
            s = self.start()
        self.wait_until("the experiment to finish", lambda: self.call("GET", "/api/v1/experiments/chaos")[1].get("phase") == "Succeeded", timeout=300)
        for name, n in jobs.items():
            self.wait_phase(name, ["Succeeded"], timeout=120)
            st, acc = self.call("GET", f"/api/v1/jobs/{name}/metrics/acc?maxPoints=1000")
            # A replica the outage ended runs again (OnFailure) and reports from step 1: its
            # points are those of its last attempt, never two for a step.
            self.assertEqual(acc["step"], list(range(1, n + 1)), f"{msg}: {name}")
        st, trials = self.call("GET", "/api/v1/experiments/chaos/trials?limit=100")
        self.check_experiment(trials["items"], msg)
        self.assertEqual(self.call("GET", "/api/v1/jobs?label=trainyard.dev%2Fexperiment%3Dchaos")[1]["total"], 12,
                         f"{msg}: a trial's job twice")
        # Every job ended: no supervisor or replica of this test is left but the server itself.
        server_pid = s.proc.pid
        self.wait_until("no replica left", lambda: [p for p, _ in self.processes_of(self.dir) if p != server_pid] == [], timeout=30)
        self.check_store(msg)


class ChaosServerOnPostgres(ChaosServer):
    """The same chaos with the store on PostgreSQL (the test's server from the pg fixture)."""

    def setUp(self):
        super().setUp()
        self.store_url = self.pg_database()


class ChaosReplicas(ServerE2E, Invariants):
    def test_replicas_and_supervisors_killed_at_ten_random_instants(self):
        """SIGKILL of a running replica's whole process group, or of its supervisor
        (`trainyard-supervise`) alone, at instants drawn from a seed: every job is
        restarted per its policy and ends Succeeded, its series is its last
        attempt's (no step twice), and nothing of an ended attempt is left."""
        rng, msg = chaos_seed()
        self.env["TRAINYARD_NODE_CPU"] = "8"
        s = self.start()
        n = 80  # 8 s each: the ten instants (0.1 to 1 s apart) fall while they run
        names = [f"worker-{i}" for i in range(4)]
        for name in names:
            self.ty("submit", self.write(f"{name}.yaml", counting_job(name, n, restartPolicy="OnFailure", backoffLimit=20)), check=0)
        kills = []
        while len(kills) < 10:
            time.sleep(rng.uniform(0.1, 1.0))  # the chaos instant, drawn from the seed
            name = rng.choice(names)
            whole_group = rng.random() < 0.5
            st, j = self.call("GET", f"/api/v1/jobs/{name}")
            running = [a for a in j.get("attempts", []) if a.get("state") == "Running" and a.get("pid")]
            if j.get("phase") != "Running" or not running:
                if all(self.api_phase(x) == "Succeeded" for x in names):
                    break
                continue
            pid = running[-1]["pid"]  # the supervisor, leader of the replica's process group
            try:
                os.killpg(pid, signal.SIGKILL) if whole_group else os.kill(pid, signal.SIGKILL)
                kills.append((name, "group" if whole_group else "supervisor"))
            except ProcessLookupError:
                pass
        print(f"{msg}: kills {kills}", flush=True)
        self.assertGreaterEqual(len(kills), 5, f"{msg}: the jobs ended before the chaos did")
        for name in names:
            self.wait_phase(name, ["Succeeded"], timeout=180)
            st, acc = self.call("GET", f"/api/v1/jobs/{name}/metrics/acc?maxPoints=1000")
            self.assertEqual(acc["step"], list(range(1, n + 1)), f"{msg}: {name}")
        # A kill that lands as a program has just printed its last line ends nothing it had
        # not finished; the others restart their job: some did.
        restarts = sum(self.call("GET", f"/api/v1/jobs/{name}")[1]["restarts"] for name in names)
        self.assertGreaterEqual(restarts, 1, f"{msg}: no kill restarted anything")
        print(f"{msg}: restarts " + ", ".join(f"{x}={self.call('GET', f'/api/v1/jobs/{x}')[1]['restarts']}" for x in names), flush=True)
        server_pid = s.proc.pid
        self.wait_until("no replica left", lambda: [p for p, _ in self.processes_of(self.dir) if p != server_pid] == [], timeout=30)
        self.check_store(msg)


class DiskFull(ServerE2E, Invariants):
    def test_a_full_disk_refuses_new_work_and_recovers(self):
        """The data directory on a small tmpfs that fills up: the server keeps running and
        answering, refuses new work with 507 and the reason, and takes work again once space
        is back; what was stored before is intact and the store passes its integrity check."""
        if os.geteuid() != 0:
            self.skipTest("LOUD SKIP: mounting a small tmpfs needs root; the full-disk behaviour is untested here")
        small = os.path.join(self.dir, "small")
        os.makedirs(small)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", small], check=True)
        self.addCleanup(lambda: subprocess.run(["umount", "-l", small], check=False))
        self.data = os.path.join(small, "data")
        self.start("--min-free-disk", "8Mi", data=self.data)
        job = lambda name, n: counting_job(name, n, sleep=0)
        self.ty("submit", self.write("before.yaml", job("before", 20)), check=0)
        self.wait_phase("before", ["Succeeded"])
        # Fill the file system to the last block.
        ballast = os.path.join(small, "ballast")
        with open(ballast, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        r = self.ty("submit", self.write("during.yaml", job("during", 20)))
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("free", r.stderr)
        self.assertIn("--min-free-disk", r.stderr)
        st, body = self.call("POST", "/api/v1/jobs", {"yaml": job("during", 20)})
        self.assertEqual(st, 507, body)
        self.assertEqual(body["error"]["code"], "InsufficientStorage")
        self.assertEqual(self.call("GET", "/healthz", raw=True)[0], 200)
        self.assertEqual(self.api_phase("before"), "Succeeded")
        self.assertIsNone(self.api_phase("during"))
        # Space returns: work is taken again, and runs to the end.
        os.remove(ballast)
        self.ty("submit", os.path.join(self.dir, "during.yaml"), check=0)
        self.wait_phase("during", ["Succeeded"])
        for name in ("before", "during"):
            st, acc = self.call("GET", f"/api/v1/jobs/{name}/metrics/acc?maxPoints=100")
            self.assertEqual(acc["step"], list(range(1, 21)), name)
        self.check_store("disk full")
