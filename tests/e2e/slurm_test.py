"""End-to-end: `trainyard run|server --backend slurm` on a real Slurm (the ctest fixture "slurm":
munged, slurmctld and 4 slurmd on this machine, tests/slurm/cluster.sh). Skipped, saying why,
where Slurm is not installed."""
import json
import os
import re
import signal
import subprocess
import time
import unittest

from common import BUILD_DIR, E2E, SOURCE_DIR, fixture_skip_reason, job_yaml

SLURM = os.environ.get("TRAINYARD_TEST_SLURM_DIR", "")
EXAMPLES = os.path.join(SOURCE_DIR, "examples", "fmnist")
MPI_ALLREDUCE = os.path.join(BUILD_DIR, "bin", "mpi_allreduce")


def skip_reason():
    return fixture_skip_reason(SLURM, "TRAINYARD_TEST_SLURM_DIR", "slurm")


def processes_of(slurm_job_id):
    """Pids of processes that belong to Slurm job `slurm_job_id` (SLURM_JOB_ID in their environment)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                if ") Z" in f.read():
                    continue
        except OSError:
            continue
        if f"SLURM_JOB_ID={slurm_job_id}".encode() in env:
            out.append(int(pid))
    return out


class SlurmE2E(E2E):
    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest("SKIPPED, no Slurm: " + why)

    def setUp(self):
        super().setUp()
        self.env["SLURM_CONF"] = os.path.join(SLURM, "slurm.conf")

    def tearDown(self):
        # A test that failed half-way leaves no Slurm job of its own behind (jobs outlive servers by design).
        q = self.slurm("squeue", "-h", "-o", "%i %Z")
        for line in q.stdout.splitlines():
            job_id, _, workdir = line.partition(" ")
            if workdir.startswith(self.dir):
                self.slurm("scancel", job_id)
        super().tearDown()

    def slurm(self, *args):
        return subprocess.run(list(args), capture_output=True, text=True, env=self.env, timeout=60)

    def run_slurm(self, spec, *args, check=0, timeout=600):
        p = self.ty("run", "--backend", "slurm", *args, spec, check=check, timeout=timeout)
        return p.stdout + p.stderr if check == 0 else p

    def slurm_ids(self, name):
        """The Slurm job ids of a Trainyard job's attempts, from their replicas' handles ("id/task")."""
        return sorted({a["handle"].split("/")[0] for a in self.job(name)["attempts"] if a.get("handle")})

    def checksums(self, name, replicas):
        sums = {}
        for r in replicas:
            log = self.ty("logs", name, "--replica", r, check=0).stdout
            m = re.search(r"parameter checksum (\S+)", log)
            self.assertIsNotNone(m, f"{r} printed no checksum: {log[-2000:]}")
            sums[r] = m.group(1)
        return sums

    def node_of(self, name):
        """The Slurm nodes a job's replicas ran on (each task's .started record)."""
        nodes = {}
        for a in self.job(name)["attempts"]:
            with open(a["logPath"][:-len(".log")] + ".started") as f:
                nodes[a["replica"]] = f.read().split()[0]
        return nodes


class Jobs(SlurmE2E):
    def test_ddp_with_4_replicas_on_4_nodes_and_2_per_node_on_2_nodes_agrees(self):
        replicas = ["master-0", "worker-0", "worker-1", "worker-2"]
        for name, placement in (("ddp-spread", "placement: spread"),
                                ("ddp-pairs", "slurm: {nodes: 2, tasksPerNode: 2}")):
            spec = self.write(f"{name}.yaml", f"""\
                apiVersion: trainyard.dev/v1
                kind: TrainJob
                metadata: {{name: {name}}}
                spec:
                  framework: pytorch
                  replicas: 4
                  {placement}
                  workingDir: {EXAMPLES}
                  command: [/usr/bin/python3, ddp.py]
                  args: [--epochs, "1", --train-limit, "4000"]
                  env: [{{name: GLOO_SOCKET_IFNAME, value: lo}}]
                  resources: {{cpu: 1, memory: 900Mi}}
                """)
            out = self.run_slurm(spec, timeout=900)
            self.assertIn(f"{name} Succeeded", out)
            sums = self.checksums(name, replicas)
            self.assertEqual(len(set(sums.values())), 1, f"{name}: ranks disagree: {sums}")
            nodes = self.node_of(name)
            per_node = sorted([list(nodes.values()).count(n) for n in set(nodes.values())])
            self.assertEqual(per_node, [1, 1, 1, 1] if name == "ddp-spread" else [2, 2], nodes)

    def test_fashion_mnist_trains_to_85_percent(self):
        spec = self.write("fmnist.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: fmnist-slurm}}
            spec:
              workingDir: {EXAMPLES}
              command: [/usr/bin/python3, train.py]
              args: [--epochs, "5", --batch-size, "128"]
              outputs: {{dir: {self.dir}/out}}
              resources: {{cpu: 2, memory: 1800Mi}}
            """)
        out = self.run_slurm(spec, timeout=900)
        self.assertIn("fmnist-slurm Succeeded", out)
        d = self.job("fmnist-slurm")
        self.assertGreaterEqual(d["lastMetrics"]["test_accuracy"]["value"], 0.85, d["lastMetrics"])
        self.assertTrue(os.path.exists(os.path.join(self.dir, "out", "model.pt")))
        # It ran as a Slurm job of Trainyard's name.
        ids = self.slurm_ids("fmnist-slurm")
        self.assertEqual(len(ids), 1)

    def test_a_kubeflow_pytorchjob_runs_unchanged(self):
        replica = lambda role: f"""\
    {role}:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers:
            - name: pytorch
              image: docker.io/kubeflow/pytorch-example:latest
              command: [/bin/sh, -c, 'echo "rank $RANK of $WORLD_SIZE, master $MASTER_ADDR:$MASTER_PORT"']
              resources: {{limits: {{cpu: "1", memory: 256Mi}}}}
"""
        spec = self.write("pytorchjob.yaml", "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: kf-slurm}\n"
                          "spec:\n  pytorchReplicaSpecs:\n" + replica("Master") + replica("Worker"))
        out = self.run_slurm(spec)
        self.assertIn("kf-slurm Succeeded", out)
        self.assertRegex(out, r"rank 0 of 2, master localhost:\d+")  # the master's NodeAddr, bound on the node
        self.assertRegex(out, r"rank 1 of 2, master localhost:\d+")

    def test_a_tfjob_gets_tf_config_with_the_nodes_addresses(self):
        spec = self.write("tfjob.yaml", """\
            apiVersion: kubeflow.org/v1
            kind: TFJob
            metadata: {name: tf-slurm}
            spec:
              tfReplicaSpecs:
                Worker:
                  replicas: 2
                  restartPolicy: Never
                  template:
                    spec:
                      containers:
                        - name: tensorflow
                          image: tensorflow/tensorflow:2.13.0
                          command: [/bin/sh, -c, 'echo "TF_CONFIG=$TF_CONFIG"']
                          resources: {limits: {cpu: "1", memory: 128Mi}}
            """)
        out = self.run_slurm(spec)
        self.assertIn("tf-slurm Succeeded", out)
        configs = [json.loads(line.split("TF_CONFIG=", 1)[1]) for line in out.splitlines() if "TF_CONFIG={" in line]
        self.assertEqual(len(configs), 2, out)
        for c in configs:  # bound on the node: each worker's NodeAddr and its port, no $(VAR) left
            self.assertEqual(len(c["cluster"]["worker"]), 2)
            self.assertTrue(all(re.fullmatch(r"localhost:\d+", w) for w in c["cluster"]["worker"]), c)
        self.assertEqual(sorted(c["task"]["index"] for c in configs), [0, 1])

    def test_roles_of_different_shapes_run_as_one_heterogeneous_job(self):
        # A light master and two 2-CPU workers: each role gets its own shape, not the largest.
        def role(cpu, memory, replicas):
            return {"replicas": replicas, "restartPolicy": "Never", "template": {"spec": {"containers": [{
                "name": "pytorch", "image": "docker.io/kubeflow/pytorch-example:latest", "workingDir": EXAMPLES,
                "command": ["/usr/bin/python3", "ddp.py", "--epochs", "1", "--train-limit", "2000"],
                "env": [{"name": "GLOO_SOCKET_IFNAME", "value": "lo"}],
                "resources": {"limits": {"cpu": cpu, "memory": memory}}}]}}}
        spec = self.write("het.yaml", json.dumps({
            "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "het-ddp"},
            "spec": {"pytorchReplicaSpecs": {"Master": role("1", "700Mi", 1), "Worker": role("2", "900Mi", 2)}}}))
        out = self.run_slurm(spec, timeout=900)
        self.assertIn("het-ddp Succeeded", out)
        sums = self.checksums("het-ddp", ["master-0", "worker-0", "worker-1"])
        self.assertEqual(len(set(sums.values())), 1, f"ranks disagree: {sums}")
        # Slurm still lists the ended job (MinJobAge): two components, each of its role's shape.
        [job_id] = self.slurm_ids("het-ddp")
        shown = self.slurm("scontrol", "show", "job", job_id).stdout
        components = re.findall(r"HetJobOffset=(\d+).*?NumTasks=(\d+) CPUs/Task=(\d+)", shown, re.S)
        self.assertEqual(sorted(components), [("0", "1", "1"), ("1", "2", "2")], shown)

    def test_an_mpijob_runs_mpirun_inside_the_allocation(self):
        # Kubeflow's MPIJob: the workers' slots are the Slurm job's tasks; the launcher's mpirun
        # starts the ranks on the nodes Slurm chose (Open MPI reads the allocation itself).
        spec = self.write("mpijob.yaml", json.dumps({
            "apiVersion": "kubeflow.org/v1", "kind": "MPIJob", "metadata": {"name": "mpi-slurm"},
            "spec": {"slotsPerWorker": 2, "runPolicy": {"backoffLimit": 0}, "mpiReplicaSpecs": {
                "Launcher": {"replicas": 1, "template": {"spec": {"containers": [{
                    "name": "mpi", "image": "mpioperator/openmpi:latest",
                    "command": ["mpirun", "-np", "4", MPI_ALLREDUCE],
                    # The test's four "nodes" are one host: Open MPI's shared-memory segments, named
                    # by host and local rank, would collide between them; TCP between all ranks.
                    "env": [{"name": "OMPI_MCA_btl", "value": "self,tcp"}],
                    "resources": {"limits": {"cpu": "100m", "memory": "256Mi"}}}]}}},
                "Worker": {"replicas": 2, "template": {"spec": {"containers": [{
                    "name": "mpi", "image": "mpioperator/openmpi:latest", "command": ["/usr/sbin/sshd", "-De"],
                    "resources": {"limits": {"cpu": "2", "memory": "512Mi"}}}]}}}}}}))
        out = self.run_slurm(spec, timeout=600)
        self.assertIn("mpi-slurm Succeeded", out)
        self.assertIn("world_size=4 allreduce_sum=10", out)
        nodes = re.findall(r"rank (\d) of 4 on \S+ node (node\d): allreduce sum 10", out)
        self.assertEqual(sorted(r for r, _ in nodes), ["0", "1", "2", "3"], out)
        self.assertEqual(len({n for _, n in nodes}), 2, f"4 slots of 1 CPU on 2-CPU nodes: two nodes, {nodes}")
        # Only the launcher is a replica of Trainyard's; the workers are the allocation's slots.
        self.assertEqual({a["replica"] for a in self.job("mpi-slurm")["attempts"]}, {"launcher-0"})

    def test_more_than_the_partition_has_is_refused_or_waits_with_slurms_reason(self):
        # More CPUs than any node has: refused at submit, naming the field.
        big = self.write("big.yaml", job_yaml("too-big", "true", "resources: {cpu: 16}"))
        p = self.run_slurm(big, check=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no node can ever hold this job: cpu (needs 16, 2 available)", p.stderr + p.stdout)
        # More nodes than the partition has (what only Slurm knows): pending, with Slurm's reason.
        wide = self.write("wide.yaml", job_yaml("too-wide", "true", "framework: pytorch", "replicas: 8",
                                                "slurm: {nodes: 8, tasksPerNode: 1}",
                                                "resources: {cpu: 1, memory: 64Mi}"))
        run = self.popen("run", "--backend", "slurm", wide)
        try:
            def waiting():
                d = self.ty("describe", "job", "too-wide", "-o", "json")
                return d.returncode == 0 and "Partition" in json.loads(d.stdout).get("message", "")
            self.wait_until("the job pending with Slurm's reason", waiting, timeout=60)
            msg = self.job("too-wide")["message"]
            self.assertRegex(msg, r"not started yet: Partition\w+ \(Slurm job \d+ is PENDING\)")
        finally:
            run.send_signal(signal.SIGINT)  # `trainyard run` cancels its job on Ctrl-C
            run.communicate(timeout=120)
        ids = self.slurm_ids("too-wide") or []
        for i in ids:
            q = self.slurm("squeue", "-h", "-j", i, "-o", "%T")
            self.assertNotIn("PENDING", q.stdout)


class Experiments(SlurmE2E):
    def test_a_trial_directory_of_its_own_is_refused_not_shared(self):
        """Katib's absolute File collector path: on Slurm the nodes' processes cannot get a
        directory of their own, so the trial fails saying why instead of sharing one file."""
        spec = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "own-dir"},
                "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"},
                         "algorithm": {"algorithmName": "random"}, "maxTrialCount": 1, "maxFailedTrialCount": 0,
                         "metricsCollectorSpec": {"collector": {"kind": "File"},
                                                  "source": {"fileSystemPath": {"path": "/katib/metrics.json", "kind": "File"}}},
                         "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
                         "trialTemplate": {"trialParameters": [{"name": "x", "reference": "x"}], "trialSpec": {
                             "apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [{
                                 "name": "c", "image": "busybox", "command": ["/bin/sh", "-c", "echo loss=1"],
                                 "resources": {"limits": {"cpu": "1"}}}]}}}}}}}
        p = self.ty("run", "--backend", "slurm", "--containers", "host", self.write("own.yaml", json.dumps(spec)), timeout=300)
        self.assertNotEqual(p.returncode, 0)
        trial = self.tyjson("get", "trials", "own-dir")["items"][0]
        self.assertEqual(trial["state"], "Failed", trial)
        self.assertIn("a directory of its own at /katib needs a mount", trial["message"])

    def test_an_experiment_runs_4_trials_at_once_and_asha_stops_some(self):
        gate = os.path.join(self.dir, "gate")
        os.makedirs(gate)
        trial = ("import os, sys, tempfile, time\n"
                 "gate, x = sys.argv[1], float(sys.argv[2])\n"
                 "tempfile.mkstemp(dir=gate)\n"
                 "for _ in range(1200):\n"
                 "    if len(os.listdir(gate)) >= 4: break\n"
                 "    time.sleep(0.05)\n"
                 "else:\n"
                 "    sys.exit('fewer than 4 trials ran at once')\n"
                 "for step in range(1, 10):\n"
                 "    print(f'step={step} loss={x + 1.0 / step}', flush=True)\n"
                 "    time.sleep(0.3)\n")
        spec = self.write("sweep.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: Experiment
            metadata: {{name: slurm-sweep}}
            spec:
              objective: {{metric: loss, goal: minimize}}
              algorithm: {{name: random}}
              earlyStopping:
                name: asha
                settings: {{min_resource: 1, max_resource: 9, reduction_factor: 3}}
              parameters:
                - {{name: x, type: double, min: 0, max: 1}}
              parallelTrials: 4
              maxTrials: 8
              seed: 5
              trialTemplate:
                spec:
                  command: [/usr/bin/python3, -c, {json.dumps(trial)}, {gate}, "${{trialParameters.x}}"]
                  resources: {{cpu: 1, memory: 128Mi}}
            """)
        out = self.run_slurm(spec, timeout=900)
        self.assertIn("slurm-sweep", out)
        trials = self.tyjson("get", "trials", "slurm-sweep")
        items = trials["items"] if isinstance(trials, dict) else trials
        self.assertEqual(len(items), 8, items)
        states = [t["state"] for t in items]
        self.assertTrue(all(s in ("Succeeded", "EarlyStopped") for s in states), states)
        self.assertIn("EarlyStopped", states)  # ASHA stopped some (scancel)
        # Every trial checked in; the first 4 met at the gate (a trial that waited alone exits with an error).
        self.assertGreaterEqual(len(os.listdir(gate)), 8)
        # No trial's process outlives it.
        for t in items:
            for i in self.slurm_ids(t["job"]):
                self.assertEqual(processes_of(i), [], f"trial {t['trial']} left processes")


class Failures(SlurmE2E):
    def server(self, *args):
        from server_test import Server
        s = Server(self, "--backend", "slurm", *args)
        self.env["TRAINYARD_SERVER"] = s.url
        return s

    def test_cancel_mid_run_leaves_no_process(self):
        started = os.path.join(self.dir, "started")
        self.server()
        spec = self.write("long.yaml", job_yaml("long", f"touch {started}; exec sleep 600", "resources: {cpu: 1, memory: 64Mi}"))
        self.ty("submit", spec, check=0)
        self.wait_until("the replica running", lambda: os.path.exists(started), timeout=60, job="long")
        ids = self.slurm_ids("long")
        self.assertTrue(ids and processes_of(ids[0]), "the job's processes, before the cancel")
        self.ty("cancel", "long", check=0)
        self.wait_until("the job cancelled", lambda: self.phase("long") in ("Failed", "Cancelled"), timeout=60, job="long")
        self.wait_until("no process of the job left", lambda: processes_of(ids[0]) == [], timeout=60)
        self.assertEqual(self.job("long")["reason"], "Cancelled")

    def test_a_server_killed_with_sigkill_reattaches_and_loses_no_metric_point(self):
        go = os.path.join(self.dir, "go")
        server = self.server()
        script = (f"echo step=1 loss=0.9; echo step=2 loss=0.5; while [ ! -e {go} ]; do sleep 0.05; done; "
                  "echo step=3 loss=0.25")
        spec = self.write("reattach.yaml", job_yaml("reattach", script, "resources: {cpu: 1, memory: 64Mi}"))
        self.ty("submit", spec, check=0)

        def steps():
            got = self.tyjson("get", "metrics", "reattach", "--all")["metrics"]
            return sorted(m["step"] for m in got if m["name"] == "loss")
        self.wait_until("two points stored", lambda: steps() == [1, 2], timeout=60, job="reattach")
        ids = self.slurm_ids("reattach")
        server.proc.kill()
        server.proc.wait(timeout=30)
        with open(go, "w"):
            pass  # the job goes on while no server watches it
        self.server()
        self.wait_until("the job to succeed", lambda: self.phase("reattach") == "Succeeded", timeout=120, job="reattach")
        self.assertEqual(steps(), [1, 2, 3])  # each point exactly once
        self.assertEqual(self.slurm_ids("reattach"), ids)  # the same Slurm job, not a new submission

    def test_a_node_that_dies_fails_its_job_with_nodefail_and_it_runs_again_on_the_others(self):
        started = os.path.join(self.dir, "started")
        go = os.path.join(self.dir, "go")
        spec = self.write("nodefail.yaml", job_yaml(
            "nodefail", f'echo "$SLURMD_NODENAME" >> {started}; while [ ! -e {go} ]; do sleep 0.05; done; echo done',
            "restartPolicy: OnFailure", "backoffLimit: 2", "resources: {cpu: 1, memory: 64Mi}"))
        run = self.popen("run", "--backend", "slurm", spec)
        lost = None
        try:
            self.wait_until("the replica running", lambda: os.path.exists(started), timeout=60)
            with open(started) as f:
                lost = f.read().split()[0]
            slurm_id = self.slurm_ids("nodefail")[0]
            # The machine dies: every process of the job on it, the job's slurmstepd and its
            # slurmd, all at once. All are stopped first, so that none reports the others' end
            # to slurmctld; the tasks are killed before their slurmstepd, whose death would
            # otherwise wake them with SIGHUP (an orphaned, stopped process group).
            doomed = processes_of(slurm_id)
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if f"slurmstepd: [{slurm_id}.".encode() in f.read():
                            doomed.append(pid)
                except OSError:
                    pass
            with open(os.path.join(SLURM, f"slurmd-{lost}.pid")) as f:
                doomed.append(int(f.read()))
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for pid in doomed:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass

            def restarted():
                with open(started) as f:
                    return len(f.read().split()) >= 2
            self.wait_until("the job started again", restarted, timeout=180)
            with open(go, "w"):
                pass
            out, err = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
            if lost:  # the node back for the other tests
                subprocess.run(["slurmd", "-f", os.path.join(SLURM, "slurm.conf"), "-N", lost], env=self.env,
                               capture_output=True, timeout=60)
                self.wait_until(f"{lost} back", lambda: self.slurm("sinfo", "-h", "-n", lost, "-o", "%t").stdout.strip()
                                in ("idle", "mix", "alloc"), timeout=120)
        self.assertEqual(run.returncode, 0, out + err)
        d = self.job("nodefail")
        self.assertEqual(d["restarts"], 1)
        self.assertEqual([a["reason"] for a in d["attempts"]], ["NodeFail", "Completed"], d["attempts"])
        with open(started) as f:
            ran = f.read().split()
        self.assertEqual(ran[0], lost)
        self.assertNotEqual(ran[1], lost, "the job ran again on the node that is down")


if __name__ == "__main__":
    unittest.main()
