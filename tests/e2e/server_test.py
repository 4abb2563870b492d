"""End-to-end: `trainyard server` and the client verbs, over real HTTP on loopback."""
import json
import os
import signal
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from common import BIN, E2E, job_yaml, pid_alive, start_listening, RUN_AS_SELF


class Server:
    """A `trainyard server` on a free port, its output in a file."""

    def __init__(self, test, *args, data=None):
        self.proc, self.url = start_listening(test, [BIN, "--data-dir", data or test.data, "server", "--port", "0", *RUN_AS_SELF, *args],
                                              os.path.join(test.dir, f"server-{time.monotonic_ns()}.log"))


class ServerE2E(E2E):
    token = None

    def kill_replicas(self):
        """Replicas outlive their server by design; a test's must not outlive the test."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
                if "__supervise" in cmd and self.dir in cmd:
                    os.killpg(int(pid), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass

    def start(self, *args, **kw):
        self.addCleanup(self.kill_replicas)  # runs after the server's stop (cleanups run last-in first-out)
        s = Server(self, *args, **kw)
        self.server = s
        self.env["TRAINYARD_SERVER"] = s.url
        return s

    def start_as_alice_with_bob(self, *args, alice_admin=False, carol_admin=False):
        """A server with --auth and two users, alice (the CLI's user here) and bob; their tokens.
        With carol_admin, a third user carol is an administrator (token carol-token-890)."""
        tokens = self.write("tokens.yaml", f"""\
            tokens:
              - {{token: alice-token-123, user: alice{", admin: true" if alice_admin else ""}}}
              - {{token: bob-token-4567, user: bob}}
            """.rstrip(" ") + ("              - {token: carol-token-890, user: carol, admin: true}\n" if carol_admin else ""))
        os.chmod(tokens, 0o600)
        self.start("--auth", tokens, *args)
        self.env["TRAINYARD_TOKEN"] = self.token = "alice-token-123"
        return "alice-token-123", "bob-token-4567"

    def call(self, method, path, body=None, token=None, headers=None, raw=False):
        """(status, parsed JSON or text) of one HTTP request."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        req = urllib.request.Request(self.server.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type", "")
        if raw or "json" not in ctype:
            return status, text
        return status, json.loads(text)

    def pg_database(self):
        """The URL of a new database on the test's PostgreSQL (the ctest fixture pg)."""
        where = os.environ.get("TRAINYARD_TEST_PG", "")
        if ":" not in where:
            self.fail("TRAINYARD_TEST_PG (socket dir:port) not set: run through ctest (fixture pg)")
        host, port = where.rsplit(":", 1)
        db = f"e2e_{os.getpid()}_{time.monotonic_ns() % 100000}"
        subprocess.run(["psql", f"postgresql://postgres@/postgres?host={host}&port={port}", "-qc", f"CREATE DATABASE {db}"],
                       check=True, capture_output=True)
        return f"postgresql://postgres@/{db}?host={host}&port={port}"

    def api_phase(self, name):
        st, j = self.call("GET", f"/api/v1/jobs/{name}")
        return j.get("phase") if st == 200 else None

    def wait_phase(self, name, phases, timeout=120):
        self.wait_until(f"job {name} in {phases}", lambda: self.api_phase(name) in phases, timeout=timeout)

    def assertError(self, result, status, code, field=None):
        st, body = result
        self.assertEqual(st, status, body)
        self.assertIn("error", body, body)
        self.assertEqual(body["error"]["code"], code, body)
        self.assertTrue(body["error"]["message"], body)
        if field:
            self.assertEqual(body["error"].get("field"), field, body)


