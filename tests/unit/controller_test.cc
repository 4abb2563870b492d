// The job controller driving real processes through the local backend.
#include "control/job_controller.h"

#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "backend/cgroup.h"
#include "backend/fake_backend.h"
#include "control/admission.h"
#include "control/owner.h"
#include "util/proc.h"

#include <sys/wait.h>
#include <fmt/format.h>
#include "local_harness.h"

using namespace trainyard;
using namespace std::chrono_literals;

namespace {

spec::TrainJobSpec shellJob(const std::string& name, const std::string& script, const std::string& dir) {
  spec::TrainJobSpec s;
  s.name = name;
  spec::ReplicaRole r;
  r.command = {"/bin/sh", "-c", script};
  r.working_dir = dir;
  s.roles.push_back(r);
  return s;
}

struct Fixture : trainyard::test::LocalHarness {
  void SetUp() override {
    LocalHarness::SetUp();
    ctl = std::make_unique<control::JobController>(*st, *be, co);
  }
  void TearDown() override {
    unsetenv("TRAINYARD_NODE_CPU");
    unsetenv("TRAINYARD_NODE_GPUS");
  }
  store::JobRecord runToEnd(int64_t id) {
    for (;;) {
      auto j = ctl->reconcile(id);
      if (store::isTerminal(j.phase)) return j;
      ctl->wait(100ms);
    }
  }
  std::vector<std::string> conditionTypes(int64_t id) {
    std::vector<std::string> v;
    for (const auto& c : st->conditions(id)) v.push_back(c.type);
    return v;
  }
  std::string readFile(const std::string& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::unique_ptr<control::JobController> ctl;
};

using Controller = Fixture;

}  // namespace

TEST_F(Controller, SuccessRecordsConditionsAttemptAndMetrics) {
  auto job = ctl->submit(shellJob("ok", "echo epoch=1 loss=0.5; echo epoch=2 loss=0.25", dir));
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_EQ(conditionTypes(job.id), (std::vector<std::string>{"Created", "Running", "Succeeded"}));
  auto conds = st->conditions(job.id);
  EXPECT_LE(conds[0].time, conds[1].time);
  EXPECT_LE(conds[1].time, conds[2].time);
  auto attempts = st->attempts(job.id);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].exit_code, 0);
  EXPECT_EQ(attempts[0].reason, "Completed");
  EXPECT_NE(attempts[0].handle.find("@"), std::string::npos);  // pid@start time
  auto loss = st->metrics(job.id, "loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[1].step, 2);
  EXPECT_DOUBLE_EQ(loss[1].value, 0.25);
  EXPECT_NE(readFile(attempts[0].log_path).find("epoch=2 loss=0.25"), std::string::npos);
}

TEST_F(Controller, NeverPolicyFailsOnFirstError) {
  auto job = ctl->submit(shellJob("never", "exit 3", dir));
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_EQ(end.reason, "Error");
  EXPECT_NE(end.message.find("replica worker-0 exited with code 3"), std::string::npos) << end.message;
  EXPECT_EQ(end.restarts, 0);
}

TEST_F(Controller, OnFailureRestartsUpToBackoffLimitKeepingEveryAttempt) {
  auto s = shellJob("flaky", "echo attempt $TRAINYARD_ATTEMPT; exit 4", dir);
  s.restart_policy = spec::RestartPolicy::OnFailure;
  s.backoff_limit = 2;
  auto job = ctl->submit(s);
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_EQ(end.reason, "BackoffLimitExceeded");
  EXPECT_EQ(end.restarts, 2);
  auto attempts = st->attempts(job.id);
  ASSERT_EQ(attempts.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(attempts[i].attempt, i);
    EXPECT_EQ(attempts[i].exit_code, 4);
    EXPECT_NE(readFile(attempts[i].log_path).find("attempt " + std::to_string(i)), std::string::npos);
  }
  EXPECT_EQ(conditionTypes(job.id), (std::vector<std::string>{"Created", "Running", "Restarting", "Running",
                                                              "Restarting", "Running", "Failed"}));
}

TEST_F(Controller, OnFailureSucceedsAfterARestart) {
  auto s = shellJob("second-time", "[ \"$TRAINYARD_ATTEMPT\" = 1 ] || exit 1", dir);
  s.restart_policy = spec::RestartPolicy::OnFailure;
  s.backoff_limit = 5;
  auto end = runToEnd(ctl->submit(s).id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_EQ(end.restarts, 1);
}

TEST_F(Controller, ExitCodePolicyPermanentVersusRetryable) {
  auto perm = shellJob("permanent", "exit 3", dir);
  perm.restart_policy = spec::RestartPolicy::ExitCode;
  auto end = runToEnd(ctl->submit(perm).id);
  EXPECT_EQ(end.reason, "PermanentError");
  EXPECT_EQ(end.restarts, 0);

  // $$ is a literal $ after Kubernetes-style $(VAR) expansion of args.
  auto retry = shellJob("retryable", "kill -KILL $$$$", dir);
  retry.restart_policy = spec::RestartPolicy::ExitCode;
  retry.backoff_limit = 1;
  auto job = ctl->submit(retry);
  end = runToEnd(job.id);
  EXPECT_EQ(end.reason, "BackoffLimitExceeded");
  EXPECT_EQ(end.restarts, 1);
  auto attempts = st->attempts(job.id);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0].signal, SIGKILL);
  EXPECT_FALSE(attempts[0].exit_code);
  EXPECT_EQ(attempts[0].reason, "Signaled");
  EXPECT_NE(end.message.find("killed by signal 9"), std::string::npos) << end.message;
}

