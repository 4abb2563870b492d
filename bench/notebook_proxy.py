#!/usr/bin/env python3
"""Notebook proxy overhead: a kernel round trip (execute `1+1`, until the
reply and the kernel's idle status are in) through `trainyard server`'s proxy
at /notebooks/<owner>/<name>/ against the same Jupyter server directly, over
two WebSockets to the same kernel, alternated so the machine's noise falls
on both alike. Reports median and p99 of each and what the proxy adds
(target: <= 1 ms at the median).

    /usr/bin/python3 bench/notebook_proxy.py [--executions 200]
"""
import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import BIN, ROOT

sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from jupyter_kernel import Kernel, rest  # noqa: E402


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--executions", type=int, default=200)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ty-nb-bench-")
    os.chmod(tmp, 0o711)  # the jobs' user (root runs them as trainyard-jobs) reaches the workspace inside
    data = os.path.join(tmp, "data")
    log = open(os.path.join(tmp, "server.log"), "w+")
    server = subprocess.Popen([BIN, "--data-dir", data, "server", "--port", "0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = None
        for _ in range(300):
            log.seek(0)
            for line in log.read().splitlines():
                if "listening on " in line:
                    url = line.split("listening on ")[1].split()[0]
            if url:
                break
            time.sleep(0.1)
        spec = "apiVersion: trainyard.dev/v1\nkind: Notebook\nmetadata: {name: bench}\nspec: {resources: {cpu: 500m}, idleTimeout: 0}\n"
        req = urllib.request.Request(url + "/api/v1/notebooks", data=spec.encode(), method="POST", headers={"Content-Type": "application/yaml"})
        urllib.request.urlopen(req).read()
        proxied = url + "/notebooks/_/bench/"
        for _ in range(600):
            if rest(proxied, "api/status")[0] == 200:
                break
            time.sleep(0.1)
        else:
            sys.exit("the notebook did not start; see " + data + "/logs")
        # Directly: the port and token from the notebook's private directory (the server's, readable here as its user).
        state = os.path.join(data, "notebooks", "nb-bench")
        with open(os.path.join(state, "jupyter-token")) as f:
            token = f.read().strip()
        info = [json.load(open(os.path.join(state, "runtime", n))) for n in os.listdir(os.path.join(state, "runtime")) if n.startswith("nbserver-") and n.endswith(".json")]
        direct = f"http://127.0.0.1:{info[0]['port']}/notebooks/_/bench/"
        direct_headers = {"Authorization": "token " + token}
        st, k = rest(proxied, "api/kernels", "POST", {"name": "python3"})
        assert st == 201, k

        async def run():
            via = await Kernel.connect(proxied, k["id"], {"Origin": url})
            raw = await Kernel.connect(direct, k["id"], direct_headers)
            for kern in (via, raw):  # warm-up
                for _ in range(10):
                    await kern.execute("1+1")
            times = {"direct": [], "proxy": []}
            for i in range(args.executions):
                for name, kern in (("direct", raw), ("proxy", via)) if i % 2 == 0 else (("proxy", via), ("direct", raw)):
                    t0 = time.perf_counter()
                    status, out = await kern.execute("1+1")
                    times[name].append(time.perf_counter() - t0)
                    assert status == "ok" and out == "2", (status, out)
            via.close()
            raw.close()
            return times

        times = asyncio.run(run())
        d, p = times["direct"], times["proxy"]
        print(f"kernel round trips (execute 1+1), {args.executions} each, alternated:")
        print(f"  direct to Jupyter : median {statistics.median(d) * 1e3:.2f} ms, p99 {p99(d) * 1e3:.2f} ms")
        print(f"  through the proxy : median {statistics.median(p) * 1e3:.2f} ms, p99 {p99(p) * 1e3:.2f} ms")
        added = (statistics.median(p) - statistics.median(d)) * 1e3
        print(f"  added by the proxy: {added:+.3f} ms at the median (target <= 1 ms), {(p99(p) - p99(d)) * 1e3:+.3f} ms at p99; "
              f"ratio proxy/direct {statistics.median(p) / statistics.median(d):.3f}")
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["pkill", "-f", f"__supervise {data}"], check=False)
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if data in open(f"/proc/{pid}/cmdline").read():
                        os.kill(int(pid), 9)
                except OSError:
                    pass


if __name__ == "__main__":
    main()