class RestApi(ServerE2E):
    def test_jobs_through_cli_and_rest(self):
        self.start()
        for i in range(3):
            self.write(f"j{i}.yaml", job_yaml(f"hello-{i}", f"for s in 1 2 3; do echo step=$s loss=0.{i}$s; done",
                                              labels={"team": "vision" if i < 2 else "nlp"}))
            self.ty("submit", os.path.join(self.dir, f"j{i}.yaml"), check=0)
        for i in range(3):
            self.wait_phase(f"hello-{i}", ["Succeeded"])
        # Pagination, filters.
        st, page = self.call("GET", "/api/v1/jobs?limit=2")
        self.assertEqual((st, page["total"], len(page["items"]), page["nextOffset"]), (200, 3, 2, 2))
        st, page = self.call("GET", "/api/v1/jobs?limit=2&offset=2")
        self.assertEqual([j["name"] for j in page["items"]], ["hello-2"])
        self.assertIsNone(page["nextOffset"])
        self.assertEqual(self.call("GET", "/api/v1/jobs?label=team%3Dvision")[1]["total"], 2)
        self.assertEqual(self.call("GET", "/api/v1/jobs?state=Failed")[1]["total"], 0)
        self.assertEqual(self.call("GET", "/api/v1/jobs?state=Succeeded")[1]["total"], 3)
        # A job, its events, metrics and logs.
        st, j = self.call("GET", "/api/v1/jobs/hello-1")
        self.assertEqual([c["type"] for c in j["conditions"]], ["Created", "Running", "Succeeded"])
        self.assertEqual(j["labels"], {"team": "vision"})
        self.assertEqual({s["name"]: s["points"] for s in j["series"]}, {"loss": 3, "step": 3})
        st, all_ev = self.call("GET", "/api/v1/jobs/hello-1/events")
        st, ev = self.call("GET", "/api/v1/jobs/hello-1/events?limit=1&offset=1")
        self.assertEqual((ev["total"], ev["items"]), (len(all_ev["items"]), all_ev["items"][1:2]))
        self.assertEqual(ev["nextOffset"], 2 if len(all_ev["items"]) > 2 else None)
        st, s = self.call("GET", "/api/v1/jobs/hello-1/metrics/loss")
        self.assertEqual((s["step"], s["last"], s["downsampled"]), ([1, 2, 3], [0.11, 0.12, 0.13], False))
        st, text = self.call("GET", "/api/v1/jobs/hello-1/logs?offset=17")
        self.assertEqual(text, "step=2 loss=0.12\nstep=3 loss=0.13\n")
        self.assertEqual(self.call("GET", "/api/v1/jobs/hello-1/logs?tail=17")[1], "step=3 loss=0.13\n")
        # The CLI against the server.
        out = self.ty("get", "jobs", check=0).stdout
        self.assertIn("hello-2", out)
        row = [l for l in out.splitlines() if l.startswith("hello-1 ")][0]
        self.assertIn("loss=0.13", row)  # its results, from the list's results=true
        st, plain = self.call("GET", "/api/v1/jobs?limit=1")
        self.assertNotIn("results", plain["items"][0])  # only when asked: a query per job
        self.assertEqual(self.ty("logs", "hello-0", check=0).stdout, "step=1 loss=0.01\nstep=2 loss=0.02\nstep=3 loss=0.03\n")
        self.assertEqual(self.tyjson("get", "job", "hello-0")["phase"], "Succeeded")
        self.assertIn("JobSucceeded", self.ty("describe", "job", "hello-0", check=0).stdout)
        self.assertIn("loss", self.ty("get", "metrics", "hello-0", check=0).stdout)
        # Errors: one shape, with the field at fault.
        self.assertError(self.call("GET", "/api/v1/jobs/nope"), 404, "NotFound")
        self.assertError(self.call("GET", "/api/v1/jobs?limit=0"), 400, "InvalidParameter", "limit")
        self.assertError(self.call("GET", "/api/v1/jobs?limit=abc"), 400, "InvalidParameter", "limit")
        self.assertError(self.call("GET", "/api/v1/experiments/x/trials"), 404, "NotFound")
        self.assertError(self.call("GET", "/api/v1/nothing"), 404, "NotFound")
        bad = "apiVersion: trainyard.dev/v1\nkind: TrainJob\nmetadata: {name: bad}\nspec:\n  command: [x]\n  resources: {memory: lots}\n"
        st, body = self.call("POST", "/api/v1/jobs", bad, headers={"Content-Type": "application/yaml"})
        self.assertEqual((st, body["error"]["code"], body["error"]["line"]), (400, "InvalidSpec", 6), body)
        self.assertIn("spec.resources.memory", body["error"]["field"])
        self.assertError(self.call("POST", "/api/v1/jobs", {"yaml": job_yaml("hello-0", "true")}), 409, "AlreadyExists")
        # A job no node can ever hold is refused at submit with the numbers, and nothing is stored.
        huge = job_yaml("huge", "true", "resources: {cpu: 4096}")
        st, body = self.call("POST", "/api/v1/jobs", huge, headers={"Content-Type": "application/yaml"})
        self.assertEqual((st, body["error"]["code"], body["error"]["field"]), (400, "Unschedulable", "spec.resources"), body)
        self.assertIn("no node can ever hold this job", body["error"]["message"])
        self.assertEqual(self.call("GET", "/api/v1/jobs/huge")[0], 404)
        self.assertError(self.call("POST", "/api/v1/jobs", "{not json"), 400, "InvalidJson")
        p = self.ty("submit", self.write("bad.yaml", bad))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("bad.yaml:6", p.stderr)
        self.assertEqual(self.ty("logs", "nope").returncode, 2)

    def test_cancel_delete_and_follow(self):
        self.start()
        self.write("slow.yaml", job_yaml("slow", "echo started; echo epoch=1 epochs=4; exec sleep 600"))
        self.ty("submit", os.path.join(self.dir, "slow.yaml"), check=0)
        self.wait_phase("slow", ["Running"])
        # Progress and ETA from what it reports (a quarter done).
        self.wait_until("progress", lambda: "progress" in self.call("GET", "/api/v1/jobs/slow")[1])
        st, j = self.call("GET", "/api/v1/jobs/slow")
        self.assertEqual(j["progress"], 0.25)
        # ETA = elapsed x (1 - 0.25) / 0.25: three times the time since start, which
        # (measured here, after the server computed it) can only be larger.
        self.assertGreater(j["etaSeconds"], 0)
        self.assertLessEqual(j["etaSeconds"], 3 * (time.time() - j["startedAt"]))
        self.assertEqual(self.call("GET", "/api/v1/jobs?state=Running")[1]["items"][0]["progress"], 0.25)
        follower = self.popen("logs", "slow", "-f")
        self.assertError(self.call("DELETE", "/api/v1/jobs/slow"), 409, "JobActive")
        st, body = self.call("POST", "/api/v1/jobs/slow/cancel")
        self.assertEqual((st, body["cancelRequested"]), (202, True))
        self.wait_phase("slow", ["Failed"])
        out, err = follower.communicate(timeout=60)
        self.assertEqual(out, "started\nepoch=1 epochs=4\n", err)
        self.assertEqual(follower.returncode, 1)  # the job did not succeed
        self.assertEqual(self.call("GET", "/api/v1/jobs/slow")[1]["reason"], "Cancelled")
        self.ty("delete", "job", "slow", check=0)
        self.assertEqual(self.call("GET", "/api/v1/jobs/slow")[0], 404)
        # submit -f follows the log and returns the job's outcome.
        p = self.ty("submit", self.write("f.yaml", job_yaml("fails", "echo bye; exit 3")), "-f")
        self.assertEqual((p.returncode, p.stdout), (1, "bye\n"), p.stderr)

    def test_state_changes_stream(self):
        self.start()
        events = []
        done = threading.Event()

        def listen():
            req = urllib.request.Request(self.server.url + "/api/v1/stream")
            with urllib.request.urlopen(req, timeout=60) as r:
                kind = None
                for raw in r:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        ev = json.loads(line[6:])
                        events.append((kind, ev))
                        if kind == "job" and ev["name"] == "streamed" and ev["phase"] == "Succeeded":
                            done.set()
                            return

        t = threading.Thread(target=listen, daemon=True)
        t.start()
        self.wait_until("the stream to be connected", lambda: "/api/v1/stream" in self.call("GET", "/metrics", raw=True)[1])
        self.write("s.yaml", job_yaml("streamed", "echo hi"))
        self.ty("submit", os.path.join(self.dir, "s.yaml"), check=0)
        self.assertTrue(done.wait(60), events)
        mine = [e for k, e in events if k == "job" and e["name"] == "streamed"]
        phases = [e["phase"] for e in mine]
        # Each change once, in lifecycle order (a watcher that re-published or
        # reordered would fail here), with increasing sequence numbers.
        self.assertEqual(phases, [p for p in ("Queued", "Running", "Succeeded") if p in phases], events)
        self.assertEqual([e["seq"] for e in mine], sorted({e["seq"] for e in mine}))
        self.assertEqual(mine[-1]["user"], "")

    def test_push_metrics(self):
        self.start()
        self.write("p.yaml", job_yaml("pusher", "exec sleep 600"))
        self.ty("submit", os.path.join(self.dir, "p.yaml"), check=0)
        self.wait_phase("pusher", ["Running"])
        for b in range(5):
            pts = [{"name": "reward", "value": float(b * 1000 + i), "step": b * 1000 + i} for i in range(1000)]
            st, body = self.call("POST", "/api/v1/jobs/pusher/metrics", {"points": pts})
            self.assertEqual((st, body["accepted"]), (200, 1000), body)
        st, s = self.call("GET", "/api/v1/jobs/pusher/metrics/reward?maxPoints=100")
        self.assertEqual((s["totalPoints"], s["downsampled"]), (5000, True))
        self.assertLessEqual(len(s["step"]), 100)
        self.assertEqual((s["last"][-1], max(s["max"]), min(s["min"])), (4999.0, 4999.0, 0.0))
        self.assertError(self.call("POST", "/api/v1/jobs/pusher/metrics", {"points": [{"name": "x"}]}), 400,
                         "InvalidRequest", "points[0].value")
        self.assertError(self.call("POST", "/api/v1/jobs/pusher/metrics", {"points": [{"name": "x", "value": 1, "step": 1.5}]}),
                         400, "InvalidRequest", "points[0].step")
        self.assertError(self.call("POST", "/api/v1/jobs/ghost/metrics", {"points": []}), 404, "NotFound")
        self.call("POST", "/api/v1/jobs/pusher/cancel")
        self.wait_phase("pusher", ["Failed"])
        self.assertError(self.call("POST", "/api/v1/jobs/pusher/metrics", {"points": []}), 409, "JobFinished")

    def test_prometheus_metrics(self):
        self.start()
        self.write("m.yaml", job_yaml("counted", "echo ok"))
        self.ty("submit", os.path.join(self.dir, "m.yaml"), check=0)
        self.wait_phase("counted", ["Succeeded"])
        st, text = self.call("GET", "/metrics", raw=True)
        self.assertEqual(st, 200)
        for needle in ['trainyard_jobs{phase="Succeeded"} 1', "trainyard_queue_length 0",
                       "trainyard_scheduling_latency_seconds_count 1", "trainyard_http_request_duration_seconds_bucket",
                       'trainyard_store_seconds_count{op="create_job"} 1', "trainyard_reconcile_pass_seconds_count",
                       "trainyard_node_cpu_allocatable_cores"]:
            self.assertIn(needle, text)
        self.assertIn("NODE", self.ty("top", "--once", check=0).stdout)


