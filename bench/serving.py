#!/usr/bin/env python3
"""Serving benchmarks (issue #6), each against its baseline in the same run:

1. overhead: the Fashion-MNIST MLP (784-256-10), batch 1, one request at a time over
   loopback; server-side overhead (parse + queue + serialize, from the server's own
   timing header) p50/p99 next to an in-process libtorch forward of the same input.
2. batching: a small CNN under 64 keep-alive connections with dynamic batching;
   images/s against the in-process forward throughput at the mean batch size formed.
3. the usual alternative: the same MLP behind FastAPI + uvicorn + torch, 64 connections,
   batch-1 JSON requests, against trainyard serve under the same load, both driven by
   Debian's wrk (one event-loop thread, so the client takes little of the 2 cores).

    /usr/bin/python3 bench/serving.py [--seconds 10]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import torch

from common import BIN, ROOT

LOAD = os.path.join(ROOT, "build", "bin", "serving_load")


def make_models(repo):
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(1, 16, 3, padding=1)
            self.c2 = torch.nn.Conv2d(16, 32, 3, padding=1)
            self.fc = torch.nn.Linear(32 * 7 * 7, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
            return self.fc(x.flatten(1))

    for name, model, cfg in [
        ("mlp", mlp, "inputs: [{name: input, datatype: FP32, shape: [-1, 784]}]\nmax_batch_size: 64\n"),
        ("cnn", CNN(), "inputs: [{name: image, datatype: FP32, shape: [-1, 1, 28, 28]}]\nmax_batch_size: 64\n"
                       "queue_capacity: 4096\n"),
    ]:
        os.makedirs(os.path.join(repo, name, "1"))
        torch.jit.script(model.eval()).save(os.path.join(repo, name, "1", "model.pt"))
        with open(os.path.join(repo, name, "config.yaml"), "w") as f:
            f.write(cfg)


def start(cmd, ready_text, log):
    out = open(log, "w+")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        out.seek(0)
        if ready_text in out.read():
            return p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    out.seek(0)
    sys.exit(f"{cmd[0]} did not start:\n{out.read()}")


def load(port, path, body_file, conns, seconds):
    out = subprocess.run([LOAD, "http", "127.0.0.1", str(port), path, body_file, str(conns), str(seconds)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def wrk(port, path, body_file, conns, seconds):
    script = body_file + ".lua"
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f'local f = io.open("{body_file}", "r")\nwrk.body = f:read("*a")\nf:close()\n')
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{int(round(seconds))}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    def ms(tag):
        for line in out.splitlines():
            if line.strip().startswith(tag):
                v = line.split()[1]
                return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
        return float("nan")
    rps = next(float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec"))
    errors = sum(int(l.split()[-1]) for l in out.splitlines() if "Non-2xx" in l)
    return {"rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%"), "errors": errors}


def inprocess(model, dims, batch, seconds):
    out = subprocess.run([LOAD, "inprocess", model, *map(str, dims), "--batch", str(batch), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


FASTAPI_APP = """
import sys, torch, uvicorn
from fastapi import FastAPI
torch.set_num_threads(1)
model = torch.jit.load(sys.argv[1]).eval()
app = FastAPI()

@app.post("/v1/models/mlp:predict")
def predict(body: dict):
    with torch.no_grad():
        y = model(torch.tensor(body["instances"], dtype=torch.float32))
    return {"predictions": y.tolist()}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
print("never")
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ty-serving-bench-")
    repo = os.path.join(tmp, "models")
    make_models(repo)
    torch.manual_seed(1)
    mlp_body = os.path.join(tmp, "mlp.json")
    with open(mlp_body, "w") as f:
        json.dump({"instances": [[round(float(v), 4) for v in torch.randn(784)]]}, f)
    cnn_body = os.path.join(tmp, "cnn.json")
    with open(cnn_body, "w") as f:
        json.dump({"instances": [[[[round(float(v), 4) for v in row] for row in torch.randn(28, 28)]]]}, f)

    port = 18700
    serve = start([BIN, "serve", "--models", repo, "--port", str(port)], "listening on", os.path.join(tmp, "serve.log"))
    try:
        print("1. overhead: MLP 784-256-10, batch 1, one request at a time")
        load(port, "/v1/models/mlp:predict", mlp_body, 1, 2)  # warm up
        seq = load(port, "/v1/models/mlp:predict", mlp_body, 1, a.seconds)
        base = inprocess(os.path.join(repo, "mlp", "1", "model.pt"), [784], 1, a.seconds / 2)
        print(f"   in-process libtorch forward        p50 {base['forward_p50_us']:7.1f} us  p99 {base['forward_p99_us']:7.1f} us")
        print(f"   trainyard serve, whole request     p50 {seq['p50_us']:7.1f} us  p99 {seq['p99_us']:7.1f} us  ({seq['rps']:.0f} req/s)")
        print(f"   server-side overhead (parse+queue+serialize)  p50 {seq['overhead_p50_us']:5.1f} us  p99 {seq['overhead_p99_us']:5.1f} us"
              f"  (target p50 <= 50 us)")

        print("2. batching: small CNN, 64 keep-alive connections")
        load(port, "/v1/models/cnn:predict", cnn_body, 64, 2)
        cnn = load(port, "/v1/models/cnn:predict", cnn_body, 64, a.seconds)
        mb = max(1, round(cnn["mean_batch"]))
        one = inprocess(os.path.join(repo, "cnn", "1", "model.pt"), [1, 28, 28], 1, 2)
        at = inprocess(os.path.join(repo, "cnn", "1", "model.pt"), [1, 28, 28], mb, a.seconds / 2)
        print(f"   in-process forward, batch 1: {one['forward_p50_us']:.0f} us/image; batch {mb}: {at['images_per_s']:.0f} images/s")
        print(f"   trainyard serve: {cnn['rps']:.0f} images/s, mean batch {cnn['mean_batch']:.1f}, p99 {cnn['p99_us'] / 1000:.1f} ms, "
              f"failures {cnn['failures']}  ->  {cnn['rps'] / at['images_per_s']:.2f} of in-process (target >= 0.80)")

        print("3. against FastAPI + uvicorn + torch: MLP, 64 connections, batch-1 JSON (wrk)")
        wrk(port, "/v1/models/mlp:predict", mlp_body, 64, 2)
        ours = wrk(port, "/v1/models/mlp:predict", mlp_body, 64, a.seconds)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    app = os.path.join(tmp, "app.py")
    with open(app, "w") as f:
        f.write(FASTAPI_APP)
    fport = port + 1
    fast = subprocess.Popen(["/usr/bin/python3", app, os.path.join(repo, "mlp", "1", "model.pt"), str(fport)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        with open(mlp_body, "rb") as f:
            body = f.read()
        while time.time() < deadline:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{fport}/v1/models/mlp:predict", data=body,
                                             headers={"Content-Type": "application/json"})
                urllib.request.urlopen(req, timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        wrk(fport, "/v1/models/mlp:predict", mlp_body, 64, 2)
        theirs = wrk(fport, "/v1/models/mlp:predict", mlp_body, 64, a.seconds)
    finally:
        fast.send_signal(signal.SIGTERM)
        fast.wait(30)
    for label, r in (("FastAPI + uvicorn:", theirs), ("trainyard serve:  ", ours)):
        print(f"   {label} {r['rps']:7.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  non-2xx {r['errors']}")
    print(f"   throughput ratio {ours['rps'] / theirs['rps']:.1f}x (target >= 10x), p99 {theirs['p99_ms'] / ours['p99_ms']:.1f}x lower")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
