"""Helpers for end-to-end tests: run the built `trainyard` binary as a user would."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

BIN = os.environ.get("TRAINYARD_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin/trainyard"))
# `trainyard server` as root runs jobs as trainyard-jobs unless told otherwise;
# the tests' files live in private temp dirs, so their jobs run as the tester.
RUN_AS_SELF = ["--run-as", pwd.getpwuid(os.getuid()).pw_name]
SOURCE_DIR = os.environ.get("TRAINYARD_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD_DIR = os.environ.get("TRAINYARD_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))


class E2E(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ty-e2e-")
        self.data = os.path.join(self.dir, "data")
        self.env = dict(os.environ)
        self.env.pop("TRAINYARD_DATA_DIR", None)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def ty(self, *args, check=None, timeout=600):
        """Runs trainyard with this test's data dir; returns CompletedProcess."""
        p = subprocess.run([BIN, "--data-dir", self.data, *args], capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check is not None:
            self.assertEqual(p.returncode, check, f"trainyard {' '.join(args)}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def popen(self, *args, env=None):
        return subprocess.Popen([BIN, "--data-dir", self.data, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env or self.env)

    def tyjson(self, *args):
        return json.loads(self.ty(*args, "-o", "json", check=0).stdout)

    def job(self, name):
        return self.tyjson("describe", "job", name)

    def wait_until(self, what, predicate, timeout=60, job=None):
        """Polls an observable condition (a file, a job phase); fails after `timeout` seconds,
        showing `job`'s state and logs when given."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        detail = ""
        if job:
            detail = self.ty("describe", "job", job).stdout
            for a in json.loads(self.ty("describe", "job", job, "-o", "json").stdout or "{}").get("attempts", []):
                try:
                    with open(a["logPath"]) as f:
                        detail += f"\n--- {a['replica']} attempt {a['attempt']}:\n" + f.read()[-3000:]
                except OSError:
                    pass
        self.fail(f"timed out waiting for {what}\n{detail}")

    def phase(self, name):
        p = self.ty("get", "job", name, "-o", "json")
        return json.loads(p.stdout)["phase"] if p.returncode == 0 else None


def start_listening(test, cmd, log_path, timeout=60):
    """Starts a server process (`trainyard server`/`serve`) with its output in `log_path`;
    returns (process, its URL from the "listening on" line). Stopped with SIGTERM at cleanup."""
    log = open(log_path, "w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=test.env)

    def stop():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        log.close()

    test.addCleanup(stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read()
        if "listening on " in text:
            return proc, text.split("listening on ")[1].split()[0]
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    log.seek(0)
    test.fail(f"{' '.join(cmd[:3])} did not start:\n{log.read()}")


def job_yaml(name, script, *spec_lines, labels=None):
    """A TrainJob running `script` under /bin/sh; spec_lines are more `spec` fields ("restartPolicy: OnFailure")."""
    lines = ["apiVersion: trainyard.dev/v1", "kind: TrainJob", "metadata:", f"  name: {name}"]
    if labels:
        lines.append(f"  labels: {json.dumps(labels)}")
    lines += ["spec:", "  command: [/bin/sh, -c]", f"  args: [{json.dumps(script)}]"]
    lines += ["  " + l for l in spec_lines]
    return "\n".join(lines) + "\n"


def fixture_skip_reason(directory, variable, fixture):
    """Why the tests of a ctest fixture's cluster (its directory in `variable`) cannot run, or ""."""
    if not directory:
        return f"{variable} not set: run through ctest (fixture {fixture})"
    skipped = os.path.join(directory, "skipped")
    if os.path.exists(skipped):
        with open(skipped) as f:
            return f.read().strip()
    return ""


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return ") Z" not in f.read()
    except FileNotFoundError:
        return False
