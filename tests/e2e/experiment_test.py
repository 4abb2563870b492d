"""Experiments end to end: a sweep, crash-safe resume under kill -9, Katib's YAML."""
import json
import os
import signal
import subprocess
import unittest

from common import E2E, SOURCE_DIR, pid_alive

EXAMPLES = os.path.join(SOURCE_DIR, "examples")

QUICK = """apiVersion: trainyard.dev/v1
kind: Experiment
metadata: {{name: quick}}
spec:
  objective: {{metric: loss, goal: minimize}}
  algorithm: {{name: tpe, settings: {{n_startup_trials: 3}}}}
  parameters:
    - {{name: x, type: double, min: -2, max: 2}}
    - {{name: opt, type: categorical, values: [a, b]}}
  parallelTrials: 2
  maxTrials: {max_trials}
  seed: 5
  trialTemplate:
    spec:
      command: [/usr/bin/python3, -c]
      args:
        - |
          import sys, time
          x, opt = float(sys.argv[1]), sys.argv[2]
          for e in range(1, 4):
              time.sleep({sleep})
              print(f"epoch={{e}} loss={{(x - 0.5) ** 2 + (opt == 'b') + 1 / e}}", flush=True)
        - "${{trialParameters.x}}"
        - "${{trialParameters.opt}}"
      resources: {{cpu: 100m}}
"""


class Sweep(E2E):
    def test_quick_sweep_get_and_describe(self):
        path = self.write("quick.yaml", QUICK.format(max_trials=6, sleep=0))
        p = self.ty("run", path, check=0)
        self.assertIn("experiment quick Succeeded: MaxTrialsReached", p.stderr)
        self.assertIn("best trial #", p.stderr)
        trials = self.tyjson("get", "trials", "quick")["items"]
        self.assertEqual([t["trial"] for t in trials], list(range(6)))
        self.assertTrue(all(t["state"] == "Succeeded" for t in trials))
        d = self.tyjson("describe", "experiment", "quick")
        best = min(trials, key=lambda t: t["objective"]["loss"])
        self.assertEqual(d["best"]["trial"], best["trial"])
        self.assertEqual(self.tyjson("get", "experiments")["items"][0]["phase"], "Succeeded")
        self.assertIn("Best trial:", self.ty("describe", "experiment", "quick", check=0).stdout)
        # Each trial is a job of its own, with logs and metrics.
        self.assertIn("epoch=3", self.ty("logs", "quick-0", check=0).stdout)
        # `get jobs` lists them only with --all, as the dashboard does.
        self.ty("run", self.write("solo.yaml", "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: solo}\n"
                                               "spec: {command: [/bin/true]}\n"), check=0)
        self.assertEqual([j["name"] for j in self.tyjson("get", "jobs")["items"]], ["solo"])
        self.assertEqual(len(self.tyjson("get", "jobs", "--all")["items"]), 7)

    def test_ctrl_c_cancels_the_experiment_and_its_trials(self):
        path = self.write("slow.yaml", QUICK.format(max_trials=6, sleep=30))
        proc = self.popen("run", path)
        self.wait_until("two trials to run", lambda: self.ty("get", "trials", "quick").stdout.count("Running") >= 2,
                        timeout=60)
        self.wait_until("their processes", lambda: all(
            self.job(t["job"]).get("attempts") for t in self.tyjson("get", "trials", "quick")["items"]), timeout=60)
        pids = [a["pid"] for t in self.tyjson("get", "trials", "quick")["items"] for a in self.job(t["job"])["attempts"]]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        d = self.tyjson("describe", "experiment", "quick")
        self.assertEqual((d["phase"], d["reason"]), ("Failed", "Cancelled"))
        self.assertTrue(all(t["state"] == "Cancelled" for t in d["trialList"]), d["trialList"])
        self.assertEqual([p for p in pids if pid_alive(p)], [])
        self.assertEqual([c["type"] for c in d["trialList"][0]["conditions"]], ["Created", "Running", "Cancelled"])

    def test_bad_experiment_is_rejected_before_any_trial(self):
        path = self.write("bad.yaml", QUICK.format(max_trials=6, sleep=0).replace(
            "algorithm: {name: tpe, settings: {n_startup_trials: 3}}", "algorithm: {name: cmaes}"))
        p = self.ty("run", path, check=2)
        self.assertIn("spec.algorithm: cmaes: parameter opt is categorical", p.stderr)
        self.assertEqual(self.tyjson("get", "experiments")["items"], [])

    def test_fmnist_sweep_example_on_a_slice(self):
        sweep = os.path.join(EXAMPLES, "fmnist", "sweep.yaml")
        p = self.ty("run", sweep, "--set", "spec.maxTrials=4", "--set", "spec.trialTemplate.spec.args[1]=2",
                    "--set", "spec.trialTemplate.spec.args[10]=--train-limit",
                    "--set", "spec.trialTemplate.spec.args[11]=3000", check=0, timeout=900)
        self.assertIn("experiment fmnist-sweep Succeeded", p.stderr)
        d = self.tyjson("describe", "experiment", "fmnist-sweep")
        self.assertGreater(d["best"]["objective"]["test_accuracy"], 0.6)
        self.assertTrue(os.path.exists(os.path.join(d["best"]["outputsDir"], "model.pt")))
        self.assertEqual(set(d["best"]["parameters"]), {"lr", "hidden", "batch_size", "optimizer"})

    def test_katib_experiment_runs_unchanged(self):
        katib = os.path.join(EXAMPLES, "kubeflow", "katib-experiment.yaml")
        p = self.ty("run", "--containers", "host", katib, "--set", "spec.maxTrialCount=3",
                    "--set", "spec.trialTemplate.trialSpec.spec.template.spec.containers[0].command[3]=--train-limit=3000",
                    check=0, timeout=900)
        self.assertIn("metadata.namespace: not used on the local backend", p.stderr)
        self.assertIn("experiment katib-fmnist Succeeded", p.stderr)
        trials = self.tyjson("get", "trials", "katib-fmnist")["items"]
        self.assertEqual(len(trials), 3)
        succeeded = [t for t in trials if t["state"] == "Succeeded"]
        self.assertTrue(succeeded, trials)  # all() of nothing is true
        self.assertTrue(all("test_accuracy" in t["objective"] for t in succeeded))