TEST_F(Controller, DeadlineKillsTheJob) {
  auto s = shellJob("slow", "sleep 60", dir);
  s.active_deadline_seconds = 1;
  s.restart_policy = spec::RestartPolicy::OnFailure;  // a deadline is final, never retried
  auto job = ctl->submit(s);
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_EQ(end.reason, "DeadlineExceeded");
  EXPECT_EQ(end.restarts, 0);
  auto attempts = st->attempts(job.id);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].signal, SIGTERM);
  EXPECT_EQ(attempts[0].reason, "DeadlineExceeded");
}

TEST_F(Controller, CancelKillsTheWholeProcessGroupIncludingGrandchildrenThatIgnoreSigterm) {
  // The job forks two grandchildren, one of which ignores SIGTERM, records
  // their PIDs and waits.
  auto s = shellJob("forks",
                    "trap '' TERM; (trap '' TERM; exec sleep 300) & echo $! >> pids; "
                    "sleep 300 & echo $! >> pids; echo started > ready; wait",
                    dir);
  control::ControllerOptions co;
  co.data_dir = dir + "/data";
  co.grace = 300ms;
  ctl = std::make_unique<control::JobController>(*st, *be, co);
  auto job = ctl->submit(s);
  while (readFile(dir + "/ready").empty()) {
    ctl->reconcile(job.id);
    ctl->wait(50ms);
  }
  std::vector<pid_t> pids;
  std::istringstream in(readFile(dir + "/pids"));
  for (pid_t p; in >> p;) pids.push_back(p);
  ASSERT_EQ(pids.size(), 2u);
  for (pid_t p : pids) ASSERT_EQ(kill(p, 0), 0);
  st->requestCancel(job.id);
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_EQ(end.reason, "Cancelled");
  auto attempts = st->attempts(job.id);
  EXPECT_EQ(attempts.at(0).signal, SIGKILL);  // the leader ignored SIGTERM: escalated after the grace
  for (pid_t p : pids) {
    // Reparented grandchildren are reaped by init; a lingering zombie is dead too.
    std::string stat = readFile("/proc/" + std::to_string(p) + "/stat");
    EXPECT_TRUE(stat.empty() || stat.find(") Z") != std::string::npos) << "pid " << p << " survived: " << stat;
  }
}

TEST_F(Controller, StartErrorIsReportedWithTheReason) {
  spec::TrainJobSpec s;
  s.name = "missing";
  spec::ReplicaRole r;
  r.command = {"/nonexistent/program"};
  r.working_dir = dir;
  s.roles.push_back(r);
  auto job = ctl->submit(s);
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_NE(end.message.find("cannot execute /nonexistent/program: No such file or directory"), std::string::npos)
      << end.message;
  EXPECT_EQ(st->attempts(job.id).at(0).reason, "StartError");
}

