"""Distributed jobs end to end: DDP in Python and C++, MPI, TF_CONFIG, Kubeflow job YAML, faults."""
import json
import os
import re
import signal
import unittest

from common import BUILD_DIR, E2E, SOURCE_DIR, pid_alive

EXAMPLES = os.path.join(SOURCE_DIR, "examples")
CPP_DDP = os.path.join(BUILD_DIR, "bin", "fmnist_ddp_cpp")
MPI_ALLREDUCE = os.path.join(BUILD_DIR, "bin", "mpi_allreduce")


class Distributed(E2E):
    def replica_log(self, job, replica, attempt=None):
        args = ["logs", job, "--replica", replica] + (["--attempt", str(attempt)] if attempt is not None else [])
        return self.ty(*args, check=0).stdout

    def checksums(self, job, replicas):
        sums = {}
        for r in replicas:
            m = re.search(r"parameter checksum (\S+)", self.replica_log(job, r))
            self.assertIsNotNone(m, f"{r} printed no checksum")
            sums[r] = m.group(1)
        return sums

    def run_ddp(self, yaml, name, replicas, *sets):
        p = self.ty("run", os.path.join(EXAMPLES, "fmnist", yaml), "--set", f"spec.replicas={replicas}", *sets,
                    check=0, timeout=900)
        d = self.job(name)
        names = sorted(a["replica"] for a in d["attempts"])
        self.assertEqual(len(names), replicas)
        sums = self.checksums(name, names)
        self.assertEqual(len(set(sums.values())), 1, f"ranks disagree: {sums}")
        return p, d

    def test_python_ddp_on_2_processes_and_on_4_across_2_virtual_nodes(self):
        for n in (2, 4):
            with self.subTest(replicas=n):
                # Four ranks on two virtual nodes of this machine (2 each, their CPUs pinned): a gang across nodes.
                nodes = ("--nodes", "2", "--pin-cpus") if n == 4 else ()
                p, d = self.run_ddp("ddp.yaml", "fmnist-ddp" if n == 2 else "fmnist-ddp-2", n, *nodes)
                self.assertGreaterEqual(d["lastMetrics"]["test_accuracy"]["value"], 0.85)
                self.assertIn("[master-0] rank 0/%d" % n, p.stdout)  # replica-prefixed output
                self.assertIn("[worker-0] rank 1/%d" % n, p.stdout)
                self.assertTrue(os.path.exists(os.path.join(d["outputsDir"], "model.pt")))
                scheduled = [e["message"] for e in d["events"] if e["reason"] == "Scheduled"]
                if n == 4:
                    self.assertEqual(scheduled, ["placed on node-1 (2 replicas), node-2 (2 replicas)"])

    def test_elastic_pytorchjob_rendezvouses_through_torchrun(self):
        """Kubeflow's elasticPolicy on a fixed-size launch: two Workers under torchrun, which reads
        PET_NNODES 2:3, the c10d backend, the endpoint and rdzvConf; ranks come from the rendezvous."""
        if not os.path.exists("/usr/bin/torchrun"):
            self.skipTest("SKIPPED: /usr/bin/torchrun missing (apt-get install python3-torch)")
        script = self.write("elastic.py", """\
            import os
            import torch
            import torch.distributed as dist
            dist.init_process_group("gloo")
            t = torch.tensor([float(dist.get_rank() + 1)])
            dist.all_reduce(t)
            print(f"rank {dist.get_rank()} of {dist.get_world_size()} sum={t.item()} nodes {os.environ['PET_NNODES']}", flush=True)
            """)
        spec = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "elastic"},
                "spec": {"elasticPolicy": {"minReplicas": 2, "maxReplicas": 3, "rdzvBackend": "c10d", "maxRestarts": 1,
                                           "rdzvConf": [{"key": "last_call_timeout", "value": "1"}]},
                         "pytorchReplicaSpecs": {"Worker": {"replicas": 2, "restartPolicy": "OnFailure", "template": {"spec": {
                             "containers": [{"name": "pytorch", "image": "docker.io/kubeflow/pytorch-elastic-example",
                                             # --redirects/--tee 1: Debian's torch 1.13 on Python 3.11 cannot
                                             # parse their default "0" (its Std flag enum no longer lists 0).
                                             "command": ["/usr/bin/torchrun", "--redirects", "1", "--tee", "1", script],
                                             "resources": {"limits": {"cpu": "500m"}}}]}}}}}}
        p = self.ty("run", "--containers", "host", self.write("elastic.yaml", json.dumps(spec)), timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        self.assertIn("not scaled within 2..3", p.stderr)  # the fixed-size launch is said
        lines = sorted(re.search(r"rank \d of \d+ sum=\S+ nodes \S+", l).group(0) for l in p.stdout.splitlines() if " sum=" in l)
        self.assertEqual(lines, ["rank 0 of 2 sum=3.0 nodes 2:3", "rank 1 of 2 sum=3.0 nodes 2:3"], p.stdout[-2000:])

    @unittest.skipUnless(os.path.exists(CPP_DDP), "C++ DDP example not built (libtorch/gloo missing)")
    def test_cpp_ddp(self):
        _, d = self.run_ddp("cpp-ddp.yaml", "fmnist-ddp-cpp", 2, "--set", f"spec.command[0]={CPP_DDP}")
        self.assertGreaterEqual(d["lastMetrics"]["test_accuracy"]["value"], 0.85)

    @unittest.skipUnless(os.path.exists(MPI_ALLREDUCE), "MPI example not built (Open MPI missing)")
    def test_mpijob_allreduce(self):
        p = self.ty("run", "--containers", "host", os.path.join(EXAMPLES, "mpi", "mpijob.yaml"),
                    "--set", f"spec.mpiReplicaSpecs.Launcher.template.spec.containers[0].command[3]={MPI_ALLREDUCE}",
                    check=0, timeout=300)
        self.assertIn("MPI workers are slots", p.stderr)  # the warning for the workers' sshd containers
        self.assertEqual(p.stdout.count("allreduce sum 10 (expected 10)"), 4)
        d = self.job("mpi-allreduce")
        self.assertEqual({k: v["value"] for k, v in d["lastMetrics"].items()}, {"world_size": 4, "allreduce_sum": 10})
        self.assertEqual([a["replica"] for a in d["attempts"]], ["launcher-0"])

    def test_tfjob_tf_config(self):
        # Its images are Docker Hub's, which this machine cannot pull: the commands run on the host.
        p = self.ty("run", "--containers", "host", os.path.join(EXAMPLES, "kubeflow", "tfjob.yaml"), check=0, timeout=300)
        self.assertIn("warning: replicas run on this machine, not in their images", p.stderr)
        for replica in ("chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"):
            self.assertIn("tf_config ok", self.replica_log("tf-config-check", replica), replica)
        self.assertIn("[chief-0] all 5 replicas checked their TF_CONFIG", p.stdout)
        d = self.job("tf-config-check")
        self.assertEqual(d["spec"]["framework"], "tensorflow")
        reasons = {a["replica"]: a["reason"] for a in d["attempts"]}
        self.assertEqual(reasons["chief-0"], "Completed")
        self.assertEqual(reasons["ps-0"], "Stopped")  # serves forever; stopped once the chief succeeded

    def test_kubeflow_pytorchjob_runs_unchanged(self):
        yaml = os.path.join(EXAMPLES, "kubeflow", "pytorchjob.yaml")
        sets = []
        for role in ("Master", "Worker"):
            base = f"spec.pytorchReplicaSpecs.{role}.template.spec.containers[0].args"
            sets += ["--set", f"{base}[1]=1", "--set", f"{base}[2]=--train-limit", "--set", f"{base}[3]=6000"]
        p = self.ty("run", "--containers", "host", yaml, *sets, check=0, timeout=600)
        self.assertIn("metadata.namespace: not used on the local backend", p.stderr)
        self.assertIn("warning: replicas run on this machine, not in their images", p.stderr)
        for r in ("[master-0] rank 0/3", "[worker-0] rank 1/3", "[worker-1] rank 2/3"):
            self.assertIn(r, p.stdout)
        d = self.job("pytorch-fmnist-ddp")
        self.assertEqual(d["spec"]["backoffLimit"], 2)
        self.assertEqual(d["spec"]["activeDeadlineSeconds"], 1800)
        self.assertEqual(len(set(self.checksums("pytorch-fmnist-ddp", ["master-0", "worker-0", "worker-1"]).values())), 1)
        self.assertIn("rank 2/3", self.replica_log("pytorch-fmnist-ddp", "worker-1"))


class Faults(E2E):
    def start_ddp(self, backoff_limit):
        path = os.path.join(EXAMPLES, "fmnist", "ddp.yaml")
        return self.popen("run", path, "--set", "spec.args[1]=3", "--set", f"spec.backoffLimit={backoff_limit}",
                          "--set", "metadata.name=fault", "--grace", "2")

    def kill_worker_mid_training(self, proc):
        def training():
            if proc.poll() is not None:  # it ended before training: say why
                out, err = proc.communicate()
                self.fail(f"trainyard run exited with {proc.returncode} before training started\n"
                          f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
            d = json.loads(self.ty("describe", "job", "fault", "-o", "json").stdout or "{}")
            logs = [a["logPath"] for a in d.get("attempts", []) if a["replica"] == "master-0"]
            if not logs or not os.path.exists(logs[0]):
                return False
            with open(logs[0]) as f:
                return "step=" in f.read()
        self.wait_until("training to start", training, timeout=300, job="fault")
        first = {a["replica"]: a["pid"] for a in self.job("fault")["attempts"] if a["attempt"] == 0}
        os.kill(first["worker-0"], signal.SIGKILL)
        return first

    def test_killed_worker_restarts_the_whole_gang(self):
        proc = self.start_ddp(backoff_limit=2)
        first = self.kill_worker_mid_training(proc)
        out, err = proc.communicate(timeout=600)
        self.assertEqual(proc.returncode, 0, err)
        d = self.job("fault")
        self.assertEqual(d["restarts"], 1)
        a0 = {a["replica"]: a for a in d["attempts"] if a["attempt"] == 0}
        self.assertEqual(a0["worker-0"]["signal"], signal.SIGKILL)
        self.assertEqual(a0["master-0"]["reason"], "GangStopped")
        self.assertEqual(sorted(a["replica"] for a in d["attempts"] if a["attempt"] == 1), ["master-0", "worker-0"])
        self.assertEqual([p for p in first.values() if pid_alive(p)], [])
        self.assertIn("Restarting", [c["type"] for c in d["conditions"]])

    def test_killed_worker_fails_the_job_when_backoff_is_exhausted(self):
        proc = self.start_ddp(backoff_limit=0)
        first = self.kill_worker_mid_training(proc)
        out, err = proc.communicate(timeout=600)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("replica worker-0 was killed by signal 9", err)
        d = self.job("fault")
        self.assertEqual((d["phase"], d["reason"]), ("Failed", "BackoffLimitExceeded"))
        self.assertEqual([p for p in first.values() if pid_alive(p)], [])


if __name__ == "__main__":
    unittest.main()