MULTI = """apiVersion: trainyard.dev/v1
kind: Experiment
metadata: {name: multi}
spec:
  objective:
    objectives: [{metric: error, goal: minimize}, {metric: cost, goal: minimize}]
  algorithm: {name: tpe, settings: {n_startup_trials: 4}}
  parameters: [{name: x, type: double, min: 0, max: 1}]
  parallelTrials: 2
  maxTrials: 10
  trialTemplate:
    spec:
      framework: pytorch          # each trial is itself a 2-replica job
      replicas: 2
      command: [/bin/sh, -c]
      args: ['if [ "$RANK" = 0 ]; then awk "BEGIN { print \\"error=\\" 1 - ${trialParameters.x} \\" cost=${trialParameters.x}\\" }"; fi']
      resources: {cpu: 100m}
"""


class MultiObjective(E2E):
    def test_pareto_front_of_distributed_trials(self):
        path = self.write("multi.yaml", MULTI)
        p = self.ty("run", path, check=0)
        self.assertIn("Pareto front (trials):", p.stderr)
        d = self.tyjson("describe", "experiment", "multi")
        trials = {t["trial"]: t for t in d["trialList"]}
        self.assertEqual(len(trials), 10)
        # error = 1 - x and cost = x trade off exactly: every succeeded trial is on the front.
        succeeded = [n for n, t in trials.items() if t["state"] == "Succeeded"]
        self.assertEqual(sorted(d["paretoFront"]), sorted(succeeded))
        self.assertGreaterEqual(len(succeeded), 8)
        job = self.job(trials[0]["job"])
        self.assertEqual(sorted(a["replica"] for a in job["attempts"]), ["master-0", "worker-0"])
        self.assertIn("Pareto front:", self.ty("describe", "experiment", "multi", check=0).stdout)


