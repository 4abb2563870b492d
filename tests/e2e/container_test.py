"""End-to-end: replicas with an `image:` run in Podman containers on the local backend (the CLI and
the server as a user runs them). The test image is built from this machine's files in a second
(tests/k8s/host_usr_image.sh: Debian's merged-/usr skeleton and a file only the image has) and
kept in Podman's store across runs; its /usr is the host's, mounted read-only as a volume, so
python3 and torch come from the host (docs/containers.md). Skipped, saying why, without Podman."""
import json
import os
import re
import shutil
import subprocess
import time
import unittest

from common import E2E, SOURCE_DIR, job_yaml

IMAGE = "localhost/trainyard-test:1"
EXAMPLES = os.path.join(SOURCE_DIR, "examples", "fmnist")
DATASET = "/usr/share/datasets/fashion-mnist"
USR = {"hostPath": "/usr", "mountPath": "/usr", "readOnly": True}


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=300)


def skip_reason():
    if not shutil.which("podman"):
        return "podman not installed (apt-get install podman runc catatonit)"
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        out = os.path.join("/tmp", f"trainyard-test-image-{os.getpid()}.tar")
        p = subprocess.run([os.path.join(SOURCE_DIR, "tests", "k8s", "host_usr_image.sh"), out, IMAGE],
                           capture_output=True, text=True, timeout=300)
        if os.path.exists(out):
            os.remove(out)
        if p.returncode != 0:
            return "cannot build the test image: " + p.stderr[-500:]
    return ""


class ContainerE2E(E2E):
    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest("SKIPPED, no containers: " + why)

    def spec(self, name, command, **more):
        spec = {"image": IMAGE, "volumes": [USR], "workingDir": self.dir, "command": command}
        spec.update(more)
        return self.write(f"{name}.yaml", json.dumps({"apiVersion": "trainyard.dev/v1", "kind": "TrainJob",
                                                      "metadata": {"name": name}, "spec": spec}))

    def containers_of(self, name):
        uid = self.job(name)["uid"]
        return podman("ps", "-a", "--filter", f"label=trainyard.dev/job-uid={uid}", "--format", "{{.Names}}").stdout.split()


