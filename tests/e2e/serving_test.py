"""End-to-end: Fashion-MNIST job -> `models push` -> `trainyard serve` -> predictions over
TF-Serving REST and KServe V2, version swaps under load, failed loads, metrics."""
import gzip
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

import numpy as np

from common import BIN, E2E, SOURCE_DIR, start_listening, RUN_AS_SELF

FMNIST = "/usr/share/datasets/fashion-mnist"


def test_images(n):
    with gzip.open(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:n].astype(np.float32) / 255.0
    with gzip.open(os.path.join(FMNIST, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return ((x - 0.2860) / 0.3530).round(4), y  # the training's normalisation


class Serving(E2E):
    @classmethod
    def setUpClass(cls):
        # One small training for the whole class: 1 epoch on 10,000 images.
        cls.base = E2E()
        cls.base.setUp()
        cls.base.ty("run", os.path.join(SOURCE_DIR, "examples", "fmnist", "job.yaml"), "-q",
                    "--set", "spec.args[1]=1", "--set", "spec.args[8]=--train-limit", "--set", "spec.args[9]=10000",
                    check=0, timeout=600)
        cls.x, cls.y = test_images(200)

    @classmethod
    def tearDownClass(cls):
        cls.base.tearDown()

    def setUp(self):
        super().setUp()
        self.data = self.base.data  # the trained job's store
        self.models = os.path.join(self.dir, "models")

    def push(self, name="fmnist", source="fmnist-mlp"):
        out = self.ty("models", "push", "--from", source, "--name", name, "--models", self.models, "-o", "json", check=0)
        return json.loads(out.stdout)

    def serve(self, *args):
        self.proc, self.url = start_listening(
            self, [BIN, "serve", "--models", self.models, "--port", "0", "--poll", "0.2", *args], os.path.join(self.dir, "serve.log"))

    def call(self, method, path, body=None):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if r.headers.get("Content-Type", "").startswith("application/json") else text)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def test_job_to_api_over_both_protocols(self):
        pushed = self.push()
        self.assertEqual((pushed["model"], pushed["version"]), ("fmnist", 1))
        self.serve()
        # Status and metadata, TF-Serving's and V2's shapes.
        st, s = self.call("GET", "/v1/models/fmnist")
        self.assertEqual(s, {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                        "status": {"error_code": "OK", "error_message": ""}}]})
        st, md = self.call("GET", "/v1/models/fmnist/metadata")
        sig = md["metadata"]["signature_def"]["signature_def"]["serving_default"]
        self.assertEqual(sig["inputs"]["input"]["dtype"], "DT_FLOAT")
        self.assertEqual([d["size"] for d in sig["inputs"]["input"]["tensor_shape"]["dim"]], ["-1", "784"])
        self.assertEqual(md["model_spec"], {"name": "fmnist", "signature_name": "", "version": "1"})
        st, m = self.call("GET", "/v2/models/fmnist")
        self.assertEqual((m["name"], m["versions"], m["platform"]), ("fmnist", ["1"], "pytorch_torchscript"))
        self.assertEqual(m["inputs"], [{"name": "input", "datatype": "FP32", "shape": [-1, 784]}])
        self.assertEqual(self.call("GET", "/v2/health/live"), (200, {"live": True}))
        self.assertEqual(self.call("GET", "/v2/health/ready"), (200, {"ready": True}))
        self.assertEqual(self.call("GET", "/v2/models/fmnist/versions/1/ready"), (200, {"name": "fmnist", "ready": True}))

        # Predictions for 200 test images, three ways; all agree and are mostly right.
        row, col, v2 = [], [], []
        for i in range(0, 200, 25):
            batch = self.x[i:i + 25].tolist()
            st, r = self.call("POST", "/v1/models/fmnist:predict", {"signature_name": "serving_default", "instances": batch})
            self.assertEqual(st, 200, r)
            row += [int(np.argmax(p)) for p in r["predictions"]]
            st, r = self.call("POST", "/v1/models/fmnist/versions/1:predict", {"inputs": batch})
            self.assertEqual(st, 200, r)
            col += [int(np.argmax(p)) for p in r["outputs"]]
            st, r = self.call("POST", "/v2/models/fmnist/infer", {
                "id": f"req-{i}", "inputs": [{"name": "input", "shape": [25, 784], "datatype": "FP32",
                                              "data": self.x[i:i + 25].reshape(-1).tolist()}],
                "outputs": [{"name": "output0"}]})
            self.assertEqual(st, 200, r)
            self.assertEqual((r["id"], r["model_name"], r["model_version"]), (f"req-{i}", "fmnist", "1"))
            out = r["outputs"][0]
            self.assertEqual((out["name"], out["datatype"], out["shape"]), ("output0", "FP32", [25, 10]))
            v2 += [int(np.argmax(out["data"][k * 10:(k + 1) * 10])) for k in range(25)]
        self.assertEqual(row, col)
        self.assertEqual(row, v2)
        accuracy = float(np.mean(np.array(row) == self.y))
        self.assertGreater(accuracy, 0.75, f"accuracy {accuracy}")

        # Bad requests: 400 naming the input, 404 for what is not served.
        st, r = self.call("POST", "/v1/models/fmnist:predict", {"instances": [[0.0] * 780]})
        self.assertEqual(st, 400)
        self.assertIn('input "input"', r["error"])
        self.assertIn("784", r["error"])
        st, r = self.call("POST", "/v2/models/fmnist/infer", {"inputs": [{"name": "input", "shape": [1, 784], "datatype": "INT32", "data": [0] * 784}]})
        self.assertEqual(st, 400)
        self.assertIn("INT32 but the model expects FP32", r["error"])
        st, r = self.call("POST", "/v2/models/fmnist/infer", {"inputs": [{"name": "image", "shape": [1, 784], "datatype": "FP32", "data": [0] * 784}]})
        self.assertEqual(st, 400)
        self.assertIn('no input "image"', r["error"])
        st, r = self.call("POST", "/v1/models/fmnist:predict", b"{nope")
        self.assertEqual(st, 400)
        self.assertIn("not valid JSON", r["error"])
        self.assertEqual(self.call("POST", "/v1/models/fmnist:predict", {"instances": self.x[:40].tolist()})[0], 400)  # > max_batch_size
        self.assertEqual(self.call("POST", "/v1/models/other:predict", {"instances": [[0.0] * 784]})[0], 404)
        self.assertEqual(self.call("GET", "/v1/models/fmnist/versions/7")[0], 404)

        # Metrics per model and version.
        st, text = self.call("GET", "/metrics")
        self.assertIn('trainyard_inference_requests_total{model="fmnist",version="1",outcome="success"} 24', text)
        self.assertIn('trainyard_inference_requests_total{model="fmnist",version="1",outcome="failure"} 5', text)
        for family in ("queue", "compute", "request", "parse", "serialize"):
            self.assertIn(f'trainyard_inference_{family}_seconds_count{{model="fmnist",version="1"}} 24', text)
        self.assertIn('trainyard_inference_batch_size_bucket{model="fmnist",version="1",le="32"}', text)

    def test_version_swap_under_load_fails_nothing(self):
        self.push()
        self.serve()
        stop = threading.Event()
        results = []  # (status, version)
        body = {"inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": self.x[0].tolist()}]}

        def client():
            while not stop.is_set():
                st, r = self.call("POST", "/v2/models/fmnist/infer", body)
                results.append((st, r.get("model_version") if st == 200 else r))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        self.wait_until("traffic on version 1", lambda: len(results) > 50)
        self.push()  # version 2 appears; the server loads it, warms it up, swaps, drains 1
        self.wait_until("traffic on version 2", lambda: any(v == "2" for _, v in results[-20:]), timeout=60)
        n = len(results)
        self.wait_until("more traffic after the swap", lambda: len(results) > n + 50)
        stop.set()
        for t in threads:
            t.join()
        failures = [r for r in results if r[0] != 200]
        self.assertEqual(failures, [], f"{len(failures)} of {len(results)} requests failed")
        self.assertEqual({v for _, v in results}, {"1", "2"})
        self.assertEqual(self.call("GET", "/v1/models/fmnist/versions/2")[1]["model_version_status"][0]["state"], "AVAILABLE")

        # A version that cannot load is reported and leaves version 2 serving.
        os.makedirs(os.path.join(self.models, "fmnist", "3"))
        with open(os.path.join(self.models, "fmnist", "3", "model.pt"), "w") as f:
            f.write("not a TorchScript archive")
        def v3_failed():
            s = self.call("GET", "/v1/models/fmnist")[1]["model_version_status"]
            return any(x["version"] == "3" and x["state"] == "END" for x in s)
        self.wait_until("version 3 to fail loading", v3_failed)
        s = {x["version"]: x for x in self.call("GET", "/v1/models/fmnist")[1]["model_version_status"]}
        self.assertIn("cannot load TorchScript", s["3"]["status"]["error_message"])
        st, r = self.call("POST", "/v2/models/fmnist/infer", body)
        self.assertEqual((st, r.get("model_version")), (200, "2"), r)

    def test_control_plane_hosts_the_same_endpoints(self):
        self.push()
        self.push()
        with open(os.path.join(self.models, "fmnist", "2", "model.pt"), "w") as f:
            f.write("broken")  # the newest version cannot load: the one before serves
        _, self.url = start_listening(self, [BIN, "--data-dir", self.data, "server", "--port", "0", *RUN_AS_SELF, "--models", self.models],
                                      os.path.join(self.dir, "server.log"))
        st, m = self.call("GET", "/v2/models/fmnist")
        self.assertEqual((st, m.get("versions")), (200, ["1"]), m)
        st, r = self.call("POST", "/v1/models/fmnist:predict", {"instances": [self.x[0].tolist()]})
        self.assertEqual(st, 200, r)
        import torch  # the same model in-process: the hosted endpoint must agree with it
        expected = torch.jit.load(os.path.join(self.models, "fmnist", "1", "model.pt"))(torch.tensor(self.x[:1]))[0]
        np.testing.assert_allclose(r["predictions"][0], expected.detach().numpy(), rtol=1e-4, atol=1e-5)
        st, jobs = self.call("GET", "/api/v1/jobs")
        self.assertEqual((st, jobs["items"][0]["name"]), (200, "fmnist-mlp"))
        st, text = self.call("GET", "/metrics")
        self.assertIn('trainyard_inference_requests_total{model="fmnist",version="1",outcome="success"} 1', text)
        self.assertIn("trainyard_jobs", text)

    def test_labels_policies_and_push_from_an_experiment(self):
        self.push()
        self.push()
        with open(os.path.join(self.models, "fmnist", "config.yaml"), "w") as f:
            f.write("version_policy: {all: true}\nlabels: {stable: 1, canary: 2}\nmax_batch_size: 8\n"
                    "inputs: [{name: pixels, datatype: FP32, shape: [-1, 784]}]\n")
        self.serve()
        one = {"instances": [self.x[0].tolist()]}
        self.assertEqual(self.call("POST", "/v1/models/fmnist/labels/canary:predict", one)[0], 200)
        st, s = self.call("GET", "/v1/models/fmnist/labels/stable")
        self.assertEqual(s["model_version_status"][0]["version"], "1")
        self.assertEqual(self.call("GET", "/v2/models/fmnist")[1]["versions"], ["1", "2"])
        self.assertEqual(self.call("GET", "/v2/models/fmnist")[1]["inputs"][0]["name"], "pixels")
        self.assertEqual(self.call("POST", "/v1/models/fmnist/labels/nightly:predict", one)[0], 404)
        self.assertEqual(self.call("POST", "/v1/models/fmnist:predict", {"instances": self.x[:9].tolist()})[0], 400)

        # An experiment's best trial: each trial "exports" the trained model.
        model = os.path.join(self.data, "outputs", "fmnist-mlp", "model.pt")
        self.write("sweep.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: Experiment
            metadata: {{name: pick}}
            spec:
              objective: {{metric: loss, goal: minimize}}
              algorithm: {{name: grid}}
              parallelTrials: 1
              maxTrials: 3
              parameters: [{{name: x, type: discrete, values: [3, 1, 2]}}]
              trialTemplate:
                spec:
                  command: [/bin/sh, -c, "cp {model} $TRAINYARD_OUTPUT_DIR/model.pt && echo loss=${{trialParameters.x}}"]
            """)
        self.ty("run", os.path.join(self.dir, "sweep.yaml"), check=0)
        pushed = self.push("picked", "pick")
        self.assertIn("best trial", pushed["from"])
        best = self.tyjson("describe", "experiment", "pick")["best"]
        self.assertEqual(best["parameters"]["x"], "1")
        self.assertIn(best["job"], pushed["from"])
        p = self.ty("models", "push", "--from", "nothing", "--name", "x", "--models", self.models)
        self.assertEqual(p.returncode, 2)
        self.assertIn('no job or experiment named "nothing"', p.stderr)


class SpecExamples(E2E):
    """The published examples, with a model that has their inputs: TF-Serving's REST API
    doc (named inputs `signal` [5] and `sensor` [2, 2], row and columnar; its string `tag`
    input has no TorchScript counterpart) and the KServe V2 doc (`input0` [2, 2] integers,
    `input1` booleans, `id` 42, `outputs` [{name: output0}])."""

    def test_published_request_shapes(self):
        import torch

        class TwoInOut(torch.nn.Module):
            def forward(self, signal: torch.Tensor, sensor: torch.Tensor):
                return signal.sum(1, keepdim=True), sensor * 2

        class V2Example(torch.nn.Module):
            def forward(self, input0: torch.Tensor, input1: torch.Tensor):
                return input0 + 1, input1.logical_not()

        repo = os.path.join(self.dir, "models")
        for name, mod, cfg in [
            ("tf", TwoInOut(), "inputs: [{name: signal, datatype: FP32, shape: [-1, 5]}, {name: sensor, datatype: FP32, shape: [-1, 2, 2]}]\n"
                               "outputs: [{name: total, datatype: FP32, shape: [-1, 1]}, {name: doubled, datatype: FP32, shape: [-1, 2, 2]}]\n"),
            ("v2", V2Example(), "inputs: [{name: input0, datatype: INT32, shape: [-1, 2]}, {name: input1, datatype: BOOL, shape: [-1]}]\n"
                                "outputs: [{name: output0, datatype: INT32, shape: [-1, 2]}, {name: output1, datatype: BOOL, shape: [-1]}]\n"),
        ]:
            os.makedirs(os.path.join(repo, name, "1"))
            torch.jit.script(mod).save(os.path.join(repo, name, "1", "model.pt"))
            with open(os.path.join(repo, name, "config.yaml"), "w") as f:
                f.write(cfg)
        _, self.url = start_listening(self, [BIN, "serve", "--models", repo, "--port", "0"], os.path.join(self.dir, "serve.log"))

        def post(path, body):
            req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        # TF-Serving REST API doc, row format (named inputs per instance).
        st, r = post("/v1/models/tf:predict", {"signature_name": "serving_default", "instances": [
            {"signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]}]})
        self.assertEqual(st, 200, r)
        self.assertEqual(r["predictions"], [{"total": [15.0], "doubled": [[2.0, 4.0], [6.0, 8.0]]},
                                            {"total": [15.0], "doubled": [[8.0, 10.0], [12.0, 16.0]]}])
        # ... and columnar format.
        st, r = post("/v1/models/tf:predict", {"inputs": {"signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
                                                          "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]]}})
        self.assertEqual(st, 200, r)
        self.assertEqual(r["outputs"], {"total": [[15.0], [15.0]], "doubled": [[[2.0, 4.0], [6.0, 8.0]], [[8.0, 10.0], [12.0, 16.0]]]})
        st, r = post("/v1/models/tf:predict", {"instances": [{"signal": [1, 2, 3, 4, 5]}]})
        self.assertEqual(st, 400)
        self.assertIn('"sensor"', r["error"])

        # KServe V2 doc: id echoed, only the requested output, data flat.
        st, r = post("/v2/models/v2/infer", {"id": "42", "inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]},
            {"name": "input1", "shape": [2], "datatype": "BOOL", "data": [True, False]}],
            "outputs": [{"name": "output0"}]})
        self.assertEqual(st, 200, r)
        self.assertEqual(r, {"model_name": "v2", "model_version": "1", "id": "42",
                             "outputs": [{"name": "output0", "datatype": "INT32", "shape": [2, 2], "data": [2, 3, 4, 5]}]})
        st, r = post("/v2/models/v2/infer", {"inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]},
            {"name": "input1", "shape": [2], "datatype": "BOOL", "data": [True, False]}]})
        self.assertEqual([o["name"] for o in r["outputs"]], ["output0", "output1"])
        self.assertEqual(r["outputs"][1]["data"], [False, True])
        st, r = post("/v2/models/v2/infer", {"inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3]},
            {"name": "input1", "shape": [2], "datatype": "BOOL", "data": [True, False]}]})
        self.assertEqual(st, 400)
        self.assertIn('input "input0": 3 values for shape [2, 2]', r["error"])


if __name__ == "__main__":
    unittest.main()