TEST_F(Controller, JobsThatDoNotFitWaitInTheQueue) {
  setenv("TRAINYARD_NODE_CPU", "2", 1);
  auto big = shellJob("big", "while [ ! -e release ]; do sleep 0.05; done", dir);
  big.roles[0].resources.cpu_millis = 2000;
  auto small = shellJob("small", "echo ran", dir);
  auto a = ctl->submit(big);
  auto b = ctl->submit(small);
  EXPECT_EQ(ctl->reconcile(a.id).phase, store::kRunning);
  auto waiting = ctl->reconcile(b.id);
  EXPECT_EQ(waiting.phase, store::kQueued);
  EXPECT_NE(waiting.message.find("0/1 nodes available: 1 insufficient cpu (needs 1, max free 0)"), std::string::npos) << waiting.message;
  std::ofstream(dir + "/release") << "go";
  EXPECT_EQ(runToEnd(a.id).phase, store::kSucceeded);
  auto end = runToEnd(b.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_GE(end.started_at, st->getJobById(a.id)->finished_at);
  EXPECT_EQ(st->events(b.id).at(0).reason, "Queued");
}

TEST_F(Controller, PriorityDecidesWhoGoesFirst) {
  setenv("TRAINYARD_NODE_CPU", "1", 1);
  auto blocker = ctl->submit(shellJob("blocker", "while [ ! -e release ]; do sleep 0.05; done", dir));
  EXPECT_EQ(ctl->reconcile(blocker.id).phase, store::kRunning);
  auto low = ctl->submit(shellJob("low", "true", dir));
  auto hs = shellJob("high", "true", dir);
  hs.priority = 10;
  auto high = ctl->submit(hs);
  std::ofstream(dir + "/release") << "go";
  runToEnd(blocker.id);
  // A new pass, as the control loop starts one (runToEnd may not have
  // waited at all if the blocker had already ended: still the first pass).
  ctl->beginPass();
  EXPECT_EQ(ctl->reconcile(low.id).phase, store::kQueued);  // high was submitted later but outranks it
  EXPECT_EQ(ctl->reconcile(high.id).phase, store::kRunning);
  runToEnd(high.id);
  EXPECT_EQ(runToEnd(low.id).phase, store::kSucceeded);
}

TEST_F(Controller, UnschedulableJobFailsClearly) {
  setenv("TRAINYARD_NODE_CPU", "2", 1);
  auto s = shellJob("huge", "true", dir);
  s.roles[0].resources.cpu_millis = 64000;
  auto end = runToEnd(ctl->submit(s).id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_EQ(end.reason, "Unschedulable");
  EXPECT_NE(end.message.find("cpu (needs 64, 2 available)"), std::string::npos) << end.message;
}

TEST_F(Controller, ThreadsAndGpusFollowTheAllocation) {
  setenv("TRAINYARD_NODE_GPUS", "2", 1);
  setenv("TRAINYARD_NODE_CPU", "8", 1);
  auto s1 = shellJob("gpu-a", "echo \"$CUDA_VISIBLE_DEVICES $OMP_NUM_THREADS $TRAINYARD_OUTPUT_DIR\" > env-a; "
                              "while [ ! -e release ]; do sleep 0.05; done", dir);
  s1.roles[0].resources = {2000, 0, 1};
  auto s2 = shellJob("gpu-b", "echo \"$CUDA_VISIBLE_DEVICES $OMP_NUM_THREADS\" > env-b", dir);
  s2.roles[0].resources = {3000, 0, 1};
  auto a = ctl->submit(s1);
  ctl->reconcile(a.id);
  auto end_b = runToEnd(ctl->submit(s2).id);
  std::ofstream(dir + "/release") << "go";
  runToEnd(a.id);
  EXPECT_EQ(end_b.phase, store::kSucceeded);
  EXPECT_EQ(readFile(dir + "/env-a"), "0 2 " + dir + "/data/outputs/gpu-a\n");
  EXPECT_EQ(readFile(dir + "/env-b"), "1 3\n");
}

TEST_F(Controller, FileCollectorReadsJsonLines) {
  auto s = shellJob("jsonl", "echo '{\"step\": 1, \"loss\": 0.5}' > m.jsonl; echo '{\"step\": 2, \"loss\": 0.4}' >> m.jsonl", dir);
  s.metrics.kind = spec::MetricsCollector::Kind::File;
  s.metrics.path = "m.jsonl";
  auto job = ctl->submit(s);
  runToEnd(job.id);
  auto loss = st->metrics(job.id, "loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[1].step, 2);
}

TEST_F(Controller, MemoryLimitIsEnforcedWhereCgroupsAllow) {
  backend::Cgroups cg;
  if (cg.mode() == backend::Cgroups::Mode::None) GTEST_SKIP() << "not enforced here: " << cg.why();
  auto s = shellJob("hog", "exec /usr/bin/python3 -c \"x = b'x' * (512 << 20); print('survived')\"", dir);
  s.roles[0].resources.memory_bytes = 64LL << 20;
  auto job = ctl->submit(s);
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  auto a = st->attempts(job.id).at(0);
  EXPECT_EQ(a.reason, "OOMKilled");
  EXPECT_EQ(a.signal, SIGKILL);
  EXPECT_NE(end.message.find("out of memory"), std::string::npos) << end.message;
}

namespace {
// A distributed job whose replicas all run `script` under /bin/sh.
spec::TrainJobSpec gangJob(const std::string& name, const std::string& framework,
                           std::vector<std::pair<std::string, int>> roles, const std::string& script,
                           const std::string& dir) {
  spec::TrainJobSpec s;
  s.name = name;
  s.framework = framework;
  for (const auto& [role, n] : roles) {
    spec::ReplicaRole r;
    r.name = role;
    r.replicas = n;
    r.command = {"/bin/sh", "-c", script};
    r.working_dir = dir;
    r.resources.cpu_millis = 100;
    s.roles.push_back(r);
  }
  return s;
}

std::map<std::string, store::AttemptRecord> byReplica(const std::vector<store::AttemptRecord>& v, int attempt) {
  std::map<std::string, store::AttemptRecord> m;
  for (const auto& a : v)
    if (a.attempt == attempt) m[a.replica] = a;
  return m;
}
}  // namespace

TEST_F(Controller, ReplicasGetThePyTorchEnvironment) {
  auto job = ctl->submit(gangJob("env", "pytorch", {{"master", 1}, {"worker", 2}},
                                 "echo \"$MASTER_ADDR $RANK/$WORLD_SIZE $PET_NODE_RANK\" > env-$TRAINYARD_REPLICA; "
                                 // The master's success ends the job: it waits for the workers' answers.
                                 "if [ $RANK = 0 ]; then while [ ! -s env-worker-0 ] || [ ! -s env-worker-1 ]; do "
                                 "sleep 0.02; done; fi", dir));
  EXPECT_EQ(runToEnd(job.id).phase, store::kSucceeded);
  EXPECT_EQ(readFile(dir + "/env-master-0"), "127.0.0.1 0/3 0\n");
  EXPECT_EQ(readFile(dir + "/env-worker-0"), "127.0.0.1 1/3 1\n");
  EXPECT_EQ(readFile(dir + "/env-worker-1"), "127.0.0.1 2/3 2\n");
}

TEST_F(Controller, AFailedReplicaTearsDownTheGangAndIsNamed) {
  auto job = ctl->submit(gangJob("gang", "pytorch", {{"master", 1}, {"worker", 1}},
                                 "if [ $RANK = 1 ]; then exit 3; fi; exec sleep 300", dir));
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kFailed);
  EXPECT_NE(end.message.find("replica worker-0 exited with code 3"), std::string::npos) << end.message;
  auto a = byReplica(st->attempts(job.id), 0);
  EXPECT_EQ(a["worker-0"].exit_code, 3);
  EXPECT_EQ(a["master-0"].signal, SIGTERM);
  EXPECT_EQ(a["master-0"].reason, "GangStopped");
}

TEST_F(Controller, OnFailureRestartsEveryReplica) {
  auto s = gangJob("restart-all", "pytorch", {{"master", 1}, {"worker", 1}},
                   "if [ $TRAINYARD_ATTEMPT = 0 ]; then if [ $RANK = 1 ]; then exit 1; fi; exec sleep 300; fi; "
                   "if [ $RANK = 1 ]; then touch worker-done; else while [ ! -e worker-done ]; do sleep 0.02; done; fi",
                   dir);
  s.restart_policy = spec::RestartPolicy::OnFailure;
  s.backoff_limit = 2;
  auto job = ctl->submit(s);
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_EQ(end.restarts, 1);
  auto attempts = st->attempts(job.id);
  ASSERT_EQ(attempts.size(), 4u);
  EXPECT_EQ(byReplica(attempts, 0)["master-0"].reason, "GangStopped");
  EXPECT_EQ(byReplica(attempts, 1)["master-0"].exit_code, 0);
  // The worker ran again (it left its file); the master's success may be
  // seen before the worker's own exit, which then ends as stopped with the gang.
  EXPECT_TRUE(std::filesystem::exists(dir + "/worker-done"));
  auto worker = byReplica(attempts, 1)["worker-0"];
  // (Stopped: the primary's success stops the rest, as a TFJob's ps.)
  EXPECT_TRUE(worker.exit_code == 0 || worker.reason == "GangStopped" || worker.reason == "Stopped") << worker.reason;
}

TEST_F(Controller, MasterSuccessEndsTheJobAndStopsTheRest) {
  auto job = ctl->submit(gangJob("master-wins", "pytorch", {{"master", 1}, {"worker", 1}},
                                 "if [ $RANK = 0 ]; then exit 0; fi; exec sleep 300", dir));
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  auto a = byReplica(st->attempts(job.id), 0);
  EXPECT_EQ(a["worker-0"].reason, "Stopped");
  EXPECT_EQ(a["worker-0"].signal, SIGTERM);
}

TEST_F(Controller, AllWorkersPolicyWaitsForEveryWorker) {
  auto s = gangJob("all-workers", "tensorflow", {{"ps", 1}, {"worker", 2}},
                   "case $TRAINYARD_REPLICA in ps-*) exec sleep 300;; worker-1) while [ ! -e go ]; do sleep 0.05; done;; esac",
                   dir);
  s.success_policy = "AllWorkers";
  auto job = ctl->submit(s);
  // worker-0 finishes, worker-1 waits: not done yet - checked once worker-0
  // has really exited (a fixed window passed also when it had not).
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!byReplica(st->attempts(job.id), 0)["worker-0"].exit_code && std::chrono::steady_clock::now() < deadline) {
    EXPECT_EQ(ctl->reconcile(job.id).phase, store::kRunning);
    ctl->wait(20ms);
  }
  ASSERT_EQ(byReplica(st->attempts(job.id), 0)["worker-0"].exit_code, 0);
  EXPECT_EQ(ctl->reconcile(job.id).phase, store::kRunning);
  std::ofstream(dir + "/go") << "1";
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_EQ(byReplica(st->attempts(job.id), 0)["ps-0"].reason, "Stopped");
}

TEST_F(Controller, MpiLauncherGetsAHostfileWorkersAreSlots) {
  auto s = gangJob("mpi", "mpi", {{"launcher", 1}, {"worker", 2}}, "cat $OMPI_MCA_orte_default_hostfile", dir);
  s.slots_per_worker = 3;
  auto job = ctl->submit(s);
  EXPECT_EQ(runToEnd(job.id).phase, store::kSucceeded);
  auto attempts = st->attempts(job.id);
  ASSERT_EQ(attempts.size(), 1u);  // only the launcher ran
  EXPECT_EQ(attempts[0].replica, "launcher-0");
  EXPECT_EQ(readFile(attempts[0].log_path), "127.0.0.1 slots=6\n");
}

// A replica the backend stops reporting (its record gone, a lost node) is
// Lost and goes through the restart policy; before, the job stayed Running
// forever (no status meant "not all exited").
TEST_F(Controller, AReplicaTheBackendForgetsIsLostAndRestarted) {
  auto s = shellJob("forgotten", "if [ $TRAINYARD_ATTEMPT = 0 ]; then exec sleep 600; fi; echo second attempt", dir);
  s.restart_policy = spec::RestartPolicy::OnFailure;
  s.backoff_limit = 1;
  auto job = ctl->submit(s);
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (ctl->reconcile(job.id).phase != store::kRunning && std::chrono::steady_clock::now() < deadline) ctl->wait(20ms);
  ASSERT_EQ(st->getJobById(job.id)->phase, store::kRunning);
  be->release(job.uid);  // the backend kills and forgets attempt 0
  auto end = runToEnd(job.id);
  EXPECT_EQ(end.phase, store::kSucceeded);
  EXPECT_EQ(end.restarts, 1);
  auto a0 = st->attempts(job.id).at(0);
  EXPECT_EQ(a0.reason, "Lost");
  EXPECT_EQ(a0.signal, SIGKILL);
}

// Taking over a job is a compare-and-set on its owner: of two controllers
// that both found its driver dead, only the first gets it; the second finds
// a live owner and leaves it (before, the second overwrote the first).
TEST_F(Controller, OnlyOneControllerTakesOverAJob) {
  std::string self = control::selfOwner();
  control::ControllerOptions dead = co;
  dead.owner = self.substr(0, self.find(':')) + ":999999999:1";  // this host, no such process
  auto job = control::submitJob(*st, shellJob("orphan", "true", dir), dead);
  EXPECT_EQ(ctl->adopt(job.id).owner, self);
  control::ControllerOptions other = co;
  other.owner = self.substr(0, self.find(':')) + ":999999998:1";
  control::JobController second(*st, *be, other);
  EXPECT_THROW(second.adopt(job.id), std::runtime_error);
  EXPECT_EQ(st->getJobById(job.id)->owner, self);
}

namespace {
// A controller over `nodes` virtual nodes of this machine (TRAINYARD_NODE_CPU cores in all).
struct VirtualCluster {
  VirtualCluster(store::Store& st, const control::ControllerOptions& co, int nodes) {
    backend::LocalBackendOptions bo;
    bo.tie_to_parent = true;
    bo.nodes = nodes;
    be = backend::makeLocalBackend(bo);
    ctl = std::make_unique<control::JobController>(st, *be, co);
  }
  std::unique_ptr<backend::Backend> be;
  std::unique_ptr<control::JobController> ctl;
};

spec::TrainJobSpec gangJob(const std::string& name, int replicas, int64_t cpu_millis, const std::string& script,
                           const std::string& dir) {
  auto s = shellJob(name, script, dir);
  s.framework = "pytorch";
  s.roles[0].name = "master";
  s.roles[0].resources.cpu_millis = cpu_millis;
  if (replicas > 1) {
    auto w = s.roles[0];
    w.name = "worker";
    w.replicas = replicas - 1;
    s.roles.push_back(w);
  }
  return s;
}

std::map<std::string, int> perNode(const std::vector<sched::Placement>& placements) {
  std::map<std::string, int> m;
  for (const auto& p : placements) m[p.node]++;
  return m;
}
}  // namespace

// A gang larger than one node is placed across nodes (pack: as few as
// possible), each replica's placement stored, and the replicas learn their
// peers' endpoints.
TEST_F(Controller, AGangSpansVirtualNodes) {
  setenv("TRAINYARD_NODE_CPU", "4", 1);
  VirtualCluster vc(*st, co, 4);  // node-1..node-4, 1 cpu each
  auto s = gangJob("wide", 4, 500, "echo rank=$RANK of $WORLD_SIZE at $MASTER_ADDR:$MASTER_PORT; sleep 0.2", dir);
  auto job = vc.ctl->submit(s);
  store::JobRecord now;
  while ((now = vc.ctl->reconcile(job.id)).phase == store::kQueued) vc.ctl->wait(20ms);
  auto placed = st->placements(job.id);
  ASSERT_EQ(placed.size(), 4u);
  EXPECT_EQ(perNode(placed), (std::map<std::string, int>{{"node-1", 2}, {"node-2", 2}}));
  EXPECT_EQ(now.node, "node-1,node-2");
  while (!store::isTerminal((now = vc.ctl->reconcile(job.id)).phase)) vc.ctl->wait(50ms);
  EXPECT_EQ(now.phase, store::kSucceeded);
  EXPECT_TRUE(st->placements(job.id).empty());  // freed
  bool scheduled = false;
  for (const auto& e : st->events(job.id))
    scheduled |= e.reason == "Scheduled" && e.message == "placed on node-1 (2 replicas), node-2 (2 replicas)";
  EXPECT_TRUE(scheduled);
}

// `node down`: the replicas there are Lost (NodeLost), the gang restarts per
// its policy and is placed again on nodes that are up.
TEST_F(Controller, ANodeGoingDownRestartsItsGangElsewhere) {
  setenv("TRAINYARD_NODE_CPU", "6", 1);
  VirtualCluster vc(*st, co, 3);  // 2 cpu each
  auto s = gangJob("survivor", 2, 1000,
                   "if [ $TRAINYARD_ATTEMPT = 0 ]; then exec sleep 600; fi; echo rank $RANK on attempt $TRAINYARD_ATTEMPT", dir);
  s.restart_policy = spec::RestartPolicy::OnFailure;
  s.backoff_limit = 2;
  auto job = vc.ctl->submit(s);
  while (vc.ctl->reconcile(job.id).phase != store::kRunning) vc.ctl->wait(20ms);
  auto first = perNode(st->placements(job.id));
  ASSERT_EQ(first.size(), 1u);  // packed on one node
  std::string lost = first.begin()->first;
  st->setNodeState({lost, "Down", "test", store::nowSeconds()});
  store::JobRecord end;
  while (!store::isTerminal((end = vc.ctl->reconcile(job.id)).phase)) vc.ctl->wait(50ms);
  EXPECT_EQ(end.phase, store::kSucceeded) << end.message;
  EXPECT_EQ(end.restarts, 1);
  int node_lost = 0;
  for (const auto& a : st->attempts(job.id)) node_lost += a.attempt == 0 && a.reason == "NodeLost";
  EXPECT_GE(node_lost, 1);
  bool replaced = false;
  for (const auto& e : st->events(job.id))
    if (e.reason == "Scheduled" && e.message.find(lost) == std::string::npos) replaced = true;
  EXPECT_TRUE(replaced) << "the restarted gang must not go back to " << lost;
}

// A higher-priority job preempts a running lower-priority one: it is
// stopped, queued again with reason Preempted (not counted against
// backoffLimit), and runs again once the room is free.
TEST_F(Controller, PreemptedJobsAreQueuedAgainAndRunLater) {
  setenv("TRAINYARD_NODE_CPU", "2", 1);
  auto low = shellJob("low", "if [ $TRAINYARD_ATTEMPT = 0 ]; then exec sleep 600; fi; echo resumed", dir);
  low.roles[0].resources.cpu_millis = 2000;
  low.backoff_limit = 0;  // a preemption is not a failure
  auto a = ctl->submit(low);
  while (ctl->reconcile(a.id).phase != store::kRunning) ctl->wait(20ms);
  auto high = shellJob("high", "echo urgent", dir);
  high.roles[0].resources.cpu_millis = 2000;
  high.priority = 10;
  auto b = ctl->submit(high);
  store::JobRecord hb, la;
  while (!store::isTerminal((hb = ctl->reconcile(b.id)).phase)) {
    la = ctl->reconcile(a.id);
    ctl->wait(50ms);
  }
  EXPECT_EQ(hb.phase, store::kSucceeded);
  while (!store::isTerminal((la = ctl->reconcile(a.id)).phase)) ctl->wait(50ms);
  EXPECT_EQ(la.phase, store::kSucceeded) << la.message;
  EXPECT_EQ(la.restarts, 1);
  EXPECT_EQ(la.preemptions, 1);
  EXPECT_GE(la.finished_at, hb.finished_at);
  bool preempted = false;
  for (const auto& e : st->events(a.id)) preempted |= e.reason == "Preempted" && e.message.find("high") != std::string::npos;
  EXPECT_TRUE(preempted);
}

// Queues from the store: a job over its queue's quota waits with the reason
// even though the node has room; another queue's job runs.
TEST_F(Controller, QueueQuotaHoldsJobsBackWithTheReason) {
  setenv("TRAINYARD_NODE_CPU", "4", 1);
  spec::QueueDef a{.name = "team-a"};
  a.quota.cpu_millis = 1000;
  control::applyQueue(*st, a, "");
  control::applyQueue(*st, spec::QueueDef{.name = "team-b"}, "");
  auto first = shellJob("a1", "while [ ! -e release-a ]; do sleep 0.05; done", dir);
  first.queue = "team-a";
  auto second = shellJob("a2", "true", dir);
  second.queue = "team-a";
  auto other = shellJob("b1", "true", dir);
  other.queue = "team-b";
  auto j1 = ctl->submit(first), j2 = ctl->submit(second), j3 = ctl->submit(other);
  ctl->reconcile(j1.id);
  auto waiting = ctl->reconcile(j2.id);
  EXPECT_EQ(waiting.phase, store::kQueued);
  EXPECT_NE(waiting.message.find("queue team-a over quota for cpu (1/1, needs 1 more)"), std::string::npos) << waiting.message;
  EXPECT_EQ(runToEnd(j3.id).phase, store::kSucceeded);
  std::ofstream(dir + "/release-a") << "go";
  EXPECT_EQ(runToEnd(j1.id).phase, store::kSucceeded);
  EXPECT_EQ(runToEnd(j2.id).phase, store::kSucceeded);
}

// A killed process stays a zombie until its parent reaps it: it must count
// as dead at once (a restart right after `kill -9` takes over its jobs).
TEST(Owner, AZombieIsNotAlive) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  // Not reaped yet: wait until it is a zombie (state Z), without reaping it.
  for (int i = 0; i < 2000 && util::processState(child) != 'Z'; ++i) usleep(1000);
  ASSERT_EQ(util::processState(child), 'Z');
  std::string self = control::selfOwner();
  std::string host = self.substr(0, self.find(':'));
  std::string owner = fmt::format("{}:{}:{}", host, child, *util::processStartTime(child));
  EXPECT_FALSE(control::ownerAlive(owner));
  EXPECT_TRUE(control::ownerAlive(self));
  waitpid(child, nullptr, 0);
}

