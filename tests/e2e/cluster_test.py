"""End-to-end: the cluster core through `trainyard server --nodes N` and the CLI: gangs across
virtual nodes, a node going down, queues with quotas, preemption, and bad queue specs."""
import json
import os
import unittest

from common import job_yaml
from server_test import ServerE2E


def gang_yaml(name, replicas, script, *spec_lines):
    lines = ["apiVersion: trainyard.dev/v1", "kind: TrainJob", "metadata:", f"  name: {name}", "spec:",
             "  framework: pytorch", f"  replicas: {replicas}", "  command: [/bin/sh, -c]", f"  args: [{json.dumps(script)}]"]
    return "\n".join(lines + ["  " + l for l in spec_lines]) + "\n"


class VirtualNodes(ServerE2E):
    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()

    def setUp(self):
        super().setUp()
        self.env["TRAINYARD_NODE_CPU"] = "6"  # 3 virtual nodes of 2 cores

    def events(self, name):
        return self.call("GET", f"/api/v1/jobs/{name}/events")[1]["items"]

    def test_node_down_restarts_the_gang_on_other_nodes(self):
        self.start("--nodes", "3")
        nodes = self.call("GET", "/api/v1/nodes")[1]["items"]
        self.assertEqual([n["name"] for n in nodes], ["node-1", "node-2", "node-3"])
        self.assertEqual({n["allocatable"]["cpu"] for n in nodes}, {2})
        script = 'if [ "$TRAINYARD_ATTEMPT" = 0 ]; then exec sleep 600; fi; echo "rank $RANK done on attempt $TRAINYARD_ATTEMPT"'
        self.write("gang.yaml", gang_yaml("gang", 2, script, "resources: {cpu: 1}", "restartPolicy: OnFailure", "backoffLimit: 2"))
        self.ty("submit", os.path.join(self.dir, "gang.yaml"), check=0)
        self.wait_phase("gang", ["Running"])
        st, job = self.call("GET", "/api/v1/jobs/gang")
        placed = {p["node"] for p in job["placements"]}
        self.assertEqual(len(placed), 1, job["placements"])  # pack: both ranks on one node
        lost = placed.pop()
        out = self.ty("node", "down", lost, "--reason", "power supply", check=0)
        self.assertIn(f"node {lost} Down", out.stdout)
        self.wait_phase("gang", ["Succeeded"], timeout=120)
        d = self.job("gang")
        self.assertEqual(d["restarts"], 1)
        first = [a for a in d["attempts"] if a["attempt"] == 0]
        self.assertIn("NodeLost", {a["reason"] for a in first}, first)
        scheduled = [e["message"] for e in self.events("gang") if e["reason"] == "Scheduled"]
        self.assertEqual(len(scheduled), 2, scheduled)
        self.assertNotIn(lost, scheduled[1], "the restarted gang went back to the node that is down")
        nodes = {n["name"]: n for n in self.call("GET", "/api/v1/nodes")[1]["items"]}
        self.assertEqual(nodes[lost]["state"], "Down")
        self.assertEqual(nodes[lost]["stateReason"], "power supply")
        # Back up: placeable again.
        self.ty("node", "up", lost, check=0)
        self.assertEqual({n["name"]: n["state"] for n in self.call("GET", "/api/v1/nodes")[1]["items"]}[lost], "Ready")

    def test_a_gang_too_wide_for_any_node_set_is_refused_at_submit(self):
        self.start("--nodes", "3")
        self.write("wide.yaml", gang_yaml("wide", 8, "true", "resources: {cpu: 1}"))
        p = self.ty("submit", os.path.join(self.dir, "wide.yaml"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("its gang has 8 replicas", p.stderr)
        self.assertIn("spec.resources", p.stderr)

    def test_queues_quotas_and_why_pending(self):
        self.start("--nodes", "3")
        self.write("cohort.yaml", """
            apiVersion: trainyard.dev/v1
            kind: Cohort
            metadata: {name: research}
        """)
        self.write("team-a.yaml", """
            apiVersion: trainyard.dev/v1
            kind: Queue
            metadata: {name: team-a}
            spec:
              cohort: research
              quota: {cpu: 1}
              borrowingLimit: {cpu: 0}
        """)
        self.write("team-b.yaml", """
            apiVersion: trainyard.dev/v1
            kind: Queue
            metadata: {name: team-b}
            spec:
              cohort: research
              quota: {cpu: 5}
        """)
        # A queue naming a cohort that is not there yet: refused with the place.
        p = self.ty("apply", os.path.join(self.dir, "team-a.yaml"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("team-a.yaml:6:11: spec.cohort: cohort research does not exist", p.stderr)
        for f in ("cohort.yaml", "team-a.yaml", "team-b.yaml"):
            self.assertIn("applied", self.ty("apply", os.path.join(self.dir, f), check=0).stdout)
        hold = 'while [ ! -e "%s" ]; do sleep 0.05; done' % os.path.join(self.dir, "release")
        self.write("a1.yaml", job_yaml("a1", hold, "queue: team-a", "resources: {cpu: 1}"))
        self.write("a2.yaml", job_yaml("a2", "true", "queue: team-a", "resources: {cpu: 1}"))
        self.write("b1.yaml", job_yaml("b1", "true", "queue: team-b", "resources: {cpu: 1}"))
        self.write("nowhere.yaml", job_yaml("nowhere", "true", "queue: team-z"))
        self.ty("submit", os.path.join(self.dir, "a1.yaml"), check=0)
        self.wait_phase("a1", ["Running"])
        self.ty("submit", os.path.join(self.dir, "a2.yaml"), check=0)
        self.ty("submit", os.path.join(self.dir, "b1.yaml"), check=0)
        self.wait_phase("b1", ["Succeeded"])  # the other queue is not held back
        self.wait_until("a2's reason", lambda: "over quota" in (self.call("GET", "/api/v1/jobs/a2")[1].get("message") or ""))
        st, a2 = self.call("GET", "/api/v1/jobs/a2")
        self.assertEqual(a2["phase"], "Queued")
        self.assertIn("queue team-a over quota for cpu (1/1, needs 1 more) and its borrowing limit is 0", a2["message"])
        self.assertIn("over quota", self.ty("describe", "job", "a2", check=0).stdout)
        queues = {q["name"]: q for q in self.call("GET", "/api/v1/queues")[1]["items"]}
        self.assertEqual(queues["team-a"]["usage"]["cpu"], 1)
        self.assertEqual(queues["team-a"]["quota"]["cpu"], 1)
        self.assertEqual(queues["team-a"]["pending"], 1)
        st, prom = self.call("GET", "/metrics", raw=True)
        self.assertIn('trainyard_queue_pending_jobs{queue="team-a"} 1', prom)
        self.assertIn('trainyard_queue_quota{queue="team-a",resource="cpu"} 1', prom)
        table = self.ty("get", "queues", check=0).stdout
        self.assertIn("team-a", table)
        self.assertIn("1/1", table)
        self.assertError(self.call("POST", "/api/v1/jobs", {"yaml": self.read("nowhere.yaml")}),
                         400, "UnknownQueue", "spec.queue")
        open(os.path.join(self.dir, "release"), "w").close()
        self.wait_phase("a2", ["Succeeded"])

    def test_bad_queue_specs(self):
        self.start()
        self.write("c1.yaml", "apiVersion: trainyard.dev/v1\nkind: Cohort\nmetadata: {name: c1}\nspec: {parent: c2}\n")
        self.write("c2.yaml", "apiVersion: trainyard.dev/v1\nkind: Cohort\nmetadata: {name: c2}\n")
        self.write("c2-cycle.yaml", "apiVersion: trainyard.dev/v1\nkind: Cohort\nmetadata: {name: c2}\nspec: {parent: c1}\n")
        self.write("neg.yaml", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  quota: {cpu: -2}\n")
        self.write("tpu.yaml", "apiVersion: trainyard.dev/v1\nkind: Queue\nmetadata: {name: q}\nspec:\n  quota: {tpu: 2}\n")
        self.ty("apply", os.path.join(self.dir, "c2.yaml"), check=0)
        self.ty("apply", os.path.join(self.dir, "c1.yaml"), check=0)
        p = self.ty("apply", os.path.join(self.dir, "c2-cycle.yaml"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("c2-cycle.yaml:4:16: spec.parent: cohorts form a cycle: c2 -> c1 -> c2", p.stderr)
        p = self.ty("apply", os.path.join(self.dir, "neg.yaml"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("neg.yaml:5:16: spec.quota.cpu", p.stderr)
        p = self.ty("apply", os.path.join(self.dir, "tpu.yaml"))
        self.assertEqual(p.returncode, 2)
        self.assertIn('spec.quota.tpu: unknown resource "tpu"', p.stderr)
        self.write("share.yaml", job_yaml("share", "true", "resources: {gpu: 0.3}"))
        self.assertError(self.call("POST", "/api/v1/jobs", {"yaml": self.read("share.yaml")}),
                         400, "Unschedulable", "spec.roles.worker.resources.gpu")


class Examples(ServerE2E):
    def test_the_queue_examples_apply_and_a_job_uses_them(self):
        root = os.path.join(os.environ["TRAINYARD_SOURCE_DIR"], "examples", "queues")
        for f in ("cohort.yaml", "team-a.yaml"):
            self.assertIn("valid", self.ty("validate", os.path.join(root, f), check=0).stdout)
            self.ty("apply", os.path.join(root, f), check=0)
        queues = {q["name"]: q for q in json.loads(self.ty("get", "queues", "-o", "json", check=0).stdout)}
        self.assertEqual(queues["team-a"]["cohort"], "research")
        self.assertEqual(queues["team-a"]["borrowingLimit"], {"cpu": 1})
        self.write("q.yaml", job_yaml("in-queue", "echo ok", "queue: team-a", "resources: {cpu: 1}"))
        self.ty("run", os.path.join(self.dir, "q.yaml"), check=0)


class Preemption(ServerE2E):
    def test_a_higher_priority_job_preempts_and_the_victim_runs_again(self):
        self.env["TRAINYARD_NODE_CPU"] = "2"
        self.start()
        self.write("low.yaml", job_yaml("low", 'if [ "$TRAINYARD_ATTEMPT" = 0 ]; then exec sleep 600; fi; echo resumed',
                                        "resources: {cpu: 2}", "backoffLimit: 0"))
        self.write("high.yaml", job_yaml("high", "echo urgent", "resources: {cpu: 2}", "priority: 100"))
        self.ty("submit", os.path.join(self.dir, "low.yaml"), check=0)
        self.wait_phase("low", ["Running"])
        self.ty("submit", os.path.join(self.dir, "high.yaml"), check=0)
        self.wait_phase("high", ["Succeeded"])
        self.wait_phase("low", ["Succeeded"])
        low = self.job("low")
        self.assertEqual(low["restarts"], 1)
        self.assertEqual(low["preemptions"], 1)  # not counted against backoffLimit 0
        reasons = [e["reason"] for e in self.call("GET", "/api/v1/jobs/low/events")[1]["items"]]
        self.assertIn("Preempted", reasons)
        self.assertIn("resumed", self.ty("logs", "low", check=0).stdout)


if __name__ == "__main__":
    unittest.main()
