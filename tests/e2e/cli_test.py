"""The CLI end to end: specs, run, get, describe, logs, metrics, errors."""
import json
import os
import subprocess
import unittest

from common import BIN, E2E, job_yaml


class BadInput(E2E):
    CASES = {
        "unknown.yaml": ("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspec:\n  command: [a]\n  gpus: 1\n",
                         ":6:3: spec.gpus: unknown field 'gpus'"),
        "memory.yaml": ("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspec:\n  command: [a]\n"
                        "  resources:\n    memory: 2Gx\n", ":7:13: spec.resources.memory: expected a memory quantity"),
        "malformed.yaml": ("apiVersion: trainyard.dev/v1\nkind: [TrainJob\n", ":3:1: (document): malformed YAML"),
        "type.yaml": ("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspec:\n  command: [a]\n"
                      "  backoffLimit: [1]\n", ":6:17: spec.backoffLimit: expected an integer, got a list"),
        "nocommand.yaml": ("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: a}\nspec:\n  args: [a]\n",
                           ":5:3: spec.command: missing required field 'command'"),
        "name.yaml": ("apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: Bad_Name}\nspec: {command: [a]}\n",
                      ":3:18: metadata.name: expected a DNS-1123 name"),
    }

    def test_bad_specs_exit_2_with_location_and_store_nothing(self):
        for name, (text, expected) in self.CASES.items():
            with self.subTest(name):
                path = self.write(name, text)
                p = self.ty("run", path, check=2)
                self.assertIn(path + expected, p.stderr)
                self.assertEqual(p.stderr.count("\n"), 1, p.stderr)  # one message
        # Nothing was written: the store, if any, holds no job.
        self.assertEqual(self.tyjson("get", "jobs")["items"], [])

    def test_bad_set_override(self):
        path = self.write("ok.yaml", job_yaml("ok", "true"))
        p = self.ty("run", path, "--set", "spec.backoffLimit=many", check=2)
        self.assertIn("(--set spec.backoffLimit): spec.backoffLimit: expected an integer", p.stderr)

    def test_missing_file(self):
        p = self.ty("run", os.path.join(self.dir, "nope.yaml"), check=2)
        self.assertIn("nope.yaml: (document): cannot read the file: No such file or directory", p.stderr)

    def test_unknown_job(self):
        p = self.ty("describe", "job", "ghost", check=2)
        self.assertIn('job "ghost" not found', p.stderr)

    def test_bad_output_format(self):
        p = self.ty("get", "jobs", "-o", "xml", check=2)
        self.assertIn("expected table, json or yaml", p.stderr)