class Resume(E2E):
    def test_kill_9_at_several_points_then_resume(self):
        path = self.write("quick.yaml", QUICK.format(max_trials=8, sleep=0.3))
        for kill_after in (1, 3, 6):
            proc = self.popen("run", path)
            self.wait_until(f"{kill_after} trials to exist",
                            lambda: len(json.loads(self.ty("get", "trials", "quick", "-o", "json").stdout or
                                                   '{"items": []}').get("items", [])) >= kill_after
                            if self.ty("get", "trials", "quick").returncode == 0 else False, timeout=120)
            running = [t for t in self.tyjson("get", "trials", "quick")["items"] if t["state"] == "Running"]
            pids = [a["pid"] for t in running for a in self.job(t["job"]).get("attempts", [])]
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            self.wait_until("the trial processes to go", lambda: not any(pid_alive(p) for p in pids), timeout=30)
        p = self.ty("run", path, check=0, timeout=600)
        self.assertIn("resuming experiment quick", p.stderr)
        trials = self.tyjson("get", "trials", "quick")["items"]
        self.assertEqual([t["trial"] for t in trials], list(range(8)))  # exactly maxTrials, no duplicates
        self.assertTrue(all(t["state"] == "Succeeded" for t in trials), trials)
        self.assertTrue(any(t["runs"] > 1 for t in trials))  # interrupted trials ran again
        d = self.tyjson("describe", "experiment", "quick")
        self.assertEqual((d["phase"], d["reason"]), ("Succeeded", "MaxTrialsReached"))