// A controller on another host holds its jobs while its lease lasts; once it
// expires, a controller here takes them over.
TEST_F(Controller, ALeaseOnAnotherHostExpires) {
  control::ControllerOptions remote = co;
  remote.owner = "some-other-host:1234:5678";
  auto job = control::submitJob(*st, shellJob("remote", "true", dir), remote);
  EXPECT_TRUE(control::ownerAlive(remote.owner, st.get()));  // no lease written: not presumed dead
  st->renewLease(remote.owner, store::nowSeconds() + 30);
  EXPECT_TRUE(control::ownerAlive(remote.owner, st.get()));
  EXPECT_THROW(ctl->adopt(job.id), std::runtime_error);
  st->renewLease(remote.owner, store::nowSeconds() - 1);
  EXPECT_FALSE(control::ownerAlive(remote.owner, st.get()));
  EXPECT_EQ(ctl->adopt(job.id).owner, control::selfOwner());
  EXPECT_EQ(runToEnd(job.id).phase, store::kSucceeded);
}

// A scheduling row damaged by hand does not stop admission: the spec is used.
TEST_F(Controller, ADamagedRequestRowFallsBackToTheSpec) {
  EXPECT_TRUE(control::decodeRequest(R"({"replicas": [["w", "not a number", 0, 0, 0]]})").replicas.empty());
  EXPECT_TRUE(control::decodeRequest("not json").replicas.empty());
  auto r = control::decodeRequest(control::encodeRequest(shellJob("x", "true", dir)));
  ASSERT_EQ(r.replicas.size(), 1u);
  EXPECT_EQ(r.replicas[0].name, "worker-0");
  EXPECT_EQ(r.replicas[0].need.cpu_millis, 1000);
}