class Auth(ServerE2E):
    def test_tokens_users_and_sharing(self):
        tokens = self.write("tokens.yaml", """\
            tokens:
              - {token: alice-token-123, user: alice}
              - {token: bob-token-4567, user: bob}
              - {token: admin-token-89, user: ops, admin: true}
            """)
        os.chmod(tokens, 0o600)
        self.start("--auth", tokens)
        self.assertError(self.call("GET", "/api/v1/jobs"), 401, "Unauthorized")
        self.assertError(self.call("GET", "/api/v1/jobs", token="wrong-token"), 401, "Unauthorized")
        self.assertEqual(self.call("GET", "/metrics", raw=True)[0], 401)
        st, page = self.call("GET", "/", raw=True)
        self.assertEqual(st, 401)
        self.assertIn("Access token", page)
        self.assertEqual(self.call("GET", "/healthz", raw=True)[0], 200)

        self.env["TRAINYARD_TOKEN"] = "alice-token-123"
        self.write("a.yaml", job_yaml("alices", "exec sleep 600"))
        self.ty("submit", os.path.join(self.dir, "a.yaml"), check=0)
        self.write("s.yaml", job_yaml("shared-one", "echo shared", labels={"trainyard.dev/shared": "true"}))
        self.ty("submit", os.path.join(self.dir, "s.yaml"), check=0)
        self.wait_until("alice's job to run", lambda: self.call("GET", "/api/v1/jobs/alices", token="alice-token-123")[1].get("phase") == "Running")
        self.assertEqual(self.call("GET", "/api/v1/jobs/alices", token="alice-token-123")[1]["user"], "alice")

        bob = "bob-token-4567"
        self.assertError(self.call("GET", "/api/v1/jobs/alices", token=bob), 403, "Forbidden")
        self.assertError(self.call("GET", "/api/v1/jobs/alices/logs?follow=true", token=bob), 403, "Forbidden")
        self.assertError(self.call("POST", "/api/v1/jobs/alices/cancel", token=bob), 403, "Forbidden")
        self.assertError(self.call("POST", "/api/v1/jobs/alices/metrics", {"points": []}, token=bob), 403, "Forbidden")
        self.assertEqual(self.call("GET", "/api/v1/jobs/shared-one", token=bob)[0], 200)
        self.assertError(self.call("POST", "/api/v1/jobs/shared-one/cancel", token=bob), 403, "Forbidden")
        self.assertEqual([j["name"] for j in self.call("GET", "/api/v1/jobs", token=bob)[1]["items"]], ["shared-one"])
        self.env["TRAINYARD_TOKEN"] = bob
        p = self.ty("logs", "alices")
        self.assertEqual(p.returncode, 2)
        self.assertIn("is not yours and is not shared", p.stderr)
        self.assertEqual(p.stderr.strip(), "error: job \"alices\" is not yours and is not shared")  # no owner named
        self.assertEqual(len(self.call("GET", "/api/v1/jobs", token="admin-token-89")[1]["items"]), 2)
        self.assertEqual(self.call("POST", "/api/v1/jobs/alices/cancel", token="admin-token-89")[0], 202)
        # Ended before the server stops (its replicas would outlive it, by design).
        self.wait_until("the cancel", lambda: self.call("GET", "/api/v1/jobs/alices", token="admin-token-89")[1]["phase"] == "Failed")
        self.assertEqual(self.call("GET", "/metrics", token="admin-token-89", raw=True)[0], 200)
        # The dashboard: sign in, then a cookie carries the token.
        req = urllib.request.Request(self.server.url + "/login", data=b"token=alice-token-123", method="POST")
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
            self.assertIn("/assets/app.js", r.read().decode())

    def test_refuses_non_loopback_without_auth(self):
        p = self.ty("server", "--address", "0.0.0.0", "--port", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("without authentication", p.stderr)
        bad = self.write("bad-tokens.yaml", "tokens:\n  - token: x\n    user: a\n")
        os.chmod(bad, 0o600)
        p = self.ty("server", "--auth", bad, "--port", "0")
        self.assertEqual(p.returncode, 2)
        self.assertIn("tokens[0].token", p.stderr)


class Outputs(ServerE2E):
    def fetch(self, path, token):
        """(status, headers, body bytes) of a GET."""
        req = urllib.request.Request(self.server.url + path, headers={"Authorization": "Bearer " + token})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def test_outputs_are_listed_and_downloaded_by_whoever_may_see_the_job(self):
        alice, _ = self.start_as_alice_with_bob()
        script = ('cd "$TRAINYARD_OUTPUT_DIR" && printf "a,b\\n1,2\\n" > metrics.csv && mkdir -p sub && '
                  'head -c 600000 /dev/urandom > sub/model.bin && echo "<script>alert(1)</script>" > page.html && '
                  'ln -s /etc/passwd pw')
        self.ty("submit", self.write("o.yaml", job_yaml("outs", script)), check=0)
        self.wait_phase("outs", ("Succeeded",))
        st, listed = self.call("GET", "/api/v1/jobs/outs/outputs", token=alice)
        self.assertEqual(st, 200, listed)
        self.assertEqual([e["path"] for e in listed["items"]], ["metrics.csv", "page.html", "sub/model.bin"])  # no symlink
        self.assertEqual(listed["items"][2]["size"], 600000)
        outputs_dir = self.call("GET", "/api/v1/jobs/outs", token=alice)[1]["outputsDir"]
        with open(os.path.join(outputs_dir, "sub", "model.bin"), "rb") as f:
            model = f.read()
        st, headers, body = self.fetch("/api/v1/jobs/outs/outputs/sub/model.bin", alice)
        self.assertEqual((st, body), (200, model))
        self.assertIn("attachment", headers["Content-Disposition"])
        st, headers, body = self.fetch("/api/v1/jobs/outs/outputs/metrics.csv", alice)
        self.assertEqual(body, b"a,b\n1,2\n")
        self.assertTrue(headers["Content-Type"].startswith("text/plain"), headers["Content-Type"])
        self.assertIn("inline", headers["Content-Disposition"])
        # A page a job wrote is never a page on the dashboard's origin.
        st, headers, body = self.fetch("/api/v1/jobs/outs/outputs/page.html", alice)
        self.assertEqual(headers["Content-Type"], "application/octet-stream")
        self.assertIn("attachment", headers["Content-Disposition"])
        self.assertIn("sandbox", headers["Content-Security-Policy"])
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertError(self.call("GET", "/api/v1/jobs/outs/outputs/pw", token=alice), 404, "NotFound", "path")
        self.assertError(self.call("GET", "/api/v1/jobs/outs/outputs/%2e%2e/%2e%2e/tokens.yaml", token=alice), 400, "InvalidPath", "path")
        self.assertError(self.call("GET", "/api/v1/jobs/outs/outputs/nope.txt", token=alice), 404, "NotFound", "path")
        # Bob may not see alice's job, nor its outputs.
        self.assertError(self.call("GET", "/api/v1/jobs/outs/outputs", token="bob-token-4567"), 403, "Forbidden")
        self.assertEqual(self.fetch("/api/v1/jobs/outs/outputs/metrics.csv", "bob-token-4567")[0], 403)
        self.assertEqual(self.fetch("/api/v1/jobs/outs/outputs/metrics.csv", "")[0], 401)
        # The CLI from any shell, through the server.
        p = self.ty("outputs", "outs", check=0)
        self.assertIn("sub/model.bin", p.stdout)
        saved = os.path.join(self.dir, "model.copy")
        self.ty("outputs", "outs", "sub/model.bin", "--to", saved, check=0)
        with open(saved, "rb") as f:
            self.assertEqual(f.read(), model)
        p = self.ty("outputs", "outs", "pw")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("symlink", p.stderr)


class ModelPush(ServerE2E):
    def test_a_remote_user_pushes_a_jobs_model_into_the_servers_repository(self):
        models = os.path.join(self.dir, "models")
        os.makedirs(models)
        alice, _ = self.start_as_alice_with_bob("--models", models)
        self.ty("submit", self.write("m.yaml", job_yaml("trained", 'printf "weights" > "$TRAINYARD_OUTPUT_DIR/model.pt"')), check=0)
        self.ty("submit", self.write("n.yaml", job_yaml("no-model", "true")), check=0)
        self.wait_phase("trained", ("Succeeded",))
        self.wait_phase("no-model", ("Succeeded",))
        # From any shell, through the server: the next version of the model, twice.
        for version in (1, 2):
            p = self.ty("models", "push", "--from", "trained", "--name", "fmnist", "-o", "json", check=0)
            out = json.loads(p.stdout)
            self.assertEqual((out["model"], out["version"]), ("fmnist", version), out)
            with open(os.path.join(models, "fmnist", str(version), "model.pt")) as f:
                self.assertEqual(f.read(), "weights")
        self.assertError(self.call("POST", "/api/v1/models", {"from": "no-model", "name": "x"}, token=alice),
                         400, "InvalidRequest", "from")
        self.assertError(self.call("POST", "/api/v1/models", {"from": "trained", "name": "Bad_Name"}, token=alice),
                         400, "InvalidRequest", "name")
        self.assertError(self.call("POST", "/api/v1/models", {"from": "nope", "name": "x"}, token=alice),
                         409, "NothingToPush", "from")
        # Bob may not read alice's job, so he may not push it.
        self.assertError(self.call("POST", "/api/v1/models", {"from": "trained", "name": "fmnist"}, token="bob-token-4567"),
                         403, "Forbidden")
        self.assertEqual(sorted(os.listdir(os.path.join(models, "fmnist"))), ["1", "2"])
        # podman build would run as the server's own user: not for a non-admin on a shared server.
        built = self.write("built.yaml", job_yaml("built", "true", "build: {context: .}"))
        p = self.ty("submit", built)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("spec.build", p.stderr)
        self.assertIn("only an administrator may build", p.stderr)


class Rerun(ServerE2E):
    def test_a_job_runs_again_from_its_record_through_the_server(self):
        self.start_as_alice_with_bob(alice_admin=True)
        script = 'awk -v s="$SEED" \'BEGIN { srand(s); for (i = 1; i <= 3; i++) printf "step=%d loss=%.6f\\n", i, rand() }\''
        self.ty("submit", self.write("det.yaml", job_yaml("det", script, 'env: [{name: SEED, value: "11"}]')), check=0)
        self.wait_phase("det", ("Succeeded",))
        p = self.ty("rerun", "det", check=0)
        self.assertIn("job det-rerun submitted (a rerun of det)", p.stdout)
        self.wait_phase("det-rerun", ("Succeeded",))

        def losses(name):
            got = self.tyjson("get", "metrics", name, "--all")["metrics"]
            return [(m["step"], m["value"]) for m in got if m["name"] == "loss"]
        self.assertEqual(len(losses("det")), 3)
        self.assertEqual(losses("det-rerun"), losses("det"))
        st, again = self.call("GET", "/api/v1/jobs/det-rerun")
        self.assertEqual(again["user"], "alice")
        self.assertEqual(again["spec"]["labels"]["trainyard.dev/rerun-of"], "det")
        # A second rerun gets a name of its own; bob may not read alice's job, so may not rerun it.
        st, second = self.call("POST", "/api/v1/jobs/det/rerun", {})
        self.assertEqual((st, second["name"]), (201, "det-rerun-2"), second)
        self.assertError(self.call("POST", "/api/v1/jobs/det/rerun", {}, token="bob-token-4567"), 403, "Forbidden")


class KubeflowRunPolicy(ServerE2E):
    def test_a_suspended_pytorchjob_waits_then_runs_and_suspending_it_stops_its_replicas(self):
        """Kubeflow's runPolicy.suspend: submitted suspended it stays queued (another job runs past
        it); resumed it starts; suspended while running its replicas stop and it is queued again
        without counting against backoffLimit 0; resumed, it completes."""
        self.start_as_alice_with_bob("--containers", "host")  # busybox is Docker Hub's: run the command here
        marks, gate = os.path.join(self.dir, "marks"), os.path.join(self.dir, "go")
        os.makedirs(marks)
        script = (f"touch {marks}/started-$TRAINYARD_ATTEMPT-$TRAINYARD_REPLICA; "
                  f"while [ ! -e {gate} ]; do sleep 0.05; done; echo loss=0.5")
        spec = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "held"},
                "spec": {"runPolicy": {"suspend": True, "backoffLimit": 0},
                         "pytorchReplicaSpecs": {r: {"replicas": n, "restartPolicy": "Never", "template": {"spec": {"containers": [{
                             "name": "pytorch", "image": "busybox", "command": ["/bin/sh", "-c", script],
                             "resources": {"limits": {"cpu": "100m"}}}]}}} for r, n in (("Master", 1), ("Worker", 1))}}}
        self.ty("submit", "--containers", "host", self.write("held.yaml", json.dumps(spec)), check=0) \
            if False else self.ty("submit", self.write("held.yaml", json.dumps(spec)), check=0)
        self.ty("submit", self.write("other.yaml", job_yaml("other", "echo loss=1")), check=0)
        self.wait_phase("other", ("Succeeded",))
        held = self.job("held")
        self.assertEqual((held["phase"], held["reason"], held["suspended"]), ("Queued", "Suspended", True), held)
        self.assertEqual(os.listdir(marks), [])  # nothing of it ran

        p = self.ty("resume", "held", check=0)
        self.assertIn("job held resumed", p.stdout)
        self.wait_until("both replicas started", lambda: len(os.listdir(marks)) == 2, job="held")
        self.assertEqual(sorted(os.listdir(marks)), ["started-0-master-0", "started-0-worker-0"])
        self.ty("suspend", "held", check=0)
        self.wait_until("held queued again", lambda: self.job("held")["reason"] == "Suspended"
                        and self.job("held")["phase"] == "Queued", job="held")
        self.assertFalse([pid for pid in os.listdir("/proc") if pid.isdigit() and self.runs_marks(pid, marks)])

        self.ty("resume", "held", check=0)
        self.wait_until("attempt 1 started", lambda: len(os.listdir(marks)) == 4, job="held")
        open(gate, "w").close()
        self.wait_phase("held", ("Succeeded",))
        held = self.job("held")
        self.assertEqual((held["restarts"], held["suspended"]), (1, False), held)
        # Only the owner (or an admin) may suspend a job.
        self.assertError(self.call("POST", "/api/v1/jobs/held/suspend", {}, token="bob-token-4567"), 403, "Forbidden")
        self.assertError(self.call("POST", "/api/v1/jobs/held/resume", {}), 409, "JobFinished")

    def test_ttl_seconds_after_finished_deletes_the_job_but_keeps_its_outputs(self):
        self.start("--containers", "host")
        def pytorchjob(name, ttl):
            return json.dumps({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
                               "spec": {"runPolicy": {"ttlSecondsAfterFinished": ttl}, "pytorchReplicaSpecs": {"Master": {
                                   "replicas": 1, "template": {"spec": {"containers": [{
                                       "name": "pytorch", "image": "busybox",
                                       "command": ["/bin/sh", "-c", "echo kept > $TRAINYARD_OUTPUT_DIR/out.txt"]}]}}}}}})
        self.ty("submit", self.write("kept.yaml", pytorchjob("kept", 3600)), check=0)
        self.ty("submit", self.write("gone.yaml", pytorchjob("gone", 0)), check=0)
        self.wait_phase("kept", ("Succeeded",))
        self.wait_until("gone deleted", lambda: self.ty("get", "job", "gone").returncode != 0)
        self.assertIn("not found", self.ty("get", "job", "gone").stderr)
        with open(os.path.join(self.data, "outputs", "gone", "out.txt")) as f:
            self.assertEqual(f.read(), "kept\n")  # its outputs stay
        self.assertEqual(self.phase("kept"), "Succeeded")  # an hour to go

    def test_scheduling_policy_priority_class_gives_the_classs_value(self):
        self.start("--containers", "host")
        for name, value, default in (("high", 1000, False), ("normal", 10, True)):
            pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                  "value": value, "globalDefault": default, "description": "from Kubernetes"}
            p = self.ty("apply", self.write(f"{name}.yaml", json.dumps(pc)), check=0)
            self.assertIn(f"PriorityClass {name} applied", p.stdout)

        def pytorchjob(name, cls):
            return json.dumps({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
                               "spec": {"runPolicy": {"schedulingPolicy": {"priorityClass": cls, "minAvailable": 1}},
                                        "pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": {"containers": [{
                                            "name": "pytorch", "image": "busybox", "command": ["/bin/sh", "-c", "echo loss=1"]}]}}}}}})
        self.ty("submit", self.write("urgent.yaml", pytorchjob("urgent", "high")), check=0)
        self.ty("submit", self.write("plain.yaml", job_yaml("plain", "echo loss=1")), check=0)
        st, urgent = self.call("GET", "/api/v1/jobs/urgent")
        st, plain = self.call("GET", "/api/v1/jobs/plain")
        self.assertEqual((urgent["spec"]["priority"], plain["spec"]["priority"]), (1000, 10))  # named; the global default
        p = self.ty("submit", self.write("lost.yaml", pytorchjob("lost", "nope")))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("priority class nope does not exist", p.stderr)
        self.assertIn("classes: high, normal", p.stderr)
        # Not a queue: the queue list does not show it.
        self.assertNotIn("high", [q["name"] for q in self.tyjson("get", "queues")])

    @staticmethod
    def runs_marks(pid, marks):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return marks.encode() in f.read()
        except OSError:
            return False


