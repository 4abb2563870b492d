"""End-to-end: notebooks on `trainyard server` with --auth, through the CLI,
the REST API and the proxy (HTTP and the kernel's WebSocket), with Debian's
Jupyter. The browser's view of the same is tests/browser/notebooks.test.mjs."""
import asyncio
import json
import os
import shutil
import unittest

from common import SOURCE_DIR
from server_test import ServerE2E
from jupyter_kernel import Kernel, rest

NOTEBOOK = """\
apiVersion: trainyard.dev/v1
kind: Notebook
metadata: {name: explore}
spec:
  resources: {cpu: 500m, memory: 2Gi}
  idleTimeout: 0
"""


@unittest.skipUnless(shutil.which("jupyter-notebook"), "LOUD SKIP: jupyter-notebook is not installed (apt-get install jupyter-notebook)")
class Notebooks(ServerE2E):
    def notebook(self, token=None):
        st, body = self.call("GET", "/api/v1/notebooks", token=token)
        self.assertEqual(st, 200, body)
        return body["items"]

    def wait_state(self, state, timeout=120):
        self.wait_until(f"notebook in {state}", lambda: [n["state"] for n in self.notebook()] == [state], timeout=timeout)

    def run_cells(self, base, headers, cells):
        async def go():
            st, k = rest(base, "api/kernels", "POST", {"name": "python3"}, headers)
            self.assertEqual(st, 201, k)
            kern = await Kernel.connect(base, k["id"], headers)
            outs = []
            for code in cells:
                status, out = await kern.execute(code)
                self.assertEqual(status, "ok", f"{code}\n->\n{out}")
                outs.append(out)
            kern.close()
            return outs
        return asyncio.run(go())

    def test_explore_then_sweep_as_the_owner_through_the_proxy(self):
        alice, bob = self.start_as_alice_with_bob(carol_admin=True)
        carol = "carol-token-890"
        bad = self.write("bad.yaml", NOTEBOOK.replace("idleTimeout: 0", "idleTimeout: soon"))
        r = self.ty("notebook", "start", bad)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("bad.yaml:6:16", r.stderr)
        self.assertIn("spec.idleTimeout", r.stderr)

        r = self.ty("notebook", "start", self.write("nb.yaml", NOTEBOOK), check=0)
        self.assertIn("/notebooks/alice/explore/tree", r.stdout)
        self.wait_state("Running")
        r = self.ty("notebook", "list", check=0)
        self.assertRegex(r.stdout, r"explore\s+alice\s+Running\s+0.5\s+2.0Gi")
        self.assertEqual(self.ty("notebook", "open", "explore", check=0).stdout.strip(),
                         self.server.url + "/notebooks/alice/explore/tree")
        # Bob sees none of it.
        self.assertEqual(self.notebook(token=bob), [])
        self.assertEqual(self.call("GET", "/api/v1/notebooks/alice/explore", token=bob)[0], 403)
        self.assertEqual(self.call("GET", "/notebooks/alice/explore/api/status", token=bob)[0], 403)
        self.assertEqual(self.call("GET", "/notebooks/alice/explore/api/status", token="")[0], 401)
        # An administrator reaches it, and sees it listed.
        self.assertEqual(self.call("GET", "/notebooks/alice/explore/api/status", token=carol)[0], 200)
        self.assertEqual([(n["owner"], n["name"]) for n in self.notebook(token=carol)], [("alice", "explore")])

        # The example notebook, cell by cell, in a kernel reached through the proxy.
        base = self.server.url + "/notebooks/alice/explore/"
        headers = {"Authorization": "Bearer " + alice, "Origin": self.server.url}
        with open(os.path.join(SOURCE_DIR, "examples", "notebooks", "explore-then-sweep.ipynb")) as f:
            cells = ["".join(c["source"]) for c in json.load(f)["cells"] if c["cell_type"] == "code"]
        cells.append("import os; print(os.environ['TRAINYARD_TOKEN'])")
        outs = self.run_cells(base, headers, cells)
        self.assertIn("classes", outs[0])
        self.assertRegex(outs[1], r"accuracy=0\.[4-9]")
        self.assertIn("experiment probe-sweep submitted", outs[4])
        scoped = outs[-1].strip()
        self.assertTrue(scoped.startswith("tynb.nb-alice-explore."), scoped)
        # The sweep is alice's, made from her workspace, and runs.
        st, e = self.call("GET", "/api/v1/experiments/probe-sweep")
        self.assertEqual(st, 200, e)
        self.assertEqual(e["user"], "alice")
        self.wait_until("the sweep to finish", lambda: self.call("GET", "/api/v1/experiments/probe-sweep")[1]["phase"] == "Succeeded", 300)
        st, trials = self.call("GET", "/api/v1/experiments/probe-sweep/trials")
        self.assertEqual(len(trials["items"]), 4)
        self.assertTrue(all(t["state"] == "Succeeded" and t["objective"]["accuracy"] > 0.3 for t in trials["items"]), trials)

        # The scoped token is alice, never an admin, and only while the notebook runs.
        self.assertEqual([n["name"] for n in self.notebook(token=scoped)], ["explore"])
        queue = json.dumps({"apiVersion": "trainyard.dev/v1", "kind": "Queue", "metadata": {"name": "mine"}, "spec": {}})
        self.assertEqual(self.call("POST", "/api/v1/jobs", {"yaml": queue}, token=scoped)[0], 403)
        r = self.ty("notebook", "delete", "explore")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("stop it first", r.stderr)
        self.ty("notebook", "stop", "explore", check=0)
        self.wait_state("Stopped")
        self.assertEqual(self.call("GET", "/api/v1/notebooks", token=scoped)[0], 401)
        self.assertEqual(self.call("GET", "/notebooks/alice/explore/api/status")[0], 503)

        # Started again by name: the workspace (probe.py, written by the notebook) is still there.
        self.ty("notebook", "start", "explore", check=0)
        self.wait_state("Running")
        outs = self.run_cells(base, headers, ["print(open('probe.py').read().count('accuracy'))"])
        self.assertEqual(outs[0].strip(), "1")
        self.ty("notebook", "stop", "explore", check=0)
        self.wait_state("Stopped")
        self.ty("notebook", "delete", "explore", check=0)
        self.assertEqual(self.notebook(), [])
        self.assertTrue(os.path.exists(os.path.join(self.data, "workspaces", "alice", "probe.py")))


if __name__ == "__main__":
    unittest.main()
