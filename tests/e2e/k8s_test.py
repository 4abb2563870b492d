"""End-to-end: `trainyard run --backend kubernetes` on a real control plane (the ctest fixture
"k8s": etcd, kube-apiserver, scheduler and controller-manager v1.28.7) with kubelet stand-ins
(tests/k8s/kubelet_standin.py) as its nodes. Skipped, saying why, where there is no cluster."""
import json
import os
import ssl
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

from common import BIN, E2E, SOURCE_DIR, fixture_skip_reason, job_yaml

CLUSTER = os.environ.get("TRAINYARD_TEST_K8S_DIR", "")

# Rank 0 listens on MASTER_PORT until rank 1 connects to MASTER_ADDR (a Service name) and says hello.
PEER_SCRIPT = ("import os, socket\n"
               "rank = int(os.environ['RANK'])\n"
               "addr, port = os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT'])\n"
               "if rank == 0:\n"
               "    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
               "    s.bind(('0.0.0.0', port)); s.listen(1); c, _ = s.accept()\n"
               "    print('master got', c.recv(64).decode(), 'on', os.environ['WORLD_SIZE'], 'ranks', flush=True)\n"
               "else:\n"
               "    import time\n"
               "    for _ in range(300):\n"
               "        try:\n"
               "            c = socket.create_connection((addr, port)); break\n"
               "        except OSError: time.sleep(0.1)\n"
               "    c.sendall(b'hello from rank %d via %s' % (rank, addr.encode())); print('sent', flush=True)\n")



def skip_reason():
    return fixture_skip_reason(CLUSTER, "TRAINYARD_TEST_K8S_DIR", "k8s")


