"""`trainyard run` as a process: signals, process hygiene, queueing between runs, deadlines."""
import json
import os
import signal
import unittest

from common import E2E, job_yaml, pid_alive

FORKER = ("trap '' TERM; (trap '' TERM; exec sleep 300) & echo $! >> pids; "
          "(sleep 300) & echo $! >> pids; echo $$$$ >> pids; touch ready; wait")


class Signals(E2E):
    def interrupt(self, sig):
        path = self.write("forker.yaml", job_yaml("forker", FORKER, "workingDir: " + self.dir))
        proc = self.popen("run", path, "--grace", "0.5")
        self.wait_until("the job to start", lambda: os.path.exists(os.path.join(self.dir, "ready")))
        with open(os.path.join(self.dir, "pids")) as f:
            pids = [int(x) for x in f.read().split()]
        self.assertEqual(len(pids), 3)
        self.assertTrue(all(pid_alive(p) for p in pids))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("cancelling forker", err)
        survivors = [p for p in pids if pid_alive(p)]
        self.assertEqual(survivors, [], "processes of the job outlived trainyard run")
        d = self.job("forker")
        self.assertEqual((d["phase"], d["reason"]), ("Failed", "Cancelled"))
        self.assertEqual(d["attempts"][0]["reason"], "Cancelled")

    def test_ctrl_c_stops_the_group_and_escalates(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm_stops_the_group(self):
        self.interrupt(signal.SIGTERM)

    def test_cancel_from_another_shell(self):
        path = self.write("sleeper.yaml", job_yaml("sleeper", "touch ready; exec sleep 300", "workingDir: " + self.dir))
        proc = self.popen("run", path)
        self.wait_until("the job to start", lambda: os.path.exists(os.path.join(self.dir, "ready")))
        self.ty("cancel", "sleeper", check=0)
        proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 130)


class Queueing(E2E):
    def test_second_run_waits_for_cores_then_runs(self):
        env = dict(self.env, TRAINYARD_NODE_CPU="1")
        self.env = env
        first = self.write("first.yaml", job_yaml("first", "touch started; while [ ! -e release ]; do sleep 0.05; done",
                                                  "workingDir: " + self.dir))
        second = self.write("second.yaml", job_yaml("second", "echo second ran"))
        a = self.popen("run", first, env=env)
        self.wait_until("first to run", lambda: os.path.exists(os.path.join(self.dir, "started")))
        b = self.popen("run", second, env=env)
        self.wait_until("second to be queued", lambda: self.phase("second") == "Queued")
        self.assertIn("insufficient cpu", self.job("second")["message"])
        open(os.path.join(self.dir, "release"), "w").close()
        a.communicate(timeout=60)
        self.assertEqual(a.returncode, 0)
        out, _ = b.communicate(timeout=60)
        self.assertEqual(b.returncode, 0)
        self.assertIn("second ran", out)
        self.assertGreaterEqual(self.job("second")["startedAt"], self.job("first")["finishedAt"])

    def test_job_bigger_than_the_machine_fails_at_once(self):
        path = self.write("huge.yaml", job_yaml("huge", "true", "resources: {cpu: 512}"))
        p = self.ty("run", path, check=1)
        self.assertIn("Unschedulable", p.stderr)
        self.assertIn("no node can ever hold this job", p.stderr)


class Deadline(E2E):
    def test_deadline_exceeded(self):
        path = self.write("slow.yaml", job_yaml("slow", "exec sleep 300", "activeDeadlineSeconds: 1",
                                                "restartPolicy: OnFailure"))
        p = self.ty("run", path, "--grace", "1", check=1)
        self.assertIn("DeadlineExceeded", p.stderr)
        d = self.job("slow")
        self.assertEqual(d["reason"], "DeadlineExceeded")
        self.assertEqual(d["restarts"], 0)
        self.assertEqual(d["attempts"][0]["signal"], signal.SIGTERM)


if __name__ == "__main__":
    unittest.main()