class KatibJsonFileCollector(E2E):
    def test_trials_writing_one_absolute_path_each_have_their_own(self):
        """Katib's median-stop-with-json-format shape: a File collector with format JSON at an absolute
        path that every trial writes (each pod has its own on a cluster), cloudml-hypertune lines."""
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: a process's own directory needs a mount namespace (root); containers give it otherwise")
        gate = os.path.join(self.dir, "gate")
        os.makedirs(gate)
        at = f"/katib-e2e-{os.getpid()}"
        self.addCleanup(lambda: os.path.isdir(at) and not os.listdir(at) and os.rmdir(at))
        # Each trial finds the file empty (no other trial's lines), checks in, waits until 3 have,
        # then writes its own lines: values as strings, global_step as a string, the trial id.
        script = (f"test ! -s {at}/mnist.json || {{ echo shared; exit 3; }}; touch {gate}/$TRAINYARD_JOB_NAME; "
                  f"while [ $(ls {gate} | wc -l) -lt 3 ]; do sleep 0.05; done; "
                  "for s in 1 2 3; do printf '{\"timestamp\": %s.5, \"trial\": \"0\", \"loss\": \"%s\", \"global_step\": \"%s\"}\\n' "
                  f"$(date +%s) \"$(awk -v x=${{trialParameters.x}} -v s=$s 'BEGIN {{print x / s}}')\" $s >> {at}/mnist.json; done")
        spec = {
            "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "katib-json"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "random"},
                "parallelTrialCount": 3, "maxTrialCount": 3,
                "metricsCollectorSpec": {"collector": {"kind": "File"},
                                         "source": {"fileSystemPath": {"path": f"{at}/mnist.json", "kind": "File", "format": "JSON"}}},
                "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "1", "max": "9"}}],
                "trialTemplate": {
                    "primaryContainerName": "training-container",
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                        "containers": [{"name": "training-container", "image": "busybox",
                                        "command": ["/bin/sh", "-c", script],
                                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}],
                        "restartPolicy": "Never"}}}}}}}
        path = self.write("katib-json.yaml", json.dumps(spec))
        p = self.ty("run", "--containers", "host", path, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        trials = self.tyjson("get", "trials", "katib-json")["items"]
        self.assertEqual([t["state"] for t in trials], ["Succeeded"] * 3, trials)
        for t in trials:
            x = float(t["parameters"]["x"])
            got = self.tyjson("get", "metrics", t["job"], "--all", "--metric", "loss")["metrics"]
            # Its own three points, from its own file, at the steps hypertune gave them.
            self.assertEqual([(m["step"], round(m["value"], 4)) for m in got],
                             [(s, round(x / s, 4)) for s in (1, 2, 3)], t)
        self.assertEqual(os.listdir(at) if os.path.isdir(at) else [], [])  # nothing written to the host's path


class KatibHyperband(E2E):
    def test_hyperband_sets_the_resource_per_bracket_and_promotes_the_best(self):
        """Katib's hyperband example's shape: resource_name num-epochs declared with min = max, eta 3,
        r_l 9; the first bracket is 9 trials at 1 epoch, the best 3 at 3, the best at 9."""
        script = ("awk -v lr=${trialParameters.learningRate} -v e=${trialParameters.numEpochs} "
                  "'BEGIN { for (i = 1; i <= e; i++) printf \"epoch=%d loss=%.6f\\n\", i, (lr - 0.03)^2 + 1 / (i + 1) }'")
        spec = {
            "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "katib-hyperband"},
            "spec": {
                "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                "algorithm": {"algorithmName": "hyperband", "algorithmSettings": [
                    {"name": "resource_name", "value": "num-epochs"}, {"name": "eta", "value": "3"},
                    {"name": "r_l", "value": "9"}]},
                "parallelTrialCount": 9, "maxTrialCount": 13,
                "parameters": [
                    {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}},
                    {"name": "num-epochs", "parameterType": "int", "feasibleSpace": {"min": "20", "max": "20"}}],
                "trialTemplate": {
                    "primaryContainerName": "training-container",
                    "trialParameters": [{"name": "learningRate", "reference": "lr"}, {"name": "numEpochs", "reference": "num-epochs"}],
                    "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                        "containers": [{"name": "training-container", "image": "busybox",
                                        "command": ["/bin/sh", "-c", script],
                                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}],
                        "restartPolicy": "Never"}}}}}}}
        p = self.ty("run", "--containers", "host", self.write("hb.yaml", json.dumps(spec)), timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        trials = sorted(self.tyjson("get", "trials", "katib-hyperband")["items"], key=lambda t: t["trial"])
        self.assertEqual(len(trials), 13)
        self.assertTrue(all(t["state"] == "Succeeded" for t in trials), trials)
        epochs = [int(t["parameters"]["num-epochs"]) for t in trials]
        self.assertEqual(epochs, [1] * 9 + [3] * 3 + [9])
        # Rung 1 runs rung 0's best three configurations (lowest loss: lr nearest 0.03), rung 2 the best of those.
        rung0 = sorted(trials[:9], key=lambda t: abs(float(t["parameters"]["lr"]) - 0.03))
        self.assertEqual([t["parameters"]["lr"] for t in trials[9:12]], [t["parameters"]["lr"] for t in rung0[:3]])
        self.assertEqual(trials[12]["parameters"]["lr"], rung0[0]["parameters"]["lr"])
        e = self.tyjson("describe", "experiment", "katib-hyperband")
        self.assertEqual(e["phase"], "Succeeded", e)


class KatibPbt(E2E):
    def test_pbt_hands_checkpoints_down_and_beats_random_search_at_the_same_budget(self):
        """Katib's simple-pbt shape (examples/katib): 10 generations of 4 on a toy whose best learning
        rate decays as it learns. Each trial continues its parent's checkpoint, seen at Katib's
        suggestion_trial_dir; the best beats random search given the same steps."""
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: a trial's own checkpoint directory needs a mount namespace (root) or a container")
        example = os.path.join(EXAMPLES, "katib", "simple-pbt.yaml")
        with open(example) as f:
            text = f.read()
        text = text.replace("workingDir: .", f"workingDir: {os.path.join(EXAMPLES, 'katib')}")
        before = os.listdir("/var/log/katib/checkpoints") if os.path.isdir("/var/log/katib/checkpoints") else []
        p = self.ty("run", "--containers", "host", self.write("pbt.yaml", text), timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        trials = sorted(self.tyjson("get", "trials", "simple-pbt")["items"], key=lambda t: t["trial"])
        self.assertEqual(len(trials), 40)
        self.assertTrue(all(t["state"] == "Succeeded" for t in trials), [t["state"] for t in trials])

        def steps(t):
            got = self.tyjson("get", "metrics", t["job"], "--all", "--metric", "Validation-accuracy")["metrics"]
            return [m["step"] for m in got]
        exploited = 0
        for t in trials[4:]:
            parent = int(t["note"].split(" parent ")[1].split()[0])
            self.assertEqual(parent // 4, t["trial"] // 4 - 1, t["note"])  # from the generation before
            exploited += parent % 4 != t["trial"] % 4
            # The checkpoint was handed over: it trains on from its parent's last step.
            self.assertEqual(steps(t)[0], steps(trials[parent])[-1] + 1, t)
        self.assertGreater(exploited, 0)
        self.assertEqual(steps(trials[39]), list(range(73, 81)))  # ten generations of 8 steps
        self.assertEqual(os.listdir("/var/log/katib/checkpoints"), before)  # the host's path is untouched
        pbt_best = max(t["objective"]["Validation-accuracy"] for t in trials)

        def random_search(name, count, epochs):
            spec = text.replace("name: simple-pbt", f"name: {name}").replace("algorithmName: pbt", "algorithmName: random")
            spec = spec.replace("maxTrialCount: 40", f"maxTrialCount: {count}").replace("--epochs=8", f"--epochs={epochs}")
            spec = spec.replace("--checkpoint=/var/log/katib/checkpoints/",
                                f"--checkpoint={self.dir}/{name}-${{trialParameters.learningRate}}")
            spec = spec[:spec.index("    algorithmSettings:")] + spec[spec.index("  parameters:"):]
            p = self.ty("run", "--containers", "host", self.write(f"{name}.yaml", spec), timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr[-3000:])
            got = self.tyjson("get", "trials", name)["items"]
            self.assertEqual(len(got), count)
            return max(t["objective"]["Validation-accuracy"] for t in got)
        # The same steps: 4 trials of 80 (a fixed rate stalls near 0.47); the same trials: 40 of 8.
        long_best, short_best = random_search("random-long", 4, 80), random_search("random-short", 40, 8)
        self.assertGreater(pbt_best, long_best)
        self.assertGreater(pbt_best, short_best)
        print(f"\nPBT best {pbt_best:.3f}; random search: 4 x 80 steps {long_best:.3f}, 40 x 8 steps {short_best:.3f}")


class KatibTensorFlowEvent(E2E):
    def run_with(self, writer):
        """Katib's tfjob-mnist-with-summaries shape: a TensorFlowEvent collector on an absolute
        directory (each trial its own), event files in train/ and eval/; objective accuracy (a bare
        tag, any directory) and train/loss (directory and tag), as Katib matches them."""
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: a trial's own event directory needs a mount namespace (root) or a container")
        env = []
        if writer == "protobuf":
            subprocess.run(["protoc", f"--python_out={self.dir}", "-I", os.path.join(SOURCE_DIR, "src", "metrics"),
                            "tf_event.proto"], check=True)
            env = [{"name": "PYTHONPATH", "value": self.dir}]
        at = f"/var/log/katib-e2e-{os.getpid()}/tfevent/"
        name = f"tfevent-{writer}"
        spec = {
            "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name},
            "spec": {
                "objective": {"type": "maximize", "objectiveMetricName": "accuracy", "additionalMetricNames": ["train/loss"]},
                "algorithm": {"algorithmName": "random"},
                "parallelTrialCount": 3, "maxTrialCount": 3,
                "metricsCollectorSpec": {"collector": {"kind": "TensorFlowEvent"},
                                         "source": {"fileSystemPath": {"path": at, "kind": "Directory"}}},
                "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}}],
                "trialTemplate": {
                    "primaryContainerName": "tensorflow",
                    "trialParameters": [{"name": "learningRate", "reference": "lr"}],
                    "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                        "containers": [{"name": "tensorflow", "image": "tensorflow/tensorflow", "env": env,
                                        "command": ["/usr/bin/python3", os.path.join(SOURCE_DIR, "tests", "e2e", "tfevents_writer.py"),
                                                    f"--writer={writer}", f"--dir={at}", "--lr=${trialParameters.learningRate}"],
                                        "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}}}],
                        "restartPolicy": "Never"}}}}}}}
        p = self.ty("run", "--containers", "host", self.write(f"{name}.yaml", json.dumps(spec)), timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        trials = self.tyjson("get", "trials", name)["items"]
        self.assertEqual([t["state"] for t in trials], ["Succeeded"] * 3, trials)
        for t in trials:
            lr = float(t["parameters"]["lr"])
            loss = [(lr - 0.03) ** 2 * 100 + 1.0 / s for s in (1, 2, 3)]
            got = self.tyjson("get", "metrics", t["job"], "--all", "--metric", "accuracy")["metrics"]
            self.assertEqual([(m["step"], round(m["value"], 4)) for m in got],
                             [(s, round(1 - loss[s - 1] / 2, 4)) for s in (1, 2, 3)], t)
            got = self.tyjson("get", "metrics", t["job"], "--all", "--metric", "train/loss")["metrics"]
            self.assertEqual([(m["step"], round(m["value"], 4)) for m in got], [(s, round(loss[s - 1], 4)) for s in (1, 2, 3)])
            self.assertAlmostEqual(t["objective"]["accuracy"], 1 - loss[2] / 2, places=4)  # max: the last step's
            # Katib reads an additional metric by the objective's direction unless metricStrategies says otherwise.
            self.assertAlmostEqual(t["metrics"]["train/loss"], loss[0], places=4)
        best = self.tyjson("describe", "experiment", name)
        self.assertEqual(best["phase"], "Succeeded", best)
        self.assertEqual(os.listdir(at) if os.path.isdir(at) else [], [])  # every trial wrote its own

    def test_event_files_written_by_python_protobuf(self):
        self.run_with("protobuf")

    def test_event_files_written_by_hand_encoded_bytes(self):
        self.run_with("raw")

    def test_a_collector_path_of_the_wrong_kind_is_refused(self):
        for kind, path, want in (("File", self.dir, "is a directory"), ("File", "/katib/out/", "is a directory"),
                                 ("TensorFlowEvent", __file__, "is a file")):
            spec = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "bad"},
                    "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
                             "algorithm": {"algorithmName": "random"},
                             "metricsCollectorSpec": {"collector": {"kind": kind},
                                                      "source": {"fileSystemPath": {"path": path}}},
                             "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
                             "trialTemplate": {"trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
                                 "spec": {"containers": [{"name": "c", "image": "i", "command": ["true"]}]}}}}}}}
            f = self.write("bad.yaml", json.dumps(spec, indent=1))
            p = self.ty("validate", f)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("spec.metricsCollectorSpec.source.fileSystemPath.path", p.stderr)
            self.assertIn(want, p.stderr)
            self.assertRegex(p.stderr, r"bad\.yaml:\d+:\d+:")


