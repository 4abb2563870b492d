#!/usr/bin/env python3
"""Robustness under hostile clients (issue #10), each against its baseline in the same run:

  1. /healthz latency of `trainyard server` and `trainyard serve` with 1,000 slow connections
     open (each sent half a request and one more header line), against the same server idle.
     Target: p99 <= 100 ms.
  2. `trainyard serve`: a KServe V2 request declaring shape [10^9, 4] with 4 values, against a
     valid [1, 4] request; peak RSS of the server afterwards. Targets: 400 within 100 ms,
     RSS < 300 MB.
  3. `trainyard server`: a series spanning steps -10^12..10^12 read with maxPoints=10, against
     a 3-point series over steps 0..2. Target: within 1 s.

    /usr/bin/python3 bench/robustness.py
"""
import http.client
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from common import BIN, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from hostile import peak_rss_mb, slow_clients  # noqa: E402


def start(cmd, log):
    f = open(log, "w+")
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    for _ in range(3000):
        f.seek(0)
        text = f.read()
        if "listening on " in text:
            return p, text.split("listening on ")[1].split()[0]
        time.sleep(0.01)
    raise RuntimeError(f"{cmd} did not start")


def request(url, method, path, body=None, headers=None):
    host, port = url.replace("http://", "").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    t0 = time.perf_counter()
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    dt = time.perf_counter() - t0
    c.close()
    return r.status, data, dt


def latencies(url, n=200):
    return sorted(request(url, "GET", "/healthz")[2] * 1000 for _ in range(n))


def p(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    import torch

    work = tempfile.mkdtemp(prefix="ty-bench-robust-")
    procs = []
    try:
        me = pwd.getpwuid(os.getuid()).pw_name
        server, surl = start([BIN, "--data-dir", os.path.join(work, "data"), "server", "--port", "0", "--run-as", me],
                             os.path.join(work, "server.log"))
        procs.append(server)

        class Sum(torch.nn.Module):
            def forward(self, x: torch.Tensor):
                return x.sum(1, keepdim=True)

        models = os.path.join(work, "models")
        os.makedirs(os.path.join(models, "m", "1"))
        torch.jit.script(Sum()).save(os.path.join(models, "m", "1", "model.pt"))
        with open(os.path.join(models, "m", "config.yaml"), "w") as f:
            f.write("max_batch_size: 8\ninputs: [{name: x, datatype: FP32, shape: [-1, 4]}]\n")
        serve, vurl = start([BIN, "serve", "--models", models, "--port", "0"], os.path.join(work, "serve.log"))
        procs.append(serve)

        print("1. /healthz with 1,000 slow connections open (200 requests each)")
        for name, url in (("server", surl), ("serve", vurl)):
            idle = latencies(url)
            socks = slow_clients(url, 1000)
            loaded = latencies(url)
            for s in socks:
                s.close()
            print(f"   {name:6s} idle p50 {p(idle, .5):6.2f} ms p99 {p(idle, .99):6.2f} ms | 1,000 slow: p50 "
                  f"{p(loaded, .5):6.2f} ms p99 {p(loaded, .99):6.2f} ms (target p99 <= 100)  ratio p50 {p(loaded, .5) / p(idle, .5):.2f}")

        print("2. KServe V2 shape [10^9, 4] with 4 values against a valid [1, 4] request (median of 50)")
        infer = lambda shape: request(vurl, "POST", "/v2/models/m/infer",
                                      {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": [1, 2, 3, 4]}]},
                                      {"Content-Type": "application/json"})
        ok = [infer([1, 4]) for _ in range(50)]
        bad = [infer([1000000000, 4]) for _ in range(50)]
        assert all(s == 200 for s, _, _ in ok) and all(s == 400 for s, _, _ in bad)
        ok_ms = statistics.median(t for _, _, t in ok) * 1000
        bad_ms = statistics.median(t for _, _, t in bad) * 1000
        print(f"   valid {ok_ms:.2f} ms, declared 10^9 rows {bad_ms:.2f} ms -> 400 (target <= 100 ms)  ratio {bad_ms / ok_ms:.2f};"
              f" serve peak RSS {peak_rss_mb(serve.pid):.0f} MB (target < 300)")

        print("3. series read with maxPoints=10: steps -10^12..10^12 against steps 0..2 (median of 20)")
        y = {"Content-Type": "application/yaml"}
        j = {"Content-Type": "application/json"}
        for name in ("wide", "narrow"):
            spec = f"apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {{name: {name}}}\nspec:\n  command: [sleep, '600']\n"
            c = http.client.HTTPConnection(surl.replace("http://", "").split(":")[0], int(surl.rsplit(":", 1)[1]))
            c.request("POST", "/api/v1/jobs", body=spec, headers=y)
            assert c.getresponse().status == 201
        for _ in range(600):
            if all(json.loads(request(surl, "GET", f"/api/v1/jobs/{n}")[1])["phase"] == "Running" for n in ("wide", "narrow")):
                break
            time.sleep(0.05)
        steps = {"wide": (-10**12, 0, 10**12), "narrow": (0, 1, 2)}
        for name, ss in steps.items():
            st, _, _ = request(surl, "POST", f"/api/v1/jobs/{name}/metrics", {"points": [{"name": "x", "value": 1, "step": s} for s in ss]}, j)
            assert st == 200
        times = {}
        for name in steps:
            times[name] = statistics.median(request(surl, "GET", f"/api/v1/jobs/{name}/metrics/x?maxPoints=10")[2] for _ in range(20)) * 1000
        print(f"   narrow {times['narrow']:.2f} ms, wide {times['wide']:.2f} ms (target <= 1000)  ratio {times['wide'] / times['narrow']:.2f}")
        for name in steps:
            request(surl, "POST", f"/api/v1/jobs/{name}/cancel", None, j)
    finally:
        for pr in procs:
            pr.send_signal(signal.SIGTERM)
            pr.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