// A replica its backend never starts (an image that cannot be pulled): the
// reason shows while it waits, and past startTimeoutSeconds the attempt
// fails as StartTimeout instead of waiting forever.
TEST_F(Controller, AReplicaThatNeverStartsTimesOut) {
  auto cluster = std::make_shared<backend::FakeCluster>(std::vector<sched::Node>{{"node-1", {4000, 8LL << 30, 0}, {}}});
  backend::FakeBackend fake(cluster);
  control::JobController c(*st, fake, co);
  auto s = shellJob("stuck", "true", dir);
  s.roles[0].command = {"fake:pending", "ImagePullFailed", "image registry.example/x:1 not found"};
  s.start_timeout_seconds = 1;
  auto job = c.submit(s);
  store::JobRecord now;
  bool saw_reason = false;
  while (!store::isTerminal((now = c.reconcile(job.id)).phase)) {
    saw_reason |= now.message.find("not started yet: ImagePullFailed") != std::string::npos;
    c.wait(50ms);
  }
  EXPECT_TRUE(saw_reason);
  EXPECT_EQ(now.phase, store::kFailed);
  EXPECT_EQ(now.reason, "StartTimeout");
  EXPECT_NE(now.message.find("replica worker-0 did not start: still not started after 1 s (startTimeoutSeconds): "
                             "ImagePullFailed: image registry.example/x:1 not found"), std::string::npos)
      << now.message;
  EXPECT_EQ(st->attempts(job.id).at(0).reason, "StartTimeout");
}

