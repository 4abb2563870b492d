#!/usr/bin/python3
"""A kubelet stand-in for tests: one process per node, on a real control plane.

    kubelet_standin.py --cluster DIR --node NAME --state DIR [--cpu 4] [--memory 8Gi] [--gpus 0] [--labels k=v,...]

It does for its node what a kubelet does, with local processes instead of
containers:
- registers the Node (capacity, allocatable, labels, addresses, the kubelet
  port) and keeps it Ready: its Lease in kube-node-lease renewed every 2 s;
- runs each pod bound to the node (spec.nodeName): its main container's
  (sidecars are not started) command and args with the pod's env and workingDir, in its own mount
  namespace whose /etc/hosts resolves the namespace's Service names to
  127.0.0.1 (there is no cluster DNS; pods use the host network);
- patches the pod's status as a kubelet would: Running with a running
  container state, then Succeeded/Failed with the exit code and reason;
- honours deletion: SIGTERM, SIGKILL after the grace period, then removes the
  pod object (gracePeriodSeconds 0, as the kubelet's final delete);
- serves /containerLogs/{ns}/{pod}/{container} over HTTPS on its port, so
  the real pods/log API works (limitBytes, tailLines, follow).
Stopping it (SIGTERM) kills its pods' processes and stops renewing the
Lease: the control plane sees a node failure (NotReady, then eviction).
"""
import argparse
import datetime
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Api:
    def __init__(self, server, token):
        self.server = server
        self.token = token
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method, path, body=None, content_type="application/json"):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b"{}")
            except ValueError:
                return e.code, {}


def parse_memory(text):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
    for u, m in units.items():
        if text.endswith(u):
            return int(float(text[:-2]) * m)
    return int(text)


