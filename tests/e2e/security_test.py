"""Security and robustness of `trainyard server` and `trainyard serve` (issue #10), driven over
real sockets as an attacker on this machine would. Each check failed against the servers before
its fix (cpp-httplib's thread per connection, no Origin/Host/Content-Type checks, shapes trusted
before allocation, a bucket loop that never ended...)."""
import http.client
import json
import os
import pwd
import signal
import subprocess
import time
import unittest
import urllib.parse

from hostile import peak_rss_mb, slow_clients
from common import BIN, E2E, RUN_AS_SELF, job_yaml, start_listening


def call(url, method, path, body=None, headers=None, timeout=10):
    """One request with exactly the headers given (Host, Origin, Content-Type...);
    returns (status, headers, parsed JSON or text)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    data = body if isinstance(body, (bytes, type(None))) else (body if isinstance(body, str) else json.dumps(body)).encode()
    conn.request(method, path, body=data, headers=headers or {})
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed


class ServerSecurity(E2E):
    def start(self, *args):
        proc, url = start_listening(self, [BIN, "--data-dir", self.data, "server", "--port", "0", *RUN_AS_SELF, *args],
                                    os.path.join(self.dir, f"server-{time.monotonic_ns()}.log"))
        return proc, url

    def tokens(self):
        path = self.write("tokens.yaml", """\
            tokens:
              - {token: alice-token-123, user: alice}
              - {token: admin-token-89, user: ops, admin: true}
            """)
        os.chmod(path, 0o600)
        return path

    def test_a_cross_origin_page_cannot_start_a_job(self):
        _, url = self.start("--allowed-origins", "https://dash.example.org")
        port = urllib.parse.urlparse(url).port
        marker = os.path.join(self.dir, "ran")
        spec = job_yaml("driveby", f"touch {marker}")
        # What a web page can send without a preflight: text/plain, with its Origin.
        st, _, body = call(url, "POST", "/api/v1/jobs", spec, {"Origin": "https://evil.example", "Content-Type": "text/plain"})
        self.assertEqual((st, body["error"]["code"]), (403, "ForbiddenOrigin"))
        st, _, body = call(url, "POST", "/api/v1/jobs", spec, {"Content-Type": "text/plain"})
        self.assertEqual((st, body["error"]["code"]), (415, "UnsupportedMediaType"))
        st, _, body = call(url, "POST", "/api/v1/jobs", spec, {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 415)
        # DNS rebinding: evil.example resolving to 127.0.0.1 still names itself in Host.
        st, _, body = call(url, "POST", "/api/v1/jobs", spec, {"Host": f"evil.example:{port}", "Content-Type": "application/yaml"})
        self.assertEqual((st, body["error"]["code"]), (403, "ForbiddenHost"))
        st, _, _ = call(url, "GET", "/api/v1/jobs", None, {"Host": f"evil.example:{port}"})
        self.assertEqual(st, 403)
        st, _, _ = call(url, "POST", "/api/v1/jobs", spec, {"Origin": f"http://127.0.0.1.evil.example:{port}", "Content-Type": "application/yaml"})
        self.assertEqual(st, 403)
        st, _, _ = call(url, "POST", "/api/v1/jobs", spec, {"Origin": "null", "Content-Type": "application/yaml"})
        self.assertEqual(st, 403)
        st, _, page = call(url, "GET", "/api/v1/jobs")
        self.assertEqual(page["total"], 0)
        self.assertFalse(os.path.exists(marker))
        # The server's own origin and a listed one may.
        st, _, _ = call(url, "POST", "/api/v1/jobs", spec, {"Origin": f"http://127.0.0.1:{port}", "Content-Type": "application/yaml"})
        self.assertEqual(st, 201)
        st, _, _ = call(url, "POST", "/api/v1/jobs", job_yaml("listed", "true"),
                        {"Origin": "https://dash.example.org", "Content-Type": "application/yaml"})
        self.assertEqual(st, 201)
        self.wait_until("the allowed job to run", lambda: os.path.exists(marker))

    def test_cookie_writes_need_this_servers_origin(self):
        _, url = self.start("--auth", self.tokens())
        port = urllib.parse.urlparse(url).port
        st, _, _ = call(url, "POST", "/api/v1/jobs", job_yaml("mine", "exec sleep 600"),
                        {"Authorization": "bearer alice-token-123", "Content-Type": "application/yaml"})  # scheme in lower case
        self.assertEqual(st, 201)
        cookie = {"Cookie": "trainyard_token=alice-token-123"}
        self.assertEqual(call(url, "GET", "/api/v1/jobs/mine", None, cookie)[0], 200)
        st, _, body = call(url, "POST", "/api/v1/jobs/mine/cancel", None, cookie)
        self.assertEqual((st, body["error"]["code"]), (403, "ForbiddenOrigin"))
        st, _, _ = call(url, "POST", "/api/v1/jobs/mine/cancel", None, {**cookie, "Origin": "http://localhost:1"})
        self.assertEqual(st, 403)
        st, _, _ = call(url, "POST", "/api/v1/jobs/mine/cancel", None, {**cookie, "Origin": f"http://127.0.0.1:{port}"})
        self.assertEqual(st, 202)
        # Ended before the server stops (its replicas would outlive it, by design).
        self.wait_until("the cancel", lambda: call(url, "GET", "/api/v1/jobs/mine", None, cookie)[2]["phase"] == "Failed")

    def test_wrong_tokens_are_throttled(self):
        _, url = self.start("--auth", self.tokens())
        codes = [call(url, "GET", "/api/v1/jobs", None, {"Authorization": f"Bearer guess-{i:08d}"})[0] for i in range(12)]
        self.assertEqual(codes[:10], [401] * 10)
        self.assertEqual(codes[10:], [429, 429])
        # Guessing through the sign-in form is throttled the same way.
        st, _, _ = call(url, "POST", "/login", "token=alice-token-123", {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 429)

    def test_error_shapes_limits_and_headers(self):
        _, url = self.start()
        # Every error has the JSON shape, also a body-less POST.
        st, _, body = call(url, "POST", "/api/v1/jobs/nope/cancel")
        self.assertEqual((st, body["error"]["code"]), (404, "NotFound"))
        st, _, body = call(url, "GET", "/api/v1/jobs?offset=99999999999999999999")
        self.assertEqual((st, body["error"]["field"]), (400, "offset"))
        self.assertEqual(call(url, "POST", "/api/v1/jobs", job_yaml("logger", "echo hi"), {"Content-Type": "application/yaml"})[0], 201)
        st, _, body = call(url, "GET", "/api/v1/jobs/logger/logs?offset=18446744073709551616")
        self.assertEqual((st, body["error"]["field"]), (400, "offset"))
        # Security headers on the dashboard and the API.
        for path in ("/", "/api/v1/jobs"):
            _, headers, _ = call(url, "GET", path)
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            self.assertEqual(headers["x-frame-options"], "DENY")
            self.assertIn("frame-ancestors 'none'", headers["content-security-policy"])
        # Specs: over 1 MiB refused with the limit named, raw or in JSON; 49 MB before it is read.
        big = job_yaml("big", "true") + "# " + "x" * (1 << 20) + "\n"
        st, _, body = call(url, "POST", "/api/v1/jobs", big, {"Content-Type": "application/yaml"})
        self.assertEqual(st, 413)
        self.assertIn("1048576", body["error"]["message"])
        st, _, body = call(url, "POST", "/api/v1/jobs", json.dumps({"yaml": big}), {"Content-Type": "application/json"})
        self.assertEqual(st, 413)
        st, _, body = call(url, "POST", "/api/v1/jobs", b"#" * (49 << 20), {"Content-Type": "application/yaml"}, timeout=60)
        self.assertEqual(st, 413)
        self.assertIn("limit", body["error"]["message"])
        # Duplicate keys, several documents, bytes that are not UTF-8: refused with the place.
        dup = "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: dup}\nspec:\n  command: [a]\n  command: [b]\n"
        st, _, body = call(url, "POST", "/api/v1/jobs", dup, {"Content-Type": "application/yaml"})
        self.assertEqual((st, body["error"]["line"], body["error"]["field"]), (400, 6, "spec.command"))
        self.assertIn("line 5", body["error"]["message"])
        st, _, body = call(url, "POST", "/api/v1/jobs", job_yaml("one", "true") + "---\n" + job_yaml("two", "true"),
                           {"Content-Type": "application/yaml"})
        self.assertEqual(st, 400)
        self.assertEqual(body["error"]["line"], 8)
        self.assertIn("more than one YAML document", body["error"]["message"])
        st, _, body = call(url, "POST", "/api/v1/jobs", job_yaml("bad-utf8", "echo X").encode().replace(b"X", b"\xff"),
                           {"Content-Type": "application/yaml"})
        self.assertEqual(st, 400)
        self.assertIn("UTF-8", body["error"]["message"])
        self.assertEqual(call(url, "GET", "/api/v1/jobs")[2]["total"], 1)  # only `logger` was stored

    def test_huge_step_series(self):
        _, url = self.start()
        ctype = {"Content-Type": "application/json"}
        self.assertEqual(call(url, "POST", "/api/v1/jobs", job_yaml("steps", "exec sleep 600"), {"Content-Type": "application/yaml"})[0], 201)
        self.wait_until("the job to run", lambda: call(url, "GET", "/api/v1/jobs/steps")[2]["phase"] == "Running")
        for step in (-10**15, 10**15, 2**64 - 1, -2**63):
            st, _, body = call(url, "POST", "/api/v1/jobs/steps/metrics", {"points": [{"name": "x", "value": 1, "step": step}]}, ctype)
            self.assertEqual((st, body["error"]["field"]), (400, "points[0].step"), step)
        st, _, _ = call(url, "POST", "/api/v1/jobs/steps/metrics",
                        {"points": [{"name": "x", "value": v, "step": s} for v, s in ((1, -10**12), (2, 0), (3, 10**12))]}, ctype)
        self.assertEqual(st, 200)
        # The widest range there can be answers (the old loop spun for hours here).
        st, _, view = call(url, "GET", "/api/v1/jobs/steps/metrics/x?maxPoints=10", timeout=10)
        self.assertEqual(st, 200)
        self.assertEqual(view["totalPoints"], 3)
        st, _, view = call(url, "GET", "/api/v1/jobs/steps/metrics/x?maxPoints=2&from=-1000000000000&to=1000000000000", timeout=10)
        self.assertEqual(st, 200)
        self.assertLessEqual(len(view["step"]), 3)
        call(url, "POST", "/api/v1/jobs/steps/cancel", None, {"Content-Type": "application/json"})
        self.wait_until("the cancel", lambda: call(url, "GET", "/api/v1/jobs/steps")[2]["phase"] == "Failed")

    def test_1000_slow_connections_do_not_stall_others(self):
        _, url = self.start()
        socks = slow_clients(url, 1000)
        try:
            st, _, body = call(url, "GET", "/healthz", timeout=5)
            self.assertEqual((st, body), (200, "ok\n"))
            self.assertEqual(call(url, "GET", "/api/v1/jobs", timeout=5)[0], 200)
        finally:
            for s in socks:
                s.close()

    def test_implicit_metric_steps_continue_after_kill_9(self):
        proc, url = self.start()
        gate = os.path.join(self.dir, "gate")
        # 20 lines, then (after the server was killed and restarted) 20 more; no step key.
        script = (f"i=0; while [ $i -lt 20 ]; do echo loss=$i; i=$((i+1)); done; "
                  f"while [ ! -e {gate} ]; do sleep 0.05; done; "
                  f"while [ $i -lt 40 ]; do echo loss=$i; i=$((i+1)); done")
        self.assertEqual(call(url, "POST", "/api/v1/jobs", job_yaml("counter", script), {"Content-Type": "application/yaml"})[0], 201)
        series = lambda u: call(u, "GET", "/api/v1/jobs/counter/metrics/loss?maxPoints=1000")
        self.wait_until("20 points", lambda: series(url)[0] == 200 and series(url)[2]["totalPoints"] == 20)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _, url = self.start()
        with open(gate, "w"):
            pass
        self.wait_until("the job to end", lambda: call(url, "GET", "/api/v1/jobs/counter")[2]["phase"] == "Succeeded")
        view = series(url)[2]
        self.assertEqual(view["step"], list(range(40)))  # no step repeated after the takeover
        self.assertEqual(view["last"], [float(i) for i in range(40)])


class ServingSecurity(E2E):
    def setUp(self):
        super().setUp()
        import torch

        class Linear(torch.nn.Module):
            def forward(self, x: torch.Tensor):
                return x.sum(1, keepdim=True)

        self.models = os.path.join(self.dir, "models")
        os.makedirs(os.path.join(self.models, "m", "1"))
        torch.jit.script(Linear()).save(os.path.join(self.models, "m", "1", "model.pt"))
        with open(os.path.join(self.models, "m", "config.yaml"), "w") as f:
            f.write("max_batch_size: 8\ninputs: [{name: x, datatype: FP32, shape: [-1, 4]}]\n")
        self.tokens = self.write("tokens.yaml", "tokens:\n  - {token: serve-token-1, user: alice}\n")
        os.chmod(self.tokens, 0o600)

    def infer(self, url, shape, data, token=None):
        body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP32", "data": data}]}
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        return call(url, "POST", "/v2/models/m/infer", body, headers)

    def test_declared_shapes_are_checked_before_memory_is_taken(self):
        proc, url = start_listening(self, [BIN, "serve", "--models", self.models, "--port", "0"], os.path.join(self.dir, "serve.log"))
        st, _, body = self.infer(url, [1, 4], [1, 2, 3, 4])
        self.assertEqual((st, body["outputs"][0]["data"]), (200, [10.0]))
        for shape in ([1000000000, 4], [2**63 - 1, 4], [2, 2**62]):
            st, _, body = self.infer(url, shape, [1, 2, 3, 4])
            self.assertEqual(st, 400, (shape, body))
        st, _, body = self.infer(url, [1, 4], [1, 2, 3, 3.5e38])
        self.assertEqual(st, 400)
        self.assertIn("out of range for FP32", body["error"])
        # TF-Serving's columnar form carries its shape in the data itself.
        st, _, _ = call(url, "POST", "/v1/models/m:predict", {"inputs": [[1, 2, 3, 4]]}, {"Content-Type": "application/json"})
        self.assertEqual(st, 200)
        self.assertLess(peak_rss_mb(proc.pid), 300)

    def test_auth_covers_the_inference_api(self):
        for cmd in ([BIN, "serve", "--models", self.models, "--port", "0", "--auth", self.tokens],
                    [BIN, "--data-dir", self.data, "server", "--port", "0", *RUN_AS_SELF, "--models", self.models, "--auth", self.tokens]):
            _, url = start_listening(self, cmd, os.path.join(self.dir, f"{cmd[1]}-{time.monotonic_ns()}.log"))
            self.assertEqual(self.infer(url, [1, 4], [1, 2, 3, 4])[0], 401)
            self.assertEqual(self.infer(url, [1, 4], [1, 2, 3, 4], token="wrong-token-1")[0], 401)
            self.assertEqual(self.infer(url, [1, 4], [1, 2, 3, 4], token="serve-token-1")[0], 200)
            for path in ("/v1/models/m", "/v1/models/m/metadata", "/v2/models/m", "/v2/models/m/ready", "/v2", "/metrics"):
                self.assertEqual(call(url, "GET", path)[0], 401, path)
            for path in ("/healthz", "/v2/health/live", "/v2/health/ready"):  # probes: documented as open
                self.assertEqual(call(url, "GET", path)[0], 200, path)
        p = subprocess.run([BIN, "serve", "--models", self.models, "--address", "0.0.0.0", "--port", "0"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("without authentication", p.stderr)

    def test_1000_slow_connections_do_not_stall_inference(self):
        _, url = start_listening(self, [BIN, "serve", "--models", self.models, "--port", "0"], os.path.join(self.dir, "serve.log"))
        socks = slow_clients(url, 1000)
        try:
            self.assertEqual(call(url, "GET", "/healthz", timeout=5)[0], 200)
            self.assertEqual(self.infer(url, [1, 4], [1, 2, 3, 4])[0], 200)
        finally:
            for s in socks:
                s.close()


@unittest.skipUnless(os.geteuid() == 0, "LOUD SKIP: job isolation needs root (the server switches jobs to trainyard-jobs)")
class JobIsolation(E2E):
    def test_jobs_cannot_read_the_servers_secrets_or_leave_their_workspace(self):
        try:
            pwd.getpwnam("trainyard-jobs")
        except KeyError:
            self.fail("the trainyard-jobs user is missing: scripts/install-deps.sh creates it")
        os.chmod(self.dir, 0o711)  # the job user reaches its workspace under the data dir
        tokens = self.write("tokens.yaml", "tokens:\n  - {token: alice-token-123, user: alice}\n  - {token: admin-token-89, user: ops, admin: true}\n")
        os.chmod(tokens, 0o644)
        p = self.ty("server", "--auth", tokens, "--port", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("chmod 600", p.stderr)
        os.chmod(tokens, 0o600)
        _, url = start_listening(self, [BIN, "--data-dir", self.data, "server", "--port", "0", "--auth", tokens],
                                 os.path.join(self.dir, "server.log"))
        self.assertEqual(os.stat(self.data).st_mode & 0o777, 0o711)
        alice = {"Authorization": "Bearer alice-token-123", "Content-Type": "application/yaml"}
        db = os.path.join(self.data, "trainyard.db")
        script = (f"id -un; pwd; cat {tokens} && echo READ-TOKENS; cat {db} >/dev/null && echo READ-STORE; "
                  f"ls {self.data} && echo LISTED; echo done > $TRAINYARD_OUTPUT_DIR/out.txt && echo WROTE-OUTPUT")
        self.assertEqual(call(url, "POST", "/api/v1/jobs", job_yaml("peek", script), alice)[0], 201)
        self.wait_until("the job to end", lambda: call(url, "GET", "/api/v1/jobs/peek", None, alice)[2]["phase"] in ("Succeeded", "Failed"))
        _, _, log = call(url, "GET", "/api/v1/jobs/peek/logs", None, alice)
        lines = log.splitlines()
        self.assertEqual(lines[0], "trainyard-jobs")
        self.assertEqual(lines[1], os.path.join(self.data, "workspaces", "alice"))
        for leak in ("READ-TOKENS", "READ-STORE", "LISTED"):
            self.assertNotIn(leak, log)
        self.assertIn("WROTE-OUTPUT", log)
        # Paths outside the workspace: refused for a user, allowed for an admin.
        for name, extra in (("wd", "workingDir: ../../../etc"), ("abs", "workingDir: /etc"), ("out", "outputs: {dir: /tmp/elsewhere}")):
            st, _, body = call(url, "POST", "/api/v1/jobs", job_yaml(f"escape-{name}", "true", extra), alice)
            self.assertEqual((st, body["error"]["code"]), (403, "OutsideWorkspace"), body)
        exp = ("apiVersion: trainyard.dev/v1\nkind: Experiment\nmetadata: {name: sweep}\nspec:\n"
               "  objective: {metric: loss, goal: minimize}\n  algorithm: {name: random}\n  maxTrials: 1\n"
               "  parameters: [{name: lr, type: double, min: 0.1, max: 1}]\n"
               "  trialTemplate:\n    spec:\n      workingDir: /etc\n      command: [sh, -c, 'echo loss=${trialParameters.lr}']\n")
        st, _, body = call(url, "POST", "/api/v1/experiments", exp, alice)
        self.assertEqual((st, body["error"]["code"]), (403, "OutsideWorkspace"), body)
        admin = {**alice, "Authorization": "Bearer admin-token-89"}
        self.assertEqual(call(url, "POST", "/api/v1/jobs", job_yaml("admin-etc", "true", "workingDir: /etc"), admin)[0], 201)


if __name__ == "__main__":
    unittest.main()