class KubernetesE2E(E2E):
    """Each test class gets its own namespace and its own stand-in nodes, labelled with a pool of
    its own, and its jobs select that pool: tests running beside it on the same cluster (and their
    nodes) do not meet."""
    pool = "e2e"
    nodes = ("e2e-a", "e2e-b")

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest("SKIPPED, no Kubernetes: " + why)
        why = cls.nodes_missing()
        if why:
            raise unittest.SkipTest("SKIPPED: " + why)
        cls.cluster = cls.control_plane()
        env = {}
        with open(os.path.join(cls.cluster, "env")) as f:
            for line in f:
                if line.startswith("export ") and "=" in line:
                    k, v = line[7:].strip().split("=", 1)
                    env[k] = v.strip('"')
        cls.api, cls.token = env["KUBE_API"], env["KUBE_TOKEN"]
        cls.kubeconfig = os.path.join(cls.cluster, "kubeconfig")
        cls.ns = f"ty-{cls.pool}-{os.getpid()}"  # a namespace being deleted by an earlier run refuses new pods
        cls.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": cls.ns}})
        cls.start_nodes()
        # A new node is schedulable once the node lifecycle controller lifts its not-ready taint.
        def schedulable():
            st, nodes = cls.call("GET", f"/api/v1/nodes?labelSelector=pool%3D{cls.pool}")
            return st == 200 and len(nodes["items"]) == len(cls.nodes) and all(
                not any(t["effect"] in ("NoSchedule", "NoExecute") for t in n["spec"].get("taints", [])) and
                any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
                for n in nodes["items"])
        cls.poll("stand-in nodes schedulable", schedulable, timeout=90)

    @classmethod
    def control_plane(cls):
        """The directory of the control plane this class uses (cluster-up.sh's): the fixture's."""
        return os.path.join(CLUSTER, "cluster")

    @classmethod
    def nodes_missing(cls):
        """Why this class's nodes cannot be started here (empty: they can)."""
        return ""

    @classmethod
    def start_nodes(cls):
        """Kubelet stand-ins (tests/k8s/kubelet_standin.py), one per name in `nodes`."""
        cls.standins = []
        for n in cls.nodes:
            state = os.path.join(CLUSTER, "standin-" + n)
            os.makedirs(state, exist_ok=True)
            ready = os.path.join(state, "ready")
            if os.path.exists(ready):
                os.remove(ready)
            with open(os.path.join(state, "log"), "w") as log:
                p = subprocess.Popen([sys.executable, os.path.join(SOURCE_DIR, "tests/k8s/kubelet_standin.py"), "--cluster",
                                      cls.cluster, "--node", n, "--state", state, "--cpu", "2", "--memory", "4Gi",
                                      "--labels", f"pool={cls.pool}"], stdout=log, stderr=subprocess.STDOUT)
            cls.standins.append(p)
            cls.poll(f"stand-in {n} ready", lambda: os.path.exists(ready), timeout=60)

    @classmethod
    def stop_nodes(cls):
        for p in getattr(cls, "standins", []):
            p.terminate()
            p.wait(timeout=30)

    @staticmethod
    def poll(what, predicate, timeout):
        """Polls an observable condition (a file, the API's view of a node)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    @classmethod
    def tearDownClass(cls):
        cls.stop_nodes()
        for n in getattr(cls, "nodes", ()):
            if hasattr(cls, "api"):
                cls.call("DELETE", f"/api/v1/nodes/{n}")
        if hasattr(cls, "api"):
            cls.call("DELETE", f"/api/v1/namespaces/{cls.ns}")

    @classmethod
    def request(cls, method, path, body=None, content_type="application/json"):
        """The API server's (status, body bytes), as the cluster's admin."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(cls.api + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Authorization", "Bearer " + cls.token)
        req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    @classmethod
    def call(cls, method, path, body=None, content_type="application/json"):
        st, data = cls.request(method, path, body, content_type)
        return st, json.loads(data or b"{}")

    @classmethod
    def call_text(cls, path):
        st, data = cls.request("GET", path)
        return st, data.decode(errors="replace")

    def run_k8s(self, spec_file, check=0, timeout=300):
        p = self.ty("run", "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                    "--host-network", spec_file, check=check, timeout=timeout)
        return p.stdout + p.stderr if check == 0 else p

    def pod_job(self, name, script, *spec_lines, cpu="100m"):
        """A TrainJob file (common.job_yaml) running `script` in a debian:12 pod on this class's nodes."""
        return self.write(f"{name}.yaml", job_yaml(name, script, "image: debian:12", f"nodeSelector: {{pool: {self.pool}}}",
                                                   f"resources: {{cpu: {cpu}, memory: 32Mi}}", *spec_lines))

    def pods(self, job):
        st, pods = self.call("GET", f"/api/v1/namespaces/{self.ns}/pods?labelSelector=trainyard.dev%2Fjob-name%3D{job}")
        return pods.get("items", [])


class Jobs(KubernetesE2E):
    def test_a_job_runs_in_a_pod_and_its_metrics_come_through_pods_log(self):
        spec = self.write("job.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: k8s-hello}}
            spec:
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              command: [/bin/sh, -c, 'for i in 1 2 3; do echo "epoch=$i loss=0.$i"; done; echo "pod $HOSTNAME"']
              resources: {{cpu: 1, memory: 128Mi}}
            """)
        out = self.run_k8s(spec)
        self.assertIn("k8s-hello Succeeded", out)
        self.assertIn("pod k8s-hello-worker-0-0", out)  # the log, read through the pods/log API
        self.assertIn("loss=0.3", out)
        d = self.job("k8s-hello")
        self.assertEqual(d["attempts"][0]["reason"], "Completed")
        self.assertRegex(d["attempts"][0]["handle"], r"^[0-9a-f-]{36}$")  # the pod's UID
        self.assertEqual(self.pods("k8s-hello"), [], "the job's pods were not released")
        # Its log outlives the pod: kept in the data dir when the job was released.
        self.assertIn("pod k8s-hello-worker-0-0", self.ty("logs", "k8s-hello", check=0).stdout)
        metrics = self.tyjson("get", "metrics", "k8s-hello", "--all")
        self.assertIn("loss", json.dumps(metrics))

    def test_a_gang_spreads_over_nodes_and_peers_reach_each_other_by_service_name(self):
        self.write("peer.py", PEER_SCRIPT)
        spec = self.write("gang.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: k8s-gang}}
            spec:
              framework: pytorch
              replicas: 2
              placement: spread
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              workingDir: {self.dir}
              command: [/usr/bin/python3, peer.py]
              resources: {{cpu: 1, memory: 128Mi}}
            """)
        out = self.run_k8s(spec)
        self.assertIn("k8s-gang Succeeded", out)
        # MASTER_ADDR is rank 0's Service name, resolved on the other node.
        self.assertIn("master got hello from rank 1 via k8s-gang-master-0 on 2 ranks", out)
        d = self.job("k8s-gang")
        scheduled = [e["message"] for e in d["events"] if e["reason"] == "Scheduled"]
        self.assertTrue(scheduled and all(n in scheduled[0] for n in self.nodes), scheduled)  # spread: one per node
        for n in self.nodes:  # and each pod was bound to its node (its stand-in ran it)
            self.assertTrue(any(f.startswith(f"{self.ns}_k8s-gang-") for f in os.listdir(os.path.join(CLUSTER, "standin-" + n))), n)

    def test_an_experiment_runs_its_trials_as_pods_in_parallel(self):
        spec = self.write("sweep.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: Experiment
            metadata: {{name: k8s-sweep}}
            spec:
              objective: {{metric: score, goal: maximize}}
              algorithm: {{name: random}}
              parameters:
                - {{name: x, type: double, min: 0, max: 1}}
              parallelTrials: 2
              maxTrials: 4
              seed: 3
              trialTemplate:
                spec:
                  image: debian:12
                  nodeSelector: {{pool: {self.pool}}}
                  command: [/bin/sh, -c, 'echo "epoch=1 score=${{trialParameters.x}}"']
                  resources: {{cpu: 500m, memory: 64Mi}}
            """)
        out = self.run_k8s(spec)
        self.assertIn("k8s-sweep", out)
        trials = self.tyjson("get", "trials", "k8s-sweep")
        items = trials["items"] if isinstance(trials, dict) else trials
        self.assertEqual(len(items), 4, items)
        self.assertTrue(all(t["state"] == "Succeeded" for t in items), items)
        # Each trial ran as a pod on the pool's nodes (its stand-ins kept their logs).
        ran = [f for n in self.nodes for f in os.listdir(os.path.join(CLUSTER, "standin-" + n))
               if f.startswith(f"{self.ns}_k8s-sweep")]
        self.assertEqual(len(ran), 4, ran)

    def test_kubeflow_pod_templates_reach_the_pods(self):
        go = os.path.join(self.dir, "go")
        spec = self.write("pytorchjob.yaml", f"""\
            apiVersion: kubeflow.org/v1
            kind: PyTorchJob
            metadata: {{name: k8s-kubeflow}}
            spec:
              pytorchReplicaSpecs:
                Master:
                  replicas: 1
                  restartPolicy: Never
                  template:
                    metadata:
                      labels: {{team: vision}}
                      annotations: {{sidecar.istio.io/inject: "false"}}
                    spec:
                      nodeSelector: {{pool: {self.pool}}}
                      serviceAccountName: default
                      securityContext: {{runAsNonRoot: false}}
                      tolerations: [{{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}}]
                      volumes: [{{name: data, hostPath: {{path: {self.dir}}}}}]
                      containers:
                        - name: log-shipper
                          image: busybox:1
                          command: [/bin/sh, -c, "sleep 3600"]
                        - name: pytorch
                          image: debian:12
                          command: [/bin/sh, -c]
                          args: ["while [ ! -e {go} ]; do sleep 0.05; done; echo rank $RANK of $WORLD_SIZE"]
                          volumeMounts: [{{name: data, mountPath: /data}}]
                          env:
                            - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
                          resources: {{limits: {{cpu: "1", memory: 128Mi}}}}
            """)
        run = self.popen("run", "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                         "--host-network", spec)
        try:
            self.poll("the master's pod", lambda: len(self.pods("k8s-kubeflow")) == 1, timeout=60)
            pod = self.pods("k8s-kubeflow")[0]
            with open(go, "w"):
                pass
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
        self.assertEqual(run.returncode, 0, out + err)
        self.assertIn("rank 0 of 1", out)
        meta, podspec = pod["metadata"], pod["spec"]
        self.assertEqual(meta["labels"]["team"], "vision")
        self.assertEqual(meta["labels"]["trainyard.dev/job-role"], "master")
        self.assertEqual(meta["labels"]["training.kubeflow.org/replica-type"], "master")
        self.assertNotIn("ownerReferences", meta)  # run, not applied: no resource owns it
        self.assertEqual(meta["annotations"]["sidecar.istio.io/inject"], "false")
        self.assertEqual([c["name"] for c in podspec["containers"]], ["log-shipper", "pytorch"])  # the sidecar kept
        main = podspec["containers"][1]
        self.assertIn({"name": "data", "mountPath": "/data"}, main["volumeMounts"])
        self.assertIn("MY_POD", [e["name"] for e in main["env"]])          # valueFrom kept
        self.assertIn("MASTER_ADDR", [e["name"] for e in main["env"]])     # and the wiring added
        self.assertEqual(main["resources"]["limits"]["memory"], str(128 << 20))
        self.assertIn({"name": "data", "hostPath": {"path": self.dir, "type": ""}}, podspec["volumes"])
        self.assertIn("dedicated", [t["key"] for t in podspec["tolerations"]])
        self.assertIn("node.kubernetes.io/unreachable", [t["key"] for t in podspec["tolerations"]])
        self.assertEqual(podspec["serviceAccountName"], "default")
        self.assertEqual(podspec["restartPolicy"], "Never")

    def test_a_replica_without_an_image_fails_clearly(self):
        spec = self.write("noimage.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: k8s-noimage}}
            spec:
              nodeSelector: {{pool: {self.pool}}}
              command: [/bin/true]
            """)
        p = self.run_k8s(spec, check=None)
        self.assertNotEqual(p.returncode, 0)
        d = self.job("k8s-noimage")
        self.assertEqual(d["phase"], "Failed")
        self.assertIn("has no image", d["message"])


class NodeLoss(KubernetesE2E):
    pool = "loss"
    nodes = ("loss-a", "loss-b", "loss-c")

    def test_a_node_that_stops_answering_loses_its_replicas_and_the_gang_restarts_elsewhere(self):
        spec = self.write("gang.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: k8s-loss}}
            spec:
              framework: pytorch
              replicas: 2
              placement: spread
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              restartPolicy: OnFailure
              backoffLimit: 2
              command: [/bin/sh, -c, 'if [ "$TRAINYARD_ATTEMPT" = 0 ]; then exec sleep 600; fi; echo "rank $RANK done on attempt $TRAINYARD_ATTEMPT"']
              resources: {{cpu: 1, memory: 128Mi}}
            """)
        run = self.popen("run", "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                         "--host-network", "--eviction-seconds", "3", spec)
        try:
            def running():
                pods = self.pods("k8s-loss")
                return len(pods) == 2 and all(p.get("status", {}).get("phase") == "Running" for p in pods)
            self.poll("both replicas running", running, timeout=60)
            lost = self.pods("k8s-loss")[0]["spec"]["nodeName"]
            # The node dies: its kubelet stops answering, its processes with it.
            i = self.nodes.index(lost)
            self.standins[i].terminate()
            self.standins[i].wait(timeout=30)
            out, err = run.communicate(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
        self.assertEqual(run.returncode, 0, out + err)
        self.assertIn("k8s-loss Succeeded", out + err)
        d = self.job("k8s-loss")
        self.assertEqual(d["restarts"], 1)
        first = [a for a in d["attempts"] if a["attempt"] == 0]
        self.assertIn("NodeLost", {a["reason"] for a in first}, first)
        scheduled = [e["message"] for e in d["events"] if e["reason"] == "Scheduled"]
        self.assertEqual(len(scheduled), 2, scheduled)
        self.assertNotIn(lost, scheduled[1], "the restarted gang went back to the node that is gone")


class GangDefault(KubernetesE2E):
    """--gang default: kube-scheduler places the pods, a PodGroup tells a gang scheduler about them,
    and a gang it placed only in part is torn down and queued again."""
    pool = "gd"
    nodes = ("gd-a", "gd-b")

    def test_a_gang_kube_scheduler_places_in_part_is_torn_down_and_runs_when_it_fits(self):
        # A PodGroup CRD as the coscheduling plugin installs it (the plugin itself is not here).
        crd = self.write("podgroup-crd.yaml", """\
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: podgroups.scheduling.x-k8s.io}
            spec:
              group: scheduling.x-k8s.io
              scope: Namespaced
              names: {plural: podgroups, singular: podgroup, kind: PodGroup}
              versions:
                - name: v1alpha1
                  served: true
                  storage: true
                  schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
            """)
        kubectl = os.path.join(CLUSTER, "bin", "kubectl")
        subprocess.run([kubectl, "--kubeconfig", self.kubeconfig, "apply", "-f", crd], check=True, capture_output=True)
        subprocess.run([kubectl, "--kubeconfig", self.kubeconfig, "wait", "--for", "condition=established",
                        "crd/podgroups.scheduling.x-k8s.io", "--timeout=60s"], check=True, capture_output=True)
        # Only gd-b is in the zone the pod template's affinity asks for, and it holds one replica of
        # two: Trainyard (which does not model affinity) admits the gang on both nodes, kube-scheduler
        # places one pod and not the other.
        st, _ = self.call("PATCH", "/api/v1/nodes/gd-b", {"metadata": {"labels": {"zone": "b"}}},
                          content_type="application/merge-patch+json")
        self.assertEqual(st, 200)
        def replica():
            return {"replicas": 1, "template": {"spec": {
                "nodeSelector": {"pool": self.pool},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}},
                # Rank 0 waits for rank 1, as a real gang's rendezvous does.
                "containers": [{"name": "pytorch", "image": "debian:12", "workingDir": self.dir,
                                "command": ["/usr/bin/python3", "peer.py"],
                                "resources": {"requests": {"cpu": "1500m", "memory": "64Mi"}}}]}}}
        self.write("peer.py", PEER_SCRIPT)
        spec = self.write("pj.yaml", json.dumps({  # JSON is YAML
            "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "gd-job"},
            "spec": {"runPolicy": {"schedulingPolicy": {"scheduleTimeoutSeconds": 3}},
                     "pytorchReplicaSpecs": {"Master": replica(), "Worker": replica()}}}, indent=1))
        run = self.popen("run", "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                         "--host-network", "--gang", "default", "--pod-group", "coscheduling", spec)
        try:
            def events():
                if not os.path.exists(self.data):
                    return []
                p = self.ty("describe", "job", "gd-job", "-o", "json", check=None)
                return json.loads(p.stdout).get("events", []) if p.returncode == 0 else []
            def podgroup():
                st, pgs = self.call("GET", f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{self.ns}/podgroups")
                return pgs.get("items", []) if st == 200 else []
            self.poll("the gang's PodGroup and pods", lambda: podgroup() and len(self.pods("gd-job")) == 2, timeout=60)
            pg = podgroup()[0]
            self.assertEqual(pg["spec"]["minMember"], 2)
            for p in self.pods("gd-job"):  # left to kube-scheduler, and members of the group
                self.assertEqual(p["spec"].get("schedulerName"), "default-scheduler")
                self.assertEqual(p["metadata"]["labels"].get("scheduling.x-k8s.io/pod-group"), pg["metadata"]["name"])
            # One pod placed by kube-scheduler, the other Unschedulable: the reason reaches the job ...
            try:
                self.poll("the unschedulable replica's reason",
                          lambda: any("Unschedulable" in e["message"] for e in events()), timeout=60)
            except AssertionError as e:
                raise AssertionError(f"{e}: events {events()}")
            # ... and past scheduleTimeoutSeconds the part is torn down and the gang queued again.
            try:
                self.poll("the gang torn down", lambda: any(e["reason"] == "GangTimeout" for e in events()), timeout=60)
            except AssertionError as e:
                raise AssertionError(f"{e}: events {events()}")
            # The zone grows to gd-a: the next attempt fits.
            st, _ = self.call("PATCH", "/api/v1/nodes/gd-a", {"metadata": {"labels": {"zone": "b"}}},
                              content_type="application/merge-patch+json")
            self.assertEqual(st, 200)
            out, err = run.communicate(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
        self.assertEqual(run.returncode, 0, out + err)
        d = self.job("gd-job")
        self.assertEqual(d["phase"], "Succeeded")
        self.assertGreaterEqual(d["restarts"], 1)
        self.assertEqual(d["restarts"], d.get("preemptions", 0), "a gang timeout counted as a failure")
        self.assertEqual(self.call("GET", f"/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{self.ns}/podgroups")[1]["items"], [],
                         "the PodGroups were not released")


class ServerRestart(KubernetesE2E):
    pool = "srv"
    nodes = ("srv-a",)

    def test_a_server_killed_mid_job_reattaches_to_its_pod_and_loses_no_metric(self):
        from server_test import Server
        go = os.path.join(self.dir, "go")
        spec = self.write("long.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: k8s-restart}}
            spec:
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              workingDir: {self.dir}
              command: [/bin/sh, -c, 'for i in 1 2 3 4 5 6; do echo "step=$i loss=0.$i"; if [ $i = 3 ]; then while [ ! -e go ]; do sleep 0.05; done; fi; done']
              resources: {{cpu: 1, memory: 128Mi}}
            """)
        args = ["--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns, "--host-network"]
        server = Server(self, *args)
        env = dict(self.env, TRAINYARD_SERVER=server.url)
        p = subprocess.run([BIN, "--data-dir", self.data, "submit", spec], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

        def steps():
            got = self.tyjson("get", "metrics", "k8s-restart", "--all")["metrics"]
            return sorted(m["step"] for m in got if m["name"] == "loss")
        self.poll("three points stored", lambda: steps() == [1, 2, 3], timeout=60)
        handle = self.job("k8s-restart")["attempts"][0]["handle"]
        server.proc.kill()  # kill -9: no goodbye
        server.proc.wait(timeout=30)
        with open(go, "w"):
            pass  # the job goes on while no server watches it
        Server(self, *args)
        self.poll("the job to succeed", lambda: self.job("k8s-restart")["phase"] == "Succeeded", timeout=120)
        self.assertEqual(steps(), [1, 2, 3, 4, 5, 6])  # each point exactly once
        d = self.job("k8s-restart")
        self.assertEqual(d["restarts"], 0)
        self.assertEqual(d["attempts"][0]["handle"], handle)  # the same pod, re-attached by its labels


class WatchExpiry(KubernetesE2E):
    """A control plane of its own (apiserver and controller-manager), whose API server the test
    kills and starts again mid-job: its watch cache starts afresh, so the backend's pods watch
    from an older resourceVersion gets 410 Gone, as when a watch falls behind the cache."""
    pool = "watch"
    nodes = ("watch-a",)

    @classmethod
    def control_plane(cls):
        d = os.path.join(CLUSTER, f"watch-{os.getpid()}")
        env = dict(os.environ, K8S_COMPONENTS="apiserver controller-manager", K8S_BIN_DIR=os.path.join(CLUSTER, "bin"),
                   K8S_NODE_GRACE="10s")
        up = os.path.join(os.environ.get("TRAINYARD_TEST_K8S", ""), "cluster-up.sh")
        if not os.access(up, os.X_OK):
            raise unittest.SkipTest("SKIPPED: TRAINYARD_TEST_K8S has no cluster-up.sh: this test starts a control plane of its own")
        subprocess.run([up, d], env=env, check=True, capture_output=True, timeout=120)
        cls.own_plane = d
        return d

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if hasattr(cls, "own_plane"):
            subprocess.run([os.path.join(os.environ["TRAINYARD_TEST_K8S"], "cluster-down.sh"), cls.own_plane],
                           capture_output=True, timeout=120)

    def restart_apiserver(self):
        """kill -9 of the API server, then the same command line again."""
        pid_file = os.path.join(self.cluster, "kube-apiserver.pid")
        with open(pid_file) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        os.kill(pid, 9)
        self.poll("the API server gone", lambda: not os.path.exists(f"/proc/{pid}"), timeout=30)
        with open(os.path.join(self.cluster, "log", "kube-apiserver.log"), "ab") as log:
            p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with open(pid_file, "w") as f:
            f.write(str(p.pid))
        def ready():
            self.assertIsNone(p.poll(), "the API server did not start again")
            try:
                return self.request("GET", "/readyz")[0] == 200
            except urllib.error.URLError:
                return False
        self.poll("the API server ready", ready, timeout=60)

    def test_the_pods_watch_survives_410_gone_after_the_api_server_restarts(self):
        started, go = os.path.join(self.dir, "started"), os.path.join(self.dir, "go")
        spec = self.pod_job("k8s-watch", f"touch {started}; while [ ! -e {go} ]; do sleep 0.05; done; echo epoch=1 loss=0.25")
        run = self.popen("run", "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                         "--host-network", spec)
        try:
            self.poll("the replica running", lambda: os.path.exists(started), timeout=60)
            # A write after the watch's last event: the restarted cache starts past it.
            st, _ = self.call("POST", f"/api/v1/namespaces/{self.ns}/configmaps",
                              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump"}})
            self.assertEqual(st, 201)
            self.restart_apiserver()
            with open(go, "w"):
                pass
            out, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
        self.assertEqual(run.returncode, 0, out + err)
        self.assertIn("expired (410 Gone): listing again", err)
        self.assertEqual(self.job("k8s-watch")["phase"], "Succeeded")
        got = self.tyjson("get", "metrics", "k8s-watch", "--all")["metrics"]
        self.assertEqual([m["value"] for m in got if m["name"] == "loss"], [0.25])  # read once, through pods/log


class OperatorMode(KubernetesE2E):
    pool = "op"
    nodes = ("op-a",)

    def kubectl(self, *args, check=True, ns=None, stderr=False):
        p = subprocess.run([os.path.join(CLUSTER, "bin", "kubectl"), "--kubeconfig", self.kubeconfig, "-n", ns or self.ns, *args],
                           capture_output=True, text=True, timeout=60)
        if check:
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout + p.stderr if stderr else p.stdout

    def resource(self, name):
        st, obj = self.call("GET", f"/apis/trainyard.dev/v1/namespaces/{self.ns}/trainjobs/{name}")
        return obj if st == 200 else None

    def test_kubectl_apply_runs_a_trainjob_and_its_status_is_written_back(self):
        from server_test import Server
        self.kubectl("apply", "-f", os.path.join(SOURCE_DIR, "deploy/crds/trainyard.dev_trainjobs.yaml"))
        self.kubectl("wait", "--for", "condition=established", "crd/trainjobs.trainyard.dev", "--timeout=60s")
        Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns, "--host-network")
        job = self.write("tj.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: applied}}
            spec:
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              command: [/bin/sh, -c, 'echo "epoch=1 loss=0.5"']
              resources: {{cpu: 500m, memory: 64Mi}}
            """)
        self.kubectl("apply", "-f", job)
        self.poll("the resource to succeed",
                  lambda: (self.resource("applied") or {}).get("status", {}).get("phase") == "Succeeded", timeout=120)
        table = self.kubectl("get", "trainjobs")
        self.assertRegex(table, r"applied\s+Succeeded\s+0")  # the printer columns: phase, restarts
        self.assertEqual(self.job("applied")["phase"], "Succeeded")  # the same job in Trainyard

        bad = self.write("bad.yaml", """\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {name: broken}
            spec:
              image: debian:12
              command: [/bin/true]
              resources: {memory: 2Gx}
            """)
        self.kubectl("apply", "-f", bad)
        self.poll("the invalid resource's status",
                  lambda: (self.resource("broken") or {}).get("status", {}).get("phase") == "Invalid", timeout=60)
        self.assertIn("spec.resources.memory", self.resource("broken")["status"]["message"])

        long = self.write("long.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: stopped}}
            spec:
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              command: [/bin/sleep, "600"]
              resources: {{cpu: 500m, memory: 64Mi}}
            """)
        self.kubectl("apply", "-f", long)
        self.poll("the long job running",
                  lambda: (self.resource("stopped") or {}).get("status", {}).get("phase") == "Running", timeout=60)
        self.assertIn("trainyard.dev/cancel", self.resource("stopped")["metadata"]["finalizers"])
        # kubectl waits for the finalizer: when it returns, the job has stopped and its pods are gone.
        self.kubectl("delete", "trainjob", "stopped", "--timeout=60s")
        self.assertEqual((self.job("stopped")["phase"], self.job("stopped")["reason"]), ("Failed", "Cancelled"))
        self.assertEqual(self.pods("stopped"), [])

        # An Experiment resource: its trials run as pods; trials and the best trial in its status.
        self.kubectl("apply", "-f", os.path.join(SOURCE_DIR, "deploy/crds/trainyard.dev_experiments.yaml"))
        self.kubectl("wait", "--for", "condition=established", "crd/experiments.trainyard.dev", "--timeout=60s")
        exp = self.write("exp.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: Experiment
            metadata: {{name: swept}}
            spec:
              objective: {{metric: score, goal: maximize}}
              algorithm: {{name: grid}}
              parameters:
                - {{name: x, type: discrete, values: [1, 2, 3]}}
              parallelTrials: 3
              maxTrials: 3
              trialTemplate:
                spec:
                  image: debian:12
                  nodeSelector: {{pool: {self.pool}}}
                  command: [/bin/sh, -c, 'echo "epoch=1 score=${{trialParameters.x}}"']
                  resources: {{cpu: 100m, memory: 32Mi}}
            """)
        self.kubectl("apply", "-f", exp)
        def experiment(name):
            st, obj = self.call("GET", f"/apis/trainyard.dev/v1/namespaces/{self.ns}/experiments/{name}")
            return obj.get("status", {}) if st == 200 else {}
        self.poll("the experiment to succeed", lambda: experiment("swept").get("phase") == "Succeeded", timeout=120)
        status = experiment("swept")
        self.assertEqual(status["trials"], 3)
        self.assertEqual(status["best"], "trial 2 score=3.0")
        self.assertRegex(self.kubectl("get", "experiments.trainyard.dev"), r"swept\s+Succeeded\s+3\s+trial 2 score=3.0")


    def test_namespaces_are_tenants_and_a_deletion_while_the_server_is_down_is_not_missed(self):
        from server_test import Server
        self.kubectl("apply", "-f", os.path.join(SOURCE_DIR, "deploy/crds/trainyard.dev_trainjobs.yaml"))
        self.kubectl("wait", "--for", "condition=established", "crd/trainjobs.trainyard.dev", "--timeout=60s")
        alice, bob = f"alice-{os.getpid()}", f"bob-{os.getpid()}"
        for ns in (alice, bob):
            self.call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": ns, "labels": {"trainyard.dev/user": ns.split("-")[0]}}})
            self.addCleanup(self.call, "DELETE", f"/api/v1/namespaces/{ns}")
        # RBAC: alice may create TrainJobs in her namespace only.
        self.kubectl("apply", "-n", alice, "-f", self.write("alice-rbac.yaml", f"""\
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {{name: trainjob-user, namespace: {alice}}}
            rules: [{{apiGroups: [trainyard.dev], resources: [trainjobs], verbs: [get, list, watch, create, delete]}}]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {{name: alice-trains, namespace: {alice}}}
            subjects: [{{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}}]
            roleRef: {{kind: Role, name: trainjob-user, apiGroup: rbac.authorization.k8s.io}}
            """))
        def as_alice(*args):
            return subprocess.run([os.path.join(CLUSTER, "bin", "kubectl"), "--kubeconfig",
                                   os.path.join(self.cluster, "alice.kubeconfig"), *args],
                                  capture_output=True, text=True, timeout=60)
        refused = as_alice("apply", "-n", bob, "-f", self.pod_job("intruder", "echo no"))
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("forbidden", refused.stderr)
        made = as_alice("apply", "-n", alice, "-f", self.pod_job("mine", "echo epoch=1 loss=0.25"))
        self.assertEqual(made.returncode, 0, made.stderr)

        server = Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                        "--host-network", "--watch-namespaces", f"{alice},{bob}")
        def status(ns, name):
            st, obj = self.call("GET", f"/apis/trainyard.dev/v1/namespaces/{ns}/trainjobs/{name}")
            return obj if st == 200 else None
        self.poll("alice's job to succeed",
                  lambda: ((status(alice, "mine") or {}).get("status") or {}).get("phase") == "Succeeded", timeout=120)
        d = self.job(f"{alice}-mine")  # her namespace's job, owned by her
        self.assertEqual(d.get("user"), "alice")
        self.assertEqual(d["spec"]["labels"]["trainyard.dev/from-namespace"], alice)
        # The same name in bob's namespace is another job.
        self.kubectl("apply", "-f", self.pod_job("mine", "sleep 600"), ns=bob)
        self.poll("bob's job running", lambda: self.phase(f"{bob}-mine") == "Running", timeout=60)
        self.assertEqual(self.job(f"{alice}-mine")["phase"], "Succeeded")

        # The server goes away; bob deletes his resource meanwhile. The finalizer holds it until
        # the server, started again, has stopped its job.
        server.proc.terminate()
        server.proc.wait(timeout=60)
        self.kubectl("delete", "trainjob", "mine", "--wait=false", ns=bob)
        self.assertIsNotNone(status(bob, "mine"), "deleted without its job stopped")
        Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
               "--host-network", "--watch-namespaces", f"{alice},{bob}")
        self.poll("bob's resource gone", lambda: status(bob, "mine") is None, timeout=120)
        self.assertEqual((self.job(f"{bob}-mine")["phase"], self.job(f"{bob}-mine")["reason"]), ("Failed", "Cancelled"))
        self.assertEqual(self.pods(f"{bob}-mine"), [])

    def test_the_crds_check_shapes_and_queue_resources_are_served(self):
        from server_test import Server
        for crd in ("trainjobs", "queues"):
            self.kubectl("apply", "--server-side", "-f", os.path.join(SOURCE_DIR, f"deploy/crds/trainyard.dev_{crd}.yaml"))
            self.kubectl("wait", "--for", "condition=established", f"crd/{crd}.trainyard.dev", "--timeout=60s")
        # The API server checks the shape the parser accepts: a misspelt field and a wrong type are refused at apply.
        typo = self.kubectl("apply", "-f", self.write("typo.yaml", """\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {name: typo}
            spec: {image: debian:12, command: [/bin/true], resorces: {cpu: 1}}
            """), check=False, stderr=True)
        self.assertIn('unknown field "spec.resorces"', typo)
        wrong = self.kubectl("apply", "-f", self.write("wrong.yaml", """\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {name: wrong}
            spec: {image: debian:12, command: [/bin/true], backoffLimit: lots, restartPolicy: Sometimes}
            """), check=False, stderr=True)
        self.assertIn("spec.backoffLimit", wrong)
        self.assertIn("spec.restartPolicy", wrong)
        # The parser's own examples pass unpruned: what the server reads back is what was applied.
        self.kubectl("apply", "-f", os.path.join(SOURCE_DIR, "examples/fmnist/job.yaml"), "--dry-run=server")

        Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns, "--host-network")
        name = f"team-{os.getpid()}"
        self.kubectl("apply", "-f", self.write("queue.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: Queue
            metadata: {{name: {name}}}
            spec: {{quota: {{cpu: 1}}}}
            """))
        def queue():
            st, obj = self.call("GET", f"/apis/trainyard.dev/v1/queues/{name}")
            return obj if st == 200 else None
        self.poll("the queue active", lambda: ((queue() or {}).get("status") or {}).get("phase") == "Active", timeout=60)
        self.kubectl("apply", "-f", self.pod_job("in-queue", 'echo "epoch=1 loss=0.5"', f"queue: {name}", cpu="500m"))
        self.poll("the job in the queue to succeed",
                  lambda: (self.resource("in-queue") or {}).get("status", {}).get("phase") == "Succeeded", timeout=120)
        self.assertEqual(self.job("in-queue")["queue"], name)
        # Over quota for now: a job waits, saying why, in its resource's status too; and runs once the quota frees.
        self.kubectl("apply", "-f", self.pod_job("hog", "sleep 600", f"queue: {name}", cpu="1"))
        self.poll("the hog running", lambda: (self.resource("hog") or {}).get("status", {}).get("phase") == "Running", timeout=60)
        self.kubectl("apply", "-f", self.pod_job("waiter", "echo done", f"queue: {name}", cpu="500m"))
        self.poll("the waiter's reason", lambda: "quota" in (self.resource("waiter") or {}).get("status", {}).get("message", ""),
                  timeout=60)
        self.assertEqual(self.resource("waiter")["status"]["phase"], "Queued")
        self.kubectl("delete", "trainjob", "hog", "--timeout=60s")
        self.poll("the waiter to succeed",
                  lambda: (self.resource("waiter") or {}).get("status", {}).get("phase") == "Succeeded", timeout=120)
        # Deleted: the queue goes from the server too.
        self.kubectl("delete", "queue.trainyard.dev", name, "--timeout=60s")
        queues = self.tyjson("get", "queues")
        self.assertNotIn(name, [q["name"] for q in (queues["items"] if isinstance(queues, dict) else queues)])

    def test_kubeflow_yaml_applied_with_kubectl_runs_without_kubeflow(self):
        from server_test import Server
        compat = os.path.join(SOURCE_DIR, "deploy/kubeflow-compat")
        self.kubectl("apply", "-f", compat)
        for crd in ("pytorchjobs", "tfjobs", "mpijobs", "experiments"):
            self.kubectl("wait", "--for", "condition=established", f"crd/{crd}.kubeflow.org", "--timeout=60s")
        Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns, "--host-network")
        replica = lambda role: f"""\
                {role}:
                  replicas: 1
                  restartPolicy: OnFailure
                  template:
                    spec:
                      nodeSelector: {{pool: {self.pool}}}
                      containers:
                        - name: pytorch
                          image: docker.io/kubeflow/pytorch-example:latest
                          command: [/bin/sh, -c, 'while [ ! -e {go} ]; do sleep 0.05; done; echo "rank $RANK of $WORLD_SIZE, master $MASTER_ADDR"']
                          resources: {{limits: {{cpu: 200m, memory: 64Mi}}}}
"""
        go = os.path.join(self.dir, "kf-go")
        job = self.write("pytorchjob.yaml", "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: kf-ddp}\n"
                         "spec:\n  pytorchReplicaSpecs:\n" + replica("Master") + replica("Worker"))
        self.kubectl("apply", "-f", job)
        # Its pods as Kubeflow's training operator labels them, owned by the PyTorchJob.
        self.poll("the PyTorchJob's two pods", lambda: len(self.kubectl(
            "get", "pods", "-l", "training.kubeflow.org/job-name=kf-ddp", "-o", "name").split()) == 2, timeout=60)
        st, owner = self.call("GET", f"/apis/kubeflow.org/v1/namespaces/{self.ns}/pytorchjobs/kf-ddp")
        by_type = {p["metadata"]["labels"]["training.kubeflow.org/replica-type"]: p["metadata"] for p in self.pods("kf-ddp")}
        self.assertEqual(sorted(by_type), ["master", "worker"])
        self.assertEqual(by_type["master"]["labels"]["training.kubeflow.org/job-role"], "master")
        self.assertNotIn("training.kubeflow.org/job-role", by_type["worker"]["labels"])
        self.assertEqual(by_type["master"]["labels"]["training.kubeflow.org/operator-name"], "pytorchjob-controller")
        for meta in by_type.values():
            self.assertEqual([(o["kind"], o["name"], o["uid"]) for o in meta["ownerReferences"]],
                             [("PyTorchJob", "kf-ddp", owner["metadata"]["uid"])])
        with open(go, "w"):
            pass

        def conditions():
            st, obj = self.call("GET", f"/apis/kubeflow.org/v1/namespaces/{self.ns}/pytorchjobs/kf-ddp")
            return [c["type"] for c in obj.get("status", {}).get("conditions", [])] if st == 200 else []
        self.poll("the PyTorchJob to succeed", lambda: "Succeeded" in conditions(), timeout=120)
        self.assertEqual(conditions()[0], "Created")  # as Kubeflow's training operator writes them
        self.assertIn("Running", conditions())
        self.assertEqual(self.job("kf-ddp")["phase"], "Succeeded")
        self.assertRegex(self.kubectl("get", "pytorchjobs"), r"kf-ddp\s+Succeeded")


    def test_a_katib_experiment_applied_with_kubectl_runs_four_trials_at_once(self):
        from server_test import Server
        self.kubectl("apply", "-f", os.path.join(SOURCE_DIR, "deploy/kubeflow-compat"))
        self.kubectl("wait", "--for", "condition=established", "crd/experiments.kubeflow.org", "--timeout=60s")
        Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns, "--host-network")
        # Each trial checks in, then waits for the test's go: four check-ins
        # before any trial ends show four trials running at once.
        gate, go = os.path.join(self.dir, "katib-gate"), os.path.join(self.dir, "katib-go")
        os.makedirs(gate)
        trial = ("import os, sys, tempfile, time\n"
                 "tempfile.mkstemp(dir=sys.argv[1])\n"
                 "for _ in range(3000):\n"
                 "    if os.path.exists(sys.argv[2]): break\n"
                 "    time.sleep(0.05)\n"
                 "print('score=%s' % sys.argv[3], flush=True)\n")
        experiment = {
            "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "katib-par"},
            "spec": {
                "objective": {"type": "maximize", "objectiveMetricName": "score"},
                "algorithm": {"algorithmName": "random"},
                "parallelTrialCount": 4, "maxTrialCount": 4, "maxFailedTrialCount": 1,
                "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
                "trialTemplate": {
                    "primaryContainerName": "training-container",
                    "trialParameters": [{"name": "x", "reference": "x"}],
                    "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                        "nodeSelector": {"pool": self.pool},
                        "restartPolicy": "Never",
                        "containers": [{"name": "training-container", "image": "debian:12",
                                        "command": ["python3", "-c", trial, gate, go, "${trialParameters.x}"],
                                        "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}}}]}}}}}}}
        self.kubectl("apply", "-f", self.write("katib.json", json.dumps(experiment)))
        self.poll("four trials checked in at once", lambda: len(os.listdir(gate)) == 4, timeout=120)
        st, owner = self.call("GET", f"/apis/kubeflow.org/v1beta1/namespaces/{self.ns}/experiments/katib-par")
        st, pods = self.call("GET", f"/api/v1/namespaces/{self.ns}/pods?labelSelector=trainyard.dev%2Fmanaged-by%3Dtrainyard")
        trial_pods = [p for p in pods["items"] if p["metadata"]["name"].startswith("katib-par-")]
        self.assertEqual(len(trial_pods), 4, [p["metadata"]["name"] for p in trial_pods])
        for p in trial_pods:  # the experiment owns its trials' pods
            self.assertEqual([o["uid"] for o in p["metadata"]["ownerReferences"]], [owner["metadata"]["uid"]])
        with open(go, "w"):
            pass

        def status():
            st, obj = self.call("GET", f"/apis/kubeflow.org/v1beta1/namespaces/{self.ns}/experiments/katib-par")
            return obj.get("status", {}) if st == 200 else {}
        self.poll("the experiment to succeed", lambda: status().get("phase") == "Succeeded", timeout=120)
        st = status()
        self.assertEqual(st["trialsSucceeded"], 4, st)
        best = st["currentOptimalTrial"]
        self.assertTrue(best["bestTrialName"].startswith("katib-par-"), best)
        self.assertEqual([a["name"] for a in best["parameterAssignments"]], ["x"])
        trials = self.tyjson("get", "trials", "katib-par")
        scores = [float(t["objective"]["score"]) for t in (trials["items"] if isinstance(trials, dict) else trials)]
        self.assertEqual(len(scores), 4)
        self.assertEqual(float(best["observation"]["metrics"][0]["latest"]), max(scores))

    def test_auth_kubernetes_takes_the_clusters_tokens_and_rbac(self):
        from server_test import Server
        server = Server(self, "--backend", "kubernetes", "--kubeconfig", self.kubeconfig, "--namespace", self.ns,
                        "--host-network", "--auth", "kubernetes")

        def call(method, path, token=None, body=None):
            req = urllib.request.Request(server.url + path, method=method,
                                         data=None if body is None else body.encode())
            if token:
                req.add_header("Authorization", "Bearer " + token)
            if body is not None:
                req.add_header("Content-Type", "application/yaml")
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")

        # The cluster's admin (system:masters) is the server's administrator.
        self.assertEqual(call("GET", "/api/v1/jobs", "admin-token")[0], 200)
        self.assertEqual(call("POST", "/api/v1/nodes/no-such-node/drain", "admin-token")[0], 404)  # allowed, and no such node
        # alice may use it once RBAC lets her create TrainJobs in the namespace; she is not an administrator.
        self.kubectl("apply", "-f", self.write("rbac.yaml", f"""\
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {{name: trainjob-user, namespace: {self.ns}}}
            rules: [{{apiGroups: [trainyard.dev], resources: [trainjobs], verbs: [create, get, list]}}]
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {{name: alice-trains, namespace: {self.ns}}}
            subjects: [{{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}}]
            roleRef: {{kind: Role, name: trainjob-user, apiGroup: rbac.authorization.k8s.io}}
            """))
        st, made = call("POST", "/api/v1/jobs", "alice-token", f"""apiVersion: trainyard.dev/v1
kind: TrainJob
metadata: {{name: alices}}
spec:
  image: debian:12
  nodeSelector: {{pool: {self.pool}}}
  command: [/bin/true]
""")
        self.assertEqual(st, 201, made)
        self.assertEqual(call("GET", "/api/v1/jobs/alices", "alice-token")[1].get("user"), "alice")
        self.assertEqual(call("POST", "/api/v1/nodes/no-such-node/drain", "alice-token")[0], 403)
        # bob has no Role here: refused, as is a token the cluster does not know, and no token at all.
        self.assertEqual(call("GET", "/api/v1/jobs", "bob-token")[0], 401)
        self.assertEqual(call("GET", "/api/v1/jobs", "not-a-token")[0], 401)
        self.assertEqual(call("GET", "/api/v1/jobs")[0], 401)


    def test_deploy_rbac_is_enough_for_the_operator_and_no_wider(self):
        """The server runs with deploy/'s service account token (TokenRequest), not the admin's."""
        from server_test import Server
        deploy = os.path.join(SOURCE_DIR, "deploy")
        for f in ("namespace.yaml", "crds/trainyard.dev_trainjobs.yaml", "crds/trainyard.dev_experiments.yaml",
                  "crds/trainyard.dev_queues.yaml", "rbac.yaml"):
            self.kubectl("apply", "--server-side", "-f", os.path.join(deploy, f), ns="trainyard")
        self.kubectl("wait", "--for", "condition=established", "crd/trainjobs.trainyard.dev", "--timeout=60s")
        # The whole kustomization (the Deployment, its volume claim and Service too) as the API
        # server would take it; not run, since no image is published (docs/kubernetes.md).
        out = self.kubectl("apply", "-k", deploy, "--server-side", "--dry-run=server", ns="trainyard")
        for obj in ("deployment.apps/trainyard", "service/trainyard", "persistentvolumeclaim/trainyard-data",
                    "serviceaccount/trainyard", "customresourcedefinition.apiextensions.k8s.io/queues.trainyard.dev"):
            self.assertIn(obj, out)
        token = self.kubectl("create", "token", "trainyard", ns="trainyard").strip()
        kubeconfig = self.write("sa.kubeconfig", f"""\
            apiVersion: v1
            kind: Config
            current-context: sa
            clusters: [{{name: c, cluster: {{server: "{self.api}", insecure-skip-tls-verify: true}}}}]
            users: [{{name: sa, user: {{token: "{token}"}}}}]
            contexts: [{{name: sa, context: {{cluster: c, user: sa, namespace: trainyard}}}}]
            """)
        sa = "system:serviceaccount:trainyard:trainyard"
        for verb, what in (("delete", "nodes"), ("get", "secrets"), ("create", "pods -n default"), ("patch", "nodes")):
            self.assertEqual(self.kubectl("auth", "can-i", verb, *what.split(), "--as", sa, check=False).strip(), "no",
                             f"{sa} may {verb} {what}")
        # A cluster used before (before the server starts and sees them): no resource or pod of that name left.
        # (its finalizer dropped first: the server that set it is gone)
        self.kubectl("patch", "trainjob", "by-sa", "--type=merge", "-p", '{"metadata": {"finalizers": null}}',
                     ns="trainyard", check=False)
        self.kubectl("delete", "trainjob", "by-sa", "--ignore-not-found", ns="trainyard")
        self.kubectl("delete", "pods,services", "-l", "trainyard.dev/job-name=by-sa", "--grace-period=0", "--force",
                     "--ignore-not-found", ns="trainyard", check=False)
        Server(self, "--backend", "kubernetes", "--kubeconfig", kubeconfig, "--host-network")
        job = self.write("sa-job.yaml", f"""\
            apiVersion: trainyard.dev/v1
            kind: TrainJob
            metadata: {{name: by-sa, namespace: trainyard}}
            spec:
              image: debian:12
              nodeSelector: {{pool: {self.pool}}}
              command: [/bin/sh, -c, 'echo "epoch=1 loss=0.25"']
              resources: {{cpu: 100m, memory: 32Mi}}
            """)
        self.kubectl("apply", "-f", job, ns="trainyard")

        def phase():
            st, obj = self.call("GET", "/apis/trainyard.dev/v1/namespaces/trainyard/trainjobs/by-sa")
            return obj.get("status", {}).get("phase") if st == 200 else None
        self.poll("the service account's operator to run it",
                  lambda: phase() == "Succeeded" and self.phase("by-sa") == "Succeeded", timeout=120)
        # pods/log allowed: the log is kept in the data dir when the job is released (just after it ends).
        self.poll("the job's log kept", lambda: "loss=0.25" in self.ty("logs", "by-sa").stdout, timeout=60)


if __name__ == "__main__":
    unittest.main()