// Every replica has exited, but its log cannot be read just now: the job's
// last metrics are in it, so the outcome waits for the log instead of
// ending the job without them.
TEST_F(Controller, AFinishedJobWaitsForItsLogToBeReadable) {
  auto cluster = std::make_shared<backend::FakeCluster>(std::vector<sched::Node>{{"node-1", {4000, 8LL << 30, 0}, {}}});
  backend::FakeBackend fake(cluster);
  control::JobController c(*st, fake, co);
  auto s = shellJob("drained", "true", dir);
  s.roles[0].command = {"fake:print", "epoch=1 loss=0.5\nepoch=2 loss=0.25\n", "0"};
  cluster->setLogsUnavailable(true);
  auto job = c.submit(s);
  store::JobRecord now;
  // The replica exits; a few more passes while its log stays unreadable.
  auto exited = [&] {
    auto attempts = st->attempts(job.id);
    return !attempts.empty() && attempts[0].state == "Exited";
  };
  while (!exited()) now = c.reconcile(job.id), c.wait(10ms);
  for (int pass = 0; pass < 5; ++pass) now = c.reconcile(job.id);
  EXPECT_EQ(now.phase, store::kRunning);  // exited, and the outcome waits for the log
  EXPECT_TRUE(st->lastMetrics(job.id).empty());
  cluster->setLogsUnavailable(false);
  while (!store::isTerminal((now = c.reconcile(job.id)).phase)) c.wait(50ms);
  EXPECT_EQ(now.phase, store::kSucceeded);
  auto last = st->lastMetrics(job.id);
  auto loss = std::find_if(last.begin(), last.end(), [](const auto& m) { return m.name == "loss"; });
  ASSERT_NE(loss, last.end());
  EXPECT_EQ(loss->value, 0.25);
}