class RestartSafety(ServerE2E):
    def test_kill_9_with_jobs_and_an_experiment_running(self):
        marker = os.path.join(self.dir, "marker")
        self.env["TRAINYARD_NODE_CPU"] = "8"  # room for both jobs and two trials at once
        s = self.start()
        # A job that keeps running through the outage, one whose process is
        # killed while no server runs (retried per policy), and an experiment.
        self.write("steady.yaml", job_yaml("steady", f"for i in $(seq 1 60); do echo step=$i loss=$i; sleep 0.05; done; "
                                                      f"while [ ! -e {marker} ]; do sleep 0.05; done"))
        self.write("victim.yaml", job_yaml("victim", "n=$(ls $TRAINYARD_OUT 2>/dev/null | wc -l); touch $TRAINYARD_OUT/$n; "
                                                     f"if [ $n = 0 ]; then exec sleep 600; fi; echo second attempt",
                                           "restartPolicy: OnFailure",
                                           f"env: [{{name: TRAINYARD_OUT, value: {self.dir}/victim-runs}}]"))
        os.makedirs(os.path.join(self.dir, "victim-runs"))
        self.write("sweep.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: Experiment
            metadata: {{name: sweep}}
            spec:
              objective: {{metric: loss, goal: minimize}}
              algorithm: {{name: random}}
              parallelTrials: 2
              maxTrials: 4
              parameters:
                - {{name: x, type: double, min: 0, max: 1}}
              trialTemplate:
                spec:
                  command: [/bin/sh, -c, "while [ ! -e {marker} ]; do sleep 0.05; done; echo loss=${{trialParameters.x}}"]
                  resources: {{cpu: 100m}}
            """)
        for f in ("steady.yaml", "victim.yaml", "sweep.yaml"):
            self.ty("submit", os.path.join(self.dir, f), check=0)
        self.wait_phase("victim", ["Running"])
        self.wait_until("two trials running", lambda: self.call("GET", "/api/v1/experiments/sweep")[1].get("counts", {}).get("Running") == 2)
        self.wait_until("steady to report", lambda: any(x["name"] == "loss" and x["points"] >= 5 for x in self.call("GET", "/api/v1/jobs/steady")[1]["series"]))
        victim_pid = self.call("GET", "/api/v1/jobs/victim")[1]["attempts"][0]["pid"]
        steady_pid = self.call("GET", "/api/v1/jobs/steady")[1]["attempts"][0]["pid"]

        s.proc.kill()  # kill -9
        s.proc.wait()
        self.assertTrue(pid_alive(steady_pid), "replicas must outlive the server")
        os.killpg(victim_pid, signal.SIGKILL)  # dies while nobody watches
        self.wait_until("the victim to be gone", lambda: not pid_alive(victim_pid))

        self.start()
        self.wait_phase("victim", ["Succeeded"], timeout=60)
        v = self.call("GET", "/api/v1/jobs/victim")[1]
        self.assertEqual(v["restarts"], 1)
        self.assertEqual((v["attempts"][0]["reason"], v["attempts"][0]["signal"]), ("Lost", 9))
        st, steady = self.call("GET", "/api/v1/jobs/steady")
        self.assertEqual(steady["phase"], "Running")
        self.assertIn("Reattached", [e["reason"] for e in steady["events"]])
        self.assertEqual(steady["attempts"][0]["pid"], steady_pid)
        open(marker, "w").close()
        self.wait_phase("steady", ["Succeeded"])
        self.wait_until("the experiment to finish", lambda: self.call("GET", "/api/v1/experiments/sweep")[1]["phase"] == "Succeeded", timeout=120)
        # Nothing lost or duplicated: every metric point once, 4 trials in all.
        st, loss = self.call("GET", "/api/v1/jobs/steady/metrics/loss?maxPoints=1000")
        self.assertEqual(loss["step"], list(range(1, 61)))
        self.assertEqual(self.ty("logs", "steady", check=0).stdout.count("step="), 60)
        st, trials = self.call("GET", "/api/v1/experiments/sweep/trials")
        self.assertEqual(trials["total"], 4)
        self.assertEqual({t["state"] for t in trials["items"]}, {"Succeeded"})
        self.assertEqual(sorted(t["trial"] for t in trials["items"]), [0, 1, 2, 3])
        self.assertEqual(self.call("GET", "/api/v1/jobs?label=trainyard.dev%2Fexperiment%3Dsweep")[1]["total"], 4,
                         "a trial that survived the restart must not run twice")


class PostgresStore(ServerE2E):
    def test_server_on_postgresql(self):
        url = self.pg_database()
        self.start("--store", url)
        self.write("pg.yaml", job_yaml("on-pg", "for s in 1 2 3 4; do echo step=$s acc=0.$s; done"))
        self.ty("submit", os.path.join(self.dir, "pg.yaml"), check=0)
        self.wait_phase("on-pg", ["Succeeded"])
        self.assertEqual(self.call("GET", "/api/v1/jobs/on-pg/metrics/acc")[1]["last"], [0.1, 0.2, 0.3, 0.4])
        rows = subprocess.run(["psql", url, "-tAc", "SELECT phase FROM jobs WHERE name='on-pg'"], capture_output=True, text=True, check=True)
        self.assertEqual(rows.stdout.strip(), "Succeeded")


if __name__ == "__main__":
    unittest.main()