class Node:
    def __init__(self, args):
        env = {}
        with open(os.path.join(args.cluster, "env")) as f:
            for line in f:
                if line.startswith("export ") and "=" in line:
                    k, v = line[7:].strip().split("=", 1)
                    env[k] = v.strip('"')
        self.api = Api(env["KUBE_API"], env["KUBE_TOKEN"])
        self.name = args.node
        self.state = os.path.abspath(args.state)
        os.makedirs(self.state, exist_ok=True)
        self.args = args
        self.pods = {}  # uid -> dict(proc, log, pod, deleting_since)
        self.lock = threading.Lock()
        self.stopping = False
        self.port = self.free_port()

    @staticmethod
    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    # --- the node object and its lease ---
    def register(self):
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "trainyard.dev/standin": "true"}
        for kv in filter(None, self.args.labels.split(",")):
            k, v = kv.split("=", 1)
            labels[k] = v
        st, _ = self.api.call("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                         "metadata": {"name": self.name, "labels": labels}})
        if st == 409:
            self.api.call("PATCH", f"/api/v1/nodes/{self.name}", {"metadata": {"labels": labels}, "spec": {"unschedulable": False}},
                          "application/merge-patch+json")
        res = {"cpu": str(self.args.cpu), "memory": self.args.memory, "pods": "110"}
        if self.args.gpus:
            res["nvidia.com/gpu"] = str(self.args.gpus)
        self.status = {"status": {
            "capacity": res, "allocatable": res,
            # The API server proxies logs to the Hostname address first: localhost, here.
            "addresses": [{"type": "Hostname", "address": "localhost"}, {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {"kubeletVersion": "v1.28.7-standin", "containerRuntimeVersion": "process://standin",
                         "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "",
                         "bootID": "", "kernelVersion": os.uname().release, "osImage": "Debian", "kubeProxyVersion": ""},
        }}
        self.heartbeat()

    def heartbeat(self):
        t = now_rfc3339()
        status = json.loads(json.dumps(self.status))
        status["status"]["conditions"] = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "kubelet stand-in is posting ready status",
                                           "lastHeartbeatTime": t, "lastTransitionTime": t}]
        self.api.call("PATCH", f"/api/v1/nodes/{self.name}/status", status, "application/strategic-merge-patch+json")
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": self.name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": now_micro()}}
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        st, _ = self.api.call("PUT", f"{path}/{self.name}", lease)
        if st == 404:
            self.api.call("POST", path, lease)

    def heartbeats(self):
        while not self.stopping:
            try:
                self.heartbeat()
            except Exception as e:  # the API server restarting: try again
                print(f"standin {self.name}: heartbeat: {e}", file=sys.stderr)
            time.sleep(2)  # a kubelet's lease renewal period, not synchronisation

    # --- pods ---
    def log_path(self, ns, pod, container):
        return os.path.join(self.state, f"{ns}_{pod}_{container}.log")

    def hosts_file(self, ns):
        st, svcs = self.api.call("GET", f"/api/v1/namespaces/{ns}/services")
        names = [s["metadata"]["name"] for s in svcs.get("items", [])] if st == 200 else []
        lines = ["127.0.0.1 localhost " + self.name]
        for n in names:
            lines.append(f"127.0.0.1 {n} {n}.{ns}.svc {n}.{ns}.svc.cluster.local")
        path = os.path.join(self.state, f"hosts-{ns}-{os.getpid()}-{time.monotonic_ns()}")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def patch_status(self, pod, status):
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.api.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": status},
                      "application/merge-patch+json")

    def start(self, pod):
        meta, spec = pod["metadata"], pod["spec"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        # The main container (Trainyard's annotation names it); sidecars are
        # not started by this stand-in.
        main = meta.get("annotations", {}).get("trainyard.dev/container")
        c = next((x for x in spec["containers"] if x.get("name") == main), spec["containers"][0])
        argv = (c.get("command") or []) + (c.get("args") or [])
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "HOSTNAME": name}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[e["name"]] = name
        # $(VAR) references, as the kubelet expands them
        def expand(s):
            for k, v in env.items():
                s = s.replace(f"$({k})", v)
            return s
        argv = [expand(a) for a in argv]
        wd = c.get("workingDir") or "/"
        log = self.log_path(ns, name, c["name"])
        hosts = self.hosts_file(ns)
        started = now_rfc3339()
        # A program that is not there fails to start, as containerd reports it.
        prog = argv[0] if argv else ""
        if not prog or (os.path.isabs(prog) and not os.access(prog, os.X_OK)) or (
                not os.path.isabs(prog) and shutil.which(prog, path=env["PATH"]) is None):
            self.patch_status(pod, {"phase": "Failed", "containerStatuses": [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 128, "reason": "StartError",
                                          "message": f'exec: "{prog}": stat {prog}: no such file or directory',
                                          "startedAt": now_rfc3339(), "finishedAt": now_rfc3339()}}}]})
            self.pods[uid] = {"proc": None, "pod": pod, "container": c["name"], "started": now_rfc3339(),
                              "deleting": None, "image": c.get("image", "")}
            return
        wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$0" /etc/hosts && cd "$1" && shift && exec "$@"', hosts, wd] + argv
        out = open(log, "ab")
        try:
            proc = subprocess.Popen(wrapper, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        except OSError as e:
            self.patch_status(pod, {"phase": "Failed", "containerStatuses": [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 128, "reason": "StartError", "message": str(e)}}}]})
            return
        finally:
            out.close()
        self.pods[uid] = {"proc": proc, "pod": pod, "container": c["name"], "started": started, "deleting": None,
                          "image": c.get("image", "")}
        self.patch_status(pod, {"phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                                "podIPs": [{"ip": "127.0.0.1"}], "startTime": started,
                                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": started},
                                               {"type": "ContainersReady", "status": "True", "lastTransitionTime": started},
                                               {"type": "PodScheduled", "status": "True", "lastTransitionTime": started}],
                                "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "",
                                                       "ready": True, "started": True, "restartCount": 0,
                                                       "state": {"running": {"startedAt": started}}}]})

    def finish(self, uid, entry):
        code = entry["proc"].returncode
        pod = entry["pod"]
        reason = "Completed" if code == 0 else "Error"
        term = {"exitCode": code if code >= 0 else 128 - code, "reason": reason,
                "startedAt": entry["started"], "finishedAt": now_rfc3339()}
        if code < 0:
            term["signal"] = -code
        self.patch_status(pod, {"phase": "Succeeded" if code == 0 else "Failed",
                                "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
                                "containerStatuses": [{"name": entry["container"], "image": entry["image"], "imageID": "",
                                                       "ready": False, "started": False, "restartCount": 0,
                                                       "state": {"terminated": term}}]})
        if entry["deleting"] is not None:
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            self.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}",
                          {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                           "preconditions": {"uid": uid}})

    def sync(self):
        st, pods = self.api.call("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.name}")
        if st != 200:
            return
        seen = set()
        for pod in pods.get("items", []):
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            phase = pod.get("status", {}).get("phase", "Pending")
            deleting = pod["metadata"].get("deletionTimestamp")
            entry = self.pods.get(uid)
            if entry is None:
                if phase in ("Succeeded", "Failed"):
                    if deleting:  # ended before: just let it go
                        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
                        self.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}",
                                      {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
                    continue
                if deleting:
                    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
                    self.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}",
                                  {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
                    continue
                self.start(pod)
                continue
            entry["pod"] = pod
            if entry["proc"] is None:
                continue
            if deleting and entry["deleting"] is None and entry["proc"].poll() is None:
                grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
                entry["deleting"] = time.monotonic() + grace
                try:
                    os.killpg(entry["proc"].pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            elif deleting and entry["deleting"] is None:
                entry["deleting"] = time.monotonic()
        for uid, entry in list(self.pods.items()):
            proc = entry["proc"]
            if proc is None:  # never started: its status is final; removed when deleted
                if entry["pod"]["metadata"].get("deletionTimestamp") or uid not in seen:
                    if uid in seen:
                        ns, name = entry["pod"]["metadata"]["namespace"], entry["pod"]["metadata"]["name"]
                        self.api.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}",
                                      {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})
                    del self.pods[uid]
                continue
            if proc.poll() is None:
                if entry["deleting"] is not None and time.monotonic() >= entry["deleting"]:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if uid not in seen:  # deleted with grace 0 by someone else
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                continue
            if uid in seen:
                self.finish(uid, entry)
            del self.pods[uid]

    def loop(self):
        while not self.stopping:
            try:
                self.sync()
            except Exception as e:
                print(f"standin {self.name}: sync: {e}", file=sys.stderr)
            time.sleep(0.2)  # a kubelet's sync period (much shorter), not synchronisation

    def stop(self):
        self.stopping = True
        for entry in self.pods.values():
            if entry["proc"] is None:
                continue
            try:
                os.killpg(entry["proc"].pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # --- logs ---
    def serve_logs(self):
        node = self
        cert, key = os.path.join(self.state, "kubelet.crt"), os.path.join(self.state, "kubelet.key")
        if not os.path.exists(cert):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-keyout", key, "-out", cert], check=True, capture_output=True)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                parts = u.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404)
                    return
                q = urllib.parse.parse_qs(u.query)
                path = node.log_path(parts[1], parts[2], parts[3])
                if q.get("follow", ["false"])[0] == "true":
                    self.follow(path, parts[1], parts[2])
                    return
                try:
                    data = open(path, "rb").read()
                except OSError:
                    data = b""
                if "tailLines" in q:
                    n = int(q["tailLines"][0])
                    lines = data.splitlines(keepends=True)
                    data = b"".join(lines[-n:]) if n > 0 else b""
                if "limitBytes" in q:
                    data = data[: int(q["limitBytes"][0])]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def follow(self, path, ns, pod):
                """As the kubelet follows: the log as it grows (chunked), ending once the
                container has ended and all it wrote is sent."""
                def running():
                    with node.lock:
                        entry = next((e for e in node.pods.values() if e["pod"]["metadata"]["name"] == pod
                                      and e["pod"]["metadata"]["namespace"] == ns), None)
                    return entry is not None and entry["proc"] is not None and entry["proc"].poll() is None
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                offset = 0
                try:
                    while True:
                        alive = running()  # before reading: what it wrote before it ended is read below
                        try:
                            with open(path, "rb") as f:
                                f.seek(offset)
                                data = f.read(1 << 20)
                        except OSError:
                            data = b""
                        if data:
                            offset += len(data)
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                            self.wfile.flush()
                            continue
                        if not alive:
                            break
                        time.sleep(0.05)  # the kubelet's file watch, polled
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the reader went away

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cluster", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--cpu", default="4")
    p.add_argument("--memory", default="8Gi")
    p.add_argument("--gpus", type=int, default=0)
    p.add_argument("--labels", default="")
    args = p.parse_args()
    node = Node(args)
    node.serve_logs()
    node.register()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    threading.Thread(target=node.heartbeats, daemon=True).start()
    threading.Thread(target=node.loop, daemon=True).start()
    with open(os.path.join(node.state, "ready"), "w") as f:
        f.write(str(node.port))
    print(f"standin {node.name}: ready, kubelet port {node.port}", flush=True)
    done.wait()
    node.stop()


if __name__ == "__main__":
    main()