TEST_F(Controller, ABatchSystemIsKeptABacklogOfWholeNodes) {
  // One node of 1 CPU, three jobs of 1 CPU each. A backend with a queue of
  // its own is given batch_backlog (2) times the node's CPUs, so two go to
  // it; the third waits here. Without a queue of its own, one.
  for (bool queues : {true, false}) {
    auto db = store::openStore(test::freshDir());  // each case its own
    auto cluster = std::make_shared<backend::FakeCluster>(std::vector<sched::Node>{{"node-1", {1000, 8LL << 30, 0}, {}}});
    cluster->setQueuesJobs(queues);
    backend::FakeBackend fake(cluster);
    control::JobController c(*db, fake, co);
    std::vector<std::string> phases;
    for (int i = 0; i < 3; ++i) {
      auto s = shellJob(fmt::format("batch-{}-{}", queues, i), "true", dir);
      s.roles[0].command = {"fake:run"};
      s.roles[0].resources.cpu_millis = 1000;
      auto job = c.submit(s);
      c.beginPass();
      phases.push_back(c.reconcile(job.id).phase);
    }
    if (queues) EXPECT_EQ(phases, (std::vector<std::string>{store::kRunning, store::kRunning, store::kQueued}));
    else EXPECT_EQ(phases, (std::vector<std::string>{store::kRunning, store::kQueued, store::kQueued}));
    // The backlog is more of the cluster, not bigger nodes: what no node holds still never runs.
    auto big = shellJob(fmt::format("big-{}", queues), "true", dir);
    big.roles[0].resources.cpu_millis = 2000;
    auto job = c.submit(big);
    c.beginPass();
    auto end = c.reconcile(job.id);
    EXPECT_EQ(end.phase, store::kFailed);
    EXPECT_EQ(end.reason, "Unschedulable");
  }
}