class KatibExampleShapes(E2E):
    """Katib's published example Experiments, in their shapes, with a stand-in that logs as their
    programs do (tests/e2e/katib_standin.py): the right number of trials, the right best trial,
    metrics from the right lines."""
    STANDIN = os.path.join(SOURCE_DIR, "tests", "e2e", "katib_standin.py")

    def experiment(self, name, style, objective, collector=None, extra_args=(), trials=4):
        spec = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"namespace": "kubeflow", "name": name},
                "spec": {"objective": objective, "algorithm": {"algorithmName": "random"},
                         "parallelTrialCount": 2, "maxTrialCount": trials, "maxFailedTrialCount": 1,
                         "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}}],
                         "trialTemplate": {"primaryContainerName": "training-container",
                                           "trialParameters": [{"name": "learningRate", "description": "Learning rate", "reference": "lr"}],
                                           "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                                               "containers": [{"name": "training-container", "image": "docker.io/kubeflowkatib/mxnet-mnist:latest",
                                                               "command": ["/usr/bin/python3", self.STANDIN, f"--style={style}",
                                                                           "--lr=${trialParameters.learningRate}", *extra_args],
                                                               "resources": {"limits": {"cpu": "100m", "memory": "128Mi"}}}],
                                               "restartPolicy": "Never"}}}}}}}
        if collector:
            spec["spec"]["metricsCollectorSpec"] = collector
        p = self.ty("run", "--containers", "host", self.write(f"{name}.yaml", json.dumps(spec)), timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        trials_out = self.tyjson("get", "trials", name)["items"]
        self.assertEqual(len(trials_out), trials)
        self.assertTrue(all(t["state"] == "Succeeded" for t in trials_out), trials_out)
        best = min(trials_out, key=lambda t: abs(float(t["parameters"]["lr"]) - 0.03))
        e = self.tyjson("describe", "experiment", name)
        self.assertEqual(e["best"]["trial"], best["trial"], e["best"])
        return trials_out

    def series(self, job, metric):
        return [(m["step"], round(m["value"], 6)) for m in self.tyjson("get", "metrics", job, "--all", "--metric", metric)["metrics"]]

    def test_custom_collector_runs_beside_the_program_and_only_its_output_counts(self):
        """collector kind Custom: its command runs beside the trial's program, told its pid, and
        reads what the program wrote after it ended; the program's own stdout is not parsed."""
        train = ("echo accuracy=0.0; awk -v lr=${trialParameters.learningRate} "
                 "'BEGIN { for (e = 1; e <= 3; e++) printf \"%.6f\\n\", 1 - (lr - 0.03) ^ 2 * 100 - 0.1 / e }' "
                 "> $TRAINYARD_OUTPUT_DIR/result.txt")
        collect = ("while kill -0 $TRAINYARD_MAIN_PID 2>/dev/null; do sleep 0.05; done; n=0; "
                   "while read v; do n=$((n+1)); echo \"{metricName: accuracy, metricValue: $v} epoch $n\"; done "
                   "< $TRAINYARD_OUTPUT_DIR/result.txt")
        spec = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "custom"},
                "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
                         "algorithm": {"algorithmName": "random"}, "parallelTrialCount": 2, "maxTrialCount": 3,
                         "metricsCollectorSpec": {
                             "collector": {"kind": "Custom", "customCollector": {
                                 "name": "custom-metrics-logger-and-collector", "image": "example/collector",
                                 "command": ["/bin/sh", "-c"], "args": [collect]}},
                             "source": {"filter": {"metricsFormat": ["{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)}"]}}},
                         "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}}],
                         "trialTemplate": {"trialParameters": [{"name": "learningRate", "reference": "lr"}], "trialSpec": {
                             "apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [{
                                 "name": "training-container", "image": "busybox", "command": ["/bin/sh", "-c", train],
                                 "resources": {"limits": {"cpu": "100m"}}}], "restartPolicy": "Never"}}}}}}}
        p = self.ty("run", "--containers", "host", self.write("custom.yaml", json.dumps(spec)), timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertIn("customCollector.image: the collector runs in the trial's own container", p.stderr)
        trials = self.tyjson("get", "trials", "custom")["items"]
        self.assertEqual([t["state"] for t in trials], ["Succeeded"] * 3, trials)
        for t in trials:
            lr = float(t["parameters"]["lr"])
            want = [round(1 - (lr - 0.03) ** 2 * 100 - 0.1 / e, 6) for e in (1, 2, 3)]
            self.assertEqual([round(v, 6) for _, v in self.series(t["job"], "accuracy")], want)  # not the program's 0.0
            self.assertAlmostEqual(t["objective"]["accuracy"], want[-1], places=6)

    def test_bad_algorithm_settings_exit_2_with_their_place(self):
        cases = (("hyperband", [{"name": "resource_name", "value": "lr"}, {"name": "r_l", "value": "9"}, {"name": "eta", "value": "1.5"}],
                  "eta must be at least 2"),
                 ("pbt", [{"name": "n_population", "value": "2"}, {"name": "suggestion_trial_dir", "value": "/c"}],
                  "setting n_population must be a number >= 3"),
                 ("tpe", [{"name": "n_startup_trails", "value": "3"}], "unknown setting n_startup_trails"),
                 ("pbt", [{"name": "n_population", "value": "5"}, {"name": "populaton", "value": "5"},
                          {"name": "suggestion_trial_dir", "value": "/c"}], "unknown setting populaton"))
        for algorithm, settings, want in cases:
            spec = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "bad"},
                    "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
                             "algorithm": {"algorithmName": algorithm, "algorithmSettings": settings},
                             "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "1"}}],
                             "trialTemplate": {"trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {
                                 "spec": {"containers": [{"name": "c", "image": "i", "command": ["true"]}]}}}}}}}
            p = self.ty("validate", self.write("bad.yaml", json.dumps(spec, indent=1)))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertRegex(p.stderr, r"bad\.yaml:\d+:\d+: spec\.algorithm")
            self.assertIn(want, p.stderr)

    def test_random_example_mxnet_logging_on_stderr(self):
        trials = self.experiment("random", "mxnet", {"type": "maximize", "goal": 0.99, "objectiveMetricName": "Validation-accuracy",
                                                     "additionalMetricNames": ["Train-accuracy"]})
        for t in trials:
            lr = float(t["parameters"]["lr"])
            acc = [round(1 - abs(lr - 0.03) * 10 - 0.1 / e, 6) for e in (1, 2, 3)]
            self.assertEqual([v for _, v in self.series(t["job"], "Validation-accuracy")], acc)
            self.assertEqual([v for _, v in self.series(t["job"], "Train-accuracy")], [round(a - 0.01, 6) for a in acc])
            self.assertAlmostEqual(t["objective"]["Validation-accuracy"], acc[-1], places=6)

    def test_pytorch_example_train_epoch_lines(self):
        trials = self.experiment("pytorch-mnist", "pytorch", {"type": "maximize", "goal": 0.99,
                                                              "objectiveMetricName": "Validation-accuracy",
                                                              "additionalMetricNames": ["loss"]})
        for t in trials:
            lr = float(t["parameters"]["lr"])
            losses = [round(abs(lr - 0.03) * 10 + 0.1 / e + 0.5 - pct / 100, 4) for e in (1, 2, 3) for pct in (0, 11, 21)]
            self.assertEqual([round(v, 4) for _, v in self.series(t["job"], "loss")], losses)
            self.assertEqual(len(self.series(t["job"], "Validation-accuracy")), 3)

    def test_file_metrics_collector_example_with_its_metrics_format(self):
        if os.geteuid() != 0:
            self.skipTest("SKIPPED: a trial's own /katib needs a mount namespace (root) or a container")
        at = f"/katib-e2e-shapes-{os.getpid()}/mnist.log"
        trials = self.experiment(
            "file-metrics-collector", "katib-text", {"type": "maximize", "goal": 0.99, "objectiveMetricName": "accuracy",
                                                    "additionalMetricNames": ["loss"]},
            collector={"source": {"filter": {"metricsFormat": ["{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)}"]},
                                  "fileSystemPath": {"path": at, "kind": "File", "format": "TEXT"}},
                       "collector": {"kind": "File"}},
            extra_args=[f"--log-path={at}"])
        for t in trials:
            lr = float(t["parameters"]["lr"])
            self.assertEqual([v for _, v in self.series(t["job"], "accuracy")],
                             [round(1 - abs(lr - 0.03) * 10 - 0.1 / e, 6) for e in (1, 2, 3)])
            self.assertEqual([v for _, v in self.series(t["job"], "loss")], [round(abs(lr - 0.03) * 10 + 0.1 / e, 6) for e in (1, 2, 3)])