class Containers(ContainerE2E):
    def test_a_job_runs_in_its_image_with_its_directories_and_volumes(self):
        script = ("cat /etc/trainyard-image; echo \"pwd=$(pwd)\"; ls /data; "
                  "echo hello > \"$TRAINYARD_OUTPUT_DIR/said.txt\"; "
                  f"test -e {SOURCE_DIR}/README.md && echo 'host tree visible' || echo 'host tree hidden'; "
                  "echo accuracy=0.75")
        spec = self.spec("in-image", ["/bin/sh", "-c", script],
                         volumes=[USR, {"hostPath": DATASET, "mountPath": "/data", "readOnly": True}])
        p = self.ty("run", spec, check=0)
        out = p.stdout + p.stderr
        log = self.ty("logs", "in-image", check=0).stdout
        self.assertIn(IMAGE, log)  # /etc/trainyard-image: a file only the image has
        self.assertFalse(os.path.exists("/etc/trainyard-image"))
        self.assertIn(f"pwd={self.dir}", log)  # the working directory, mounted at its own path
        self.assertIn("train-images-idx3-ubyte.gz", log)  # the dataset volume
        self.assertIn("host tree hidden", log)  # what is not mounted is not there
        self.assertIn("in-image Succeeded", out)
        self.assertEqual(self.job("in-image")["lastMetrics"]["accuracy"]["value"], 0.75)
        with open(os.path.join(self.data, "outputs", "in-image", "said.txt")) as f:
            self.assertEqual(f.read(), "hello\n")  # the outputs directory, written from inside
        self.assertEqual(self.containers_of("in-image"), [])  # nothing left behind

    def test_args_alone_keep_the_images_entrypoint(self):
        # The test image's CMD is python3 (no entrypoint): args alone replace CMD, as on Kubernetes.
        spec = self.spec("args-only", None)
        with open(spec) as f:
            doc = json.load(f)
        del doc["spec"]["command"]
        doc["spec"]["args"] = ["/bin/echo", "from args"]
        with open(spec, "w") as f:
            json.dump(doc, f)
        self.ty("run", spec, check=0)
        self.assertIn("from args", self.ty("logs", "args-only", check=0).stdout)

    def test_the_memory_limit_is_enforced_and_reported_as_oomkilled(self):
        spec = self.spec("oom", ["/usr/bin/python3", "-c", "b = bytearray(400 << 20); print('allocated')"],
                         resources={"memory": "64Mi"})
        p = self.ty("run", spec)
        self.assertNotEqual(p.returncode, 0)
        d = self.job("oom")
        self.assertEqual(d["phase"], "Failed")
        self.assertEqual(d["attempts"][0]["reason"], "OOMKilled", d)
        self.assertNotIn("allocated", self.ty("logs", "oom", check=0).stdout)

    def test_a_missing_image_fails_fast_with_imagepullfailed(self):
        for name, image, policy in (("never", "localhost/trainyard-no-such-image:1", "Never"),
                                    ("unpullable", "trainyard.invalid/no-such-image:1", "IfNotPresent")):
            spec = self.spec(name, ["/bin/true"], image=image, imagePullPolicy=policy)
            p = self.ty("run", spec, timeout=120)
            self.assertNotEqual(p.returncode, 0)
            d = self.job(name)
            self.assertEqual(d["attempts"][0]["reason"], "ImagePullFailed", d)
            self.assertRegex(d["message"], r"image not known|initializing source|no such host|pinging", d)

    def test_ddp_with_two_replicas_in_containers_agrees(self):
        # A Kubeflow PyTorchJob as written for a cluster, its /usr a hostPath volume: the same YAML
        # runs here in containers, torch from the host.
        def role():
            return {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {
                "volumes": [{"name": "usr", "hostPath": {"path": "/usr"}}],
                "containers": [{
                    "name": "pytorch", "image": IMAGE, "imagePullPolicy": "Never", "workingDir": EXAMPLES,
                    "command": ["/usr/bin/python3", "ddp.py", "--epochs", "1", "--train-limit", "2000"],
                    "env": [{"name": "GLOO_SOCKET_IFNAME", "value": "lo"}],
                    "volumeMounts": [{"name": "usr", "mountPath": "/usr", "readOnly": True}],
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}
        spec = self.write("ddp.yaml", json.dumps({
            "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "ddp-in-containers"},
            "spec": {"pytorchReplicaSpecs": {"Master": role(), "Worker": role()}}}))
        p = self.ty("run", spec, check=0, timeout=900)
        out = p.stdout + p.stderr
        self.assertIn("ddp-in-containers Succeeded", out)
        sums = {}
        for r in ("master-0", "worker-0"):
            log = self.ty("logs", "ddp-in-containers", "--replica", r, check=0).stdout
            m = re.search(r"parameter checksum (\S+)", log)
            self.assertIsNotNone(m, log[-2000:])
            sums[r] = m.group(1)
        self.assertEqual(len(set(sums.values())), 1, sums)
        self.assertEqual(self.containers_of("ddp-in-containers"), [])


class Builds(ContainerE2E):
    def test_spec_build_builds_the_image_once_per_context_content(self):
        ctx = os.path.join(self.dir, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write(f"FROM {IMAGE}\nCOPY hello.txt /etc/hello.txt\n")
        marker = f"built-{os.getpid()}-{time.monotonic_ns()}"  # a context no earlier run has built
        with open(os.path.join(ctx, "hello.txt"), "w") as f:
            f.write(marker + "\n")
        spec = self.write("b.yaml", json.dumps({
            "apiVersion": "trainyard.dev/v1", "kind": "TrainJob", "metadata": {"name": "built"},
            "spec": {"build": {"context": "ctx"}, "volumes": [USR], "command": ["/bin/cat", "/etc/hello.txt"]}}))
        first = self.ty("run", spec, check=0)
        self.assertIn("trainyard: building localhost/trainyard-build-ctx:", first.stdout)
        self.assertIn(marker, first.stdout)
        second = self.ty("run", spec, check=0)  # the same content: no build
        self.assertNotIn("building", second.stdout)
        self.assertIn(marker, second.stdout)
        self.assertEqual(self.job("built")["record"]["build"]["context"], ctx)
        with open(os.path.join(ctx, "hello.txt"), "w") as f:
            f.write(marker + "-changed\n")
        third = self.ty("run", spec, check=0)  # changed content: built again
        self.assertIn("building", third.stdout)
        self.assertIn(marker + "-changed", third.stdout)

    def test_a_failing_build_ends_the_attempt_with_imagebuildfailed(self):
        ctx = os.path.join(self.dir, "broken")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write(f"FROM {IMAGE}\nCOPY no-such-file /x\n")
        spec = self.write("bad.yaml", json.dumps({
            "apiVersion": "trainyard.dev/v1", "kind": "TrainJob", "metadata": {"name": "bad-build"},
            "spec": {"build": {"context": "broken"}, "command": ["/bin/true"]}}))
        p = self.ty("run", spec)
        self.assertNotEqual(p.returncode, 0)
        d = self.job("bad-build")
        self.assertEqual(d["attempts"][0]["reason"], "ImageBuildFailed", d)
        self.assertIn("building the image failed", d["message"])


class Reproducibility(ContainerE2E):
    def git(self, *args):
        subprocess.run(["git", "-C", self.repo, "-c", "user.email=t@t", "-c", "user.name=t", *args],
                       check=True, capture_output=True)

    def setUp(self):
        super().setUp()
        if not shutil.which("git"):
            self.skipTest("SKIPPED: git not installed")
        self.repo = os.path.join(self.dir, "repo")
        os.makedirs(self.repo)
        with open(os.path.join(self.repo, "train.py"), "w") as f:
            f.write("import os, random\nrandom.seed(int(os.environ['SEED']))\n"
                    "for step in range(1, 4):\n    print(f'step={step} loss={random.random():.6f}')\n")
        self.git("init", "-q")
        self.git("add", "train.py")
        self.git("commit", "-qm", "first")

    def losses(self, name):
        got = self.tyjson("get", "metrics", name, "--all")["metrics"]
        return [(m["step"], m["value"]) for m in got if m["name"] == "loss"]

    def test_a_job_records_how_it_was_made_and_rerun_reproduces_it(self):
        with open(os.path.join(self.repo, "train.py"), "a") as f:
            f.write("# an uncommitted change\n")
        spec = self.write("det.yaml", json.dumps({
            "apiVersion": "trainyard.dev/v1", "kind": "TrainJob", "metadata": {"name": "det"},
            "spec": {"image": IMAGE, "volumes": [USR], "workingDir": self.repo,
                     "command": ["/usr/bin/python3", "train.py"],
                     "env": [{"name": "SEED", "value": "7"}, {"name": "API_TOKEN", "value": "hunter2"}]}}))
        self.ty("run", "-q", spec, check=0)
        rec = self.job("det")["record"]
        commit = subprocess.run(["git", "-C", self.repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        [git] = rec["git"]
        self.assertEqual((git["commit"], git["dirty"]), (commit, True))
        self.assertEqual(rec["seed"], "7")
        self.assertEqual(rec["backend"], "local")
        [image] = rec["images"]
        self.assertTrue(image["digest"].startswith("sha256:"), image)
        self.assertEqual(rec["roles"][0]["env"]["API_TOKEN"], "<redacted>")
        self.assertNotIn("hunter2", json.dumps(rec))
        self.assertIn("torch", rec["versions"])
        # The uncommitted change is kept among the job's outputs, downloadable like any.
        diff = self.ty("outputs", "det", git["diff"], check=0).stdout
        self.assertIn("+# an uncommitted change", diff)
        shown = self.ty("describe", "job", "det", check=0).stdout
        self.assertIn(f"at {commit[:12]} + uncommitted changes", shown)
        self.assertIn("@ " + image["digest"], shown)

        # Again, from the record: the same metrics, the image pinned to its digest, and a word on the tree.
        self.git("commit", "-qam", "second")
        p = self.ty("rerun", "-q", "det", check=0)
        self.assertIn("had uncommitted changes then", p.stderr)
        self.assertIn(f"the job ran at {commit[:12]}", p.stderr)  # the tree moved on since
        self.assertEqual(self.losses("det-rerun"), self.losses("det"))
        self.assertEqual(len(self.losses("det")), 3)
        again = self.job("det-rerun")
        self.assertEqual(again["spec"]["roles"][0]["image"], "localhost/trainyard-test@" + image["digest"])
        self.assertEqual(again["spec"]["labels"]["trainyard.dev/rerun-of"], "det")


class ContainersThroughTheServer(ContainerE2E):
    def server(self):
        from server_test import Server
        s = Server(self)
        self.env["TRAINYARD_SERVER"] = s.url
        self.addCleanup(lambda: [podman("rm", "-f", "-t", "0", n, check=False) for n in
                                 podman("ps", "-a", "--filter", "label=trainyard.dev/job-uid", "--format",
                                        "{{.Names}} {{.Mounts}}").stdout.splitlines() if self.dir in n])
        return s

    def test_cancel_stops_the_container_and_leaves_none(self):
        started = os.path.join(self.dir, "started")
        self.server()
        spec = self.spec("long", ["/bin/sh", "-c", f"touch {started}; exec sleep 600"])
        self.ty("submit", spec, check=0)
        self.wait_until("the container running", lambda: os.path.exists(started), timeout=120, job="long")
        self.assertEqual(len(self.containers_of("long")), 1)
        self.ty("cancel", "long", check=0)
        self.wait_until("the job cancelled", lambda: self.phase("long") in ("Failed", "Cancelled"), timeout=60, job="long")
        self.assertEqual(self.containers_of("long"), [])
        self.assertEqual(self.job("long")["reason"], "Cancelled")

    def test_a_server_killed_with_sigkill_reattaches_to_its_container(self):
        go = os.path.join(self.dir, "go")
        server = self.server()
        script = (f"echo step=1 loss=0.9; echo step=2 loss=0.5; while [ ! -e {go} ]; do sleep 0.05; done; "
                  "echo step=3 loss=0.25")
        self.ty("submit", self.spec("reattach", ["/bin/sh", "-c", script]), check=0)

        def steps():
            got = self.tyjson("get", "metrics", "reattach", "--all")["metrics"]
            return sorted(m["step"] for m in got if m["name"] == "loss")
        self.wait_until("two points stored", lambda: steps() == [1, 2], timeout=120, job="reattach")
        [container] = self.containers_of("reattach")
        server.proc.kill()
        server.proc.wait(timeout=30)
        with open(go, "w"):
            pass  # the container goes on while no server watches it
        self.server()
        self.wait_until("the job to succeed", lambda: self.phase("reattach") == "Succeeded", timeout=120, job="reattach")
        self.assertEqual(steps(), [1, 2, 3])  # each point exactly once, from the same container
        self.assertEqual(self.containers_of("reattach"), [])
        self.assertTrue(container.startswith("trainyard-"))


if __name__ == "__main__":
    unittest.main()