// The File collector reads through the backend (readFileAt), never the
// controller's own file system: on the fake backend the file exists only
// in the fake cluster, and its metrics arrive all the same.
TEST_F(Controller, TheFileCollectorReadsThroughTheBackend) {
  auto cluster = std::make_shared<backend::FakeCluster>(std::vector<sched::Node>{{"node-1", {4000, 8LL << 30, 0}, {}}});
  backend::FakeBackend fake(cluster);
  control::JobController c(*st, fake, co);
  auto s = shellJob("filed", "true", dir);
  s.metrics.kind = spec::MetricsCollector::Kind::File;
  s.metrics.path = "/nowhere/on/this/machine/metrics.json";
  s.roles[0].command = {"fake:write", s.metrics.path, "{\"loss\": 0.5, \"step\": 1}\n{\"loss\": 0.25, \"step\": 2}\n", "0"};
  auto job = c.submit(s);
  store::JobRecord now;
  while (!store::isTerminal((now = c.reconcile(job.id)).phase)) c.wait(50ms);
  EXPECT_EQ(now.phase, store::kSucceeded);
  auto last = st->lastMetrics(job.id);
  auto loss = std::find_if(last.begin(), last.end(), [](const auto& m) { return m.name == "loss"; });
  ASSERT_NE(loss, last.end());
  EXPECT_EQ(loss->value, 0.25);
  EXPECT_EQ(loss->step, 2);
  EXPECT_FALSE(std::filesystem::exists(s.metrics.path));
}