class KatibResumePolicy(E2E):
    def test_resume_policy_never_keeps_a_finished_experiment_closed(self):
        def spec(policy):
            return json.dumps({
                "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": f"rp-{policy.lower()}"},
                "spec": {"objective": {"type": "minimize", "objectiveMetricName": "loss"},
                         "algorithm": {"algorithmName": "random"}, "maxTrialCount": 1, "resumePolicy": policy,
                         "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
                         "trialTemplate": {"trialParameters": [{"name": "x", "reference": "x"}], "trialSpec": {
                             "apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {"containers": [{
                                 "name": "c", "image": "busybox", "command": ["/bin/sh", "-c", "echo loss=${trialParameters.x}"],
                                 "resources": {"limits": {"cpu": "100m"}}}]}}}}}}})
        never = self.write("never.yaml", spec("Never"))
        self.ty("run", "--containers", "host", never, check=0)
        p = self.ty("run", "--containers", "host", "--resume", never)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has resumePolicy Never", p.stderr)
        long_running = self.write("long.yaml", spec("LongRunning"))
        self.ty("run", "--containers", "host", long_running, check=0)
        p = self.ty("run", "--containers", "host", "--resume", long_running)
        self.assertIn("resuming experiment rp-longrunning", p.stderr)
        bad = self.write("bad.yaml", spec("Sometimes"))
        p = self.ty("validate", bad)
        self.assertEqual(p.returncode, 2)
        self.assertIn("spec.resumePolicy: expected Never, LongRunning or FromVolume", p.stderr)


if __name__ == "__main__":
    unittest.main()