class RunAndInspect(E2E):
    def test_get_jobs_summarises_results_not_counters(self):
        self.ty("run", "-q", self.write("sum.yaml", job_yaml(
            "sum", "for e in 1 2; do echo epoch=$e epochs=2 step=$e global_step=$e loss=0.$e accuracy=0.9$e; done")), check=0)
        row = [l for l in self.ty("get", "jobs", check=0).stdout.splitlines() if l.startswith("sum ")][0]
        self.assertTrue(row.rstrip().endswith("accuracy=0.92 loss=0.2"), row)  # the last values; no epochs/step counters

    def test_run_then_get_describe_logs_metrics(self):
        path = self.write("job.yaml", job_yaml(
            "train", "for e in 1 2 3; do echo epoch=$e epochs=3 loss=0.$((9-e)); done; echo saved > $TRAINYARD_OUTPUT_DIR/model.txt",
            "metricsCollector: {kind: StdOut}"))
        p = self.ty("run", path, check=0)
        self.assertIn("epoch=3 epochs=3 loss=0.6", p.stdout)  # the job's output is echoed
        self.assertIn("train Succeeded", p.stderr)
        self.assertIn("final metrics: epoch=3 epochs=3 loss=0.6", p.stderr)

        jobs = self.tyjson("get", "jobs")["items"]
        self.assertEqual([(j["name"], j["phase"]) for j in jobs], [("train", "Succeeded")])
        self.assertTrue(os.path.exists(os.path.join(jobs[0]["outputsDir"], "model.txt")))

        d = self.job("train")
        self.assertEqual([c["type"] for c in d["conditions"]], ["Created", "Running", "Succeeded"])
        self.assertEqual(d["attempts"][0]["exitCode"], 0)
        self.assertEqual(d["lastMetrics"]["loss"]["value"], 0.6)

        table = self.ty("describe", "job", "train", check=0).stdout
        self.assertIn("Phase:          Succeeded", table)
        self.assertIn("Conditions:", table)

        self.assertEqual(self.ty("logs", "train", check=0).stdout.count("epoch="), 3)

        last = self.tyjson("get", "metrics", "train")["metrics"]
        self.assertEqual({m["name"]: m["value"] for m in last}, {"epoch": 3, "epochs": 3, "loss": 0.6})
        series = self.tyjson("get", "metrics", "train", "--all", "--metric", "loss")["metrics"]
        self.assertEqual([(m["step"], m["value"]) for m in series], [(1, 0.8), (2, 0.7), (3, 0.6)])
        self.assertIn("loss", self.ty("get", "metrics", "train", "--all", check=0).stdout)
        self.assertIn("phase: Succeeded", self.ty("get", "job", "train", "-o", "yaml", check=0).stdout)

    def test_set_overrides_args(self):
        path = self.write("job.yaml", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: echo}\n"
                                      "spec:\n  command: [echo]\n  args: [--lr, '0.1']\n")
        p = self.ty("run", path, "--set", "spec.args[1]=0.01", check=0)
        self.assertIn("--lr 0.01", p.stdout)

    def test_failure_exit_code_and_reason(self):
        path = self.write("fail.yaml", job_yaml("fail", "echo boom >&2; exit 7"))
        p = self.ty("run", path, check=1)
        self.assertIn("boom", p.stdout)
        self.assertIn("replica worker-0 exited with code 7", p.stderr)
        d = self.job("fail")
        self.assertEqual(d["attempts"][0]["exitCode"], 7)
        self.assertEqual(d["phase"], "Failed")

    def test_rerun_gets_a_fresh_name_and_keeps_history(self):
        path = self.write("job.yaml", job_yaml("again", "true"))
        self.ty("run", path, check=0)
        p = self.ty("run", path, check=0)
        self.assertIn("this run is again-2", p.stderr)
        self.assertEqual([j["name"] for j in self.tyjson("get", "jobs")["items"]], ["again", "again-2"])

    def test_validate_and_delete(self):
        path = self.write("job.yaml", job_yaml("v", "true"))
        self.assertIn('valid TrainJob "v"', self.ty("validate", path, check=0).stdout)
        self.ty("run", path, check=0)
        self.ty("delete", "job", "v", check=0)
        self.assertEqual(self.tyjson("get", "jobs")["items"], [])

    def test_restarts_are_visible(self):
        path = self.write("flaky.yaml", job_yaml("flaky", '[ "$TRAINYARD_ATTEMPT" = 2 ] || exit 1',
                                                 "restartPolicy: OnFailure", "backoffLimit: 3"))
        self.ty("run", path, check=0)
        d = self.job("flaky")
        self.assertEqual(d["restarts"], 2)
        self.assertEqual([a["exitCode"] for a in d["attempts"]], [1, 1, 0])
        self.assertEqual(self.ty("logs", "flaky", "--attempt", "0", check=0).returncode, 0)
        p = self.ty("logs", "flaky", "--replica", "worker-9", check=2)
        self.assertIn("no replica \"worker-9\"", p.stderr)

    def test_backend_is_chosen_by_name(self):
        job = self.write("b.yaml", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: b}\nspec:\n  command: [\"true\"]\n")
        self.ty("run", job, "--backend", "local", check=0)
        missing = os.path.join(self.dir, "no-such-kubeconfig")
        p = self.ty("run", job, "--backend", "kubernetes", "--kubeconfig", missing)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"--backend kubernetes: {missing}: cannot read the kubeconfig", p.stderr)
        p = self.ty("server", "--port", "0", "--backend", "kubernetes", "--kubeconfig", missing)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("cannot read the kubeconfig", p.stderr)
        p = self.ty("server", "--port", "0", "--backend", "nomad")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--backend nomad: expected local", p.stderr)

    def test_help(self):
        p = self.ty("--help", check=0)
        for verb in ("run", "get", "describe", "logs", "cancel", "delete"):
            self.assertIn(verb, p.stdout)


class FreshStore(E2E):
    def test_concurrent_first_use_of_a_data_dir(self):
        # `trainyard run` creating a store while another command polls it: switching the
        # new file to WAL once raced ("database is locked", exit 3). Four commands start
        # together on each fresh data dir: each shell says it is ready, then spins until
        # the go file appears.
        failures = []
        for i in range(150):
            data, go = os.path.join(self.dir, f"d{i}"), os.path.join(self.dir, f"go{i}")
            ready = [os.path.join(self.dir, f"ready{i}-{k}") for k in range(4)]
            procs = [subprocess.Popen(["/bin/sh", "-c", f': > "{r}"; while [ ! -e "{go}" ]; do :; done; '
                                                        f'exec "{BIN}" --data-dir "{data}" get jobs'],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for r in ready]
            self.wait_until("the commands to be ready", lambda: all(os.path.exists(r) for r in ready))
            open(go, "w").close()
            for p in procs:
                _, err = p.communicate(timeout=60)
                if p.returncode != 0:
                    failures.append(err)
        self.assertEqual(failures, [])


if __name__ == "__main__":
    unittest.main()
