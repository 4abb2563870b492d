// The Backend contract (backend/backend.h), tested the same way on every
// backend: the local one (real processes) and the in-memory fake. A new
// backend (Kubernetes, Slurm) adds itself to the list below and must pass.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "backend/fake_backend.h"
#include "backend/kubernetes/kubernetes_backend.h"
#include "backend/slurm/options.h"
#include "backend/slurm/slurm_backend.h"
#include "backend/supervisor.h"
#include "test_util.h"

using namespace trainyard;
using namespace trainyard::backend;
using namespace std::chrono_literals;

namespace {

// What a replica does, in each backend's terms.
enum class Program { ExitZero, ExitOne, Run, IgnoreTerm, Missing };
struct PrintProgram {
  std::string text;
};

// One backend under test.
struct Env {
  virtual ~Env() = default;
  // A backend; a second call is "the controller restarted" (same cluster).
  virtual std::unique_ptr<Backend> make() = 0;
  virtual std::vector<std::string> argv(Program p) = 0;
  virtual std::vector<std::string> print(const std::string& text) = 0;
  // Writes `text` to the file `path` (absolute, as the replica sees it).
  virtual std::vector<std::string> write(const std::string& path, const std::string& text) = 0;
  virtual bool can_lose_nodes() const { return false; }
  virtual void loseNode(const std::string&) {}
  // Whether readFileAt reaches a replica's files; why not, otherwise.
  virtual std::string cannot_read_files() const { return ""; }
  virtual std::string node(int i) const { return i % 2 ? "node-2" : "node-1"; }
  virtual std::string image() const { return ""; }
  std::string dir = test::freshDir();
};

struct LocalEnv : Env {
  std::unique_ptr<Backend> make() override {
    LocalBackendOptions o;
    // Replicas must outlive a backend (a restarted server re-attaches), so
    // they run under the supervisor that keeps their exit status.
    o.supervisor = (std::filesystem::path(std::filesystem::read_symlink("/proc/self/exe")).parent_path() / "trainyard-supervise").string();
    return makeLocalBackend(o);
  }
  std::vector<std::string> argv(Program p) override {
    switch (p) {
      case Program::ExitZero: return {"/bin/sh", "-c", "exit 0"};
      case Program::ExitOne: return {"/bin/sh", "-c", "exit 1"};
      case Program::Run: return {"/bin/sh", "-c", "while :; do sleep 0.05; done"};
      case Program::IgnoreTerm: return {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"};
      case Program::Missing: return {"/nonexistent/program"};
    }
    return {};
  }
  std::vector<std::string> print(const std::string& text) override { return {"/bin/printf", "%s", text}; }
  std::vector<std::string> write(const std::string& path, const std::string& text) override {
    return {"/bin/sh", "-c", "printf %s \"$1\" > \"$0\"", path, text};
  }
};

struct FakeEnv : Env {
  std::shared_ptr<FakeCluster> cluster =
      std::make_shared<FakeCluster>(std::vector<sched::Node>{{"node-1", {4000, 1LL << 30, 0}, {}}, {"node-2", {4000, 1LL << 30, 0}, {}}});
  std::unique_ptr<Backend> make() override { return std::make_unique<FakeBackend>(cluster); }
  std::vector<std::string> argv(Program p) override {
    switch (p) {
      case Program::ExitZero: return {"fake:exit", "0"};
      case Program::ExitOne: return {"fake:exit", "1"};
      case Program::Run: return {"fake:run"};
      case Program::IgnoreTerm: return {"fake:ignore-term"};
      case Program::Missing: return {"/nonexistent/program"};
    }
    return {};
  }
  std::vector<std::string> print(const std::string& text) override { return {"fake:print", text, "0"}; }
  std::vector<std::string> write(const std::string& path, const std::string& text) override {
    return {"fake:write", path, text, "0"};
  }
  bool can_lose_nodes() const override { return true; }
  void loseNode(const std::string& n) override { cluster->loseNode(n); }
};

#ifdef TRAINYARD_CONFORMANCE_KUBERNETES
// A real control plane (the ctest fixture "k8s") with two kubelet
// stand-ins of this process's own (tests/k8s/kubelet_standin.py) in a
// namespace of its own, so tests running beside it do not meet; replicas
// run as local processes in pods bound to those nodes.
struct KubernetesEnv : Env {
  std::string skip, cluster, ns, kubectl;
  std::vector<pid_t> standins;
  pid_t self = getpid();  // node names are this process's, also in the forked stand-ins
  KubernetesEnv() {
    const char* d = std::getenv("TRAINYARD_TEST_K8S_DIR");
    if (!d) {
      skip = "TRAINYARD_TEST_K8S_DIR not set: run through ctest (fixture k8s)";
      return;
    }
    if (std::ifstream f(std::string(d) + "/skipped"); f) {
      std::getline(f, skip);
      return;
    }
    cluster = std::string(d) + "/cluster";
    kubectl = fmt::format("{}/bin/kubectl --kubeconfig {}/kubeconfig", d, cluster);
    ns = fmt::format("conf-{}", self);
    std::system(fmt::format("{} create namespace {} >/dev/null", kubectl, ns).c_str());
    for (int i = 0; i < 2; ++i) {
      std::string state = fmt::format("{}/standin-{}", dir, i);
      pid_t pid = fork();
      if (pid == 0) {
        std::string log = state + ".log";
        freopen(log.c_str(), "w", stdout);
        freopen(log.c_str(), "a", stderr);
        execl("/usr/bin/python3", "python3", TRAINYARD_SOURCE_DIR "/tests/k8s/kubelet_standin.py", "--cluster", cluster.c_str(),
              "--node", node(i).c_str(), "--state", state.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      standins.push_back(pid);
      // Polls the stand-in's "registered" file (an observable condition).
      for (int t = 0; t < 600 && !std::filesystem::exists(state + "/ready"); ++t) std::this_thread::sleep_for(100ms);
    }
  }
  ~KubernetesEnv() override {
    for (pid_t p : standins) kill(p, SIGTERM);
    for (pid_t p : standins) waitpid(p, nullptr, 0);
    if (cluster.empty()) return;
    for (int i = 0; i < 2; ++i) std::system(fmt::format("{} delete node {} --wait=false >/dev/null 2>&1", kubectl, node(i)).c_str());
    std::system(fmt::format("{} delete namespace {} --wait=false >/dev/null 2>&1", kubectl, ns).c_str());
  }
  std::unique_ptr<Backend> make() override {
    KubernetesOptions o;
    o.kubeconfig = cluster + "/kubeconfig";
    o.ns = ns;
    o.host_network = true;
    o.log_root = dir + "/logs";  // as the server's: logs followed into files there
    return makeKubernetesBackend(o);
  }
  std::vector<std::string> argv(Program p) override { return LocalEnv().argv(p); }
  std::vector<std::string> print(const std::string& text) override { return LocalEnv().print(text); }
  std::vector<std::string> write(const std::string& path, const std::string& text) override { return LocalEnv().write(path, text); }
  std::string cannot_read_files() const override {
    return "a file inside a pod is reached through exec or a shared volume; neither is implemented yet";
  }
  std::string node(int i) const override { return fmt::format("conf-{}-{}", self, i % 2 + 1); }
  std::string image() const override { return "debian:12"; }
};
#endif

#ifdef TRAINYARD_CONFORMANCE_SLURM
// A backend whose job uids carry a prefix of this process's own: Slurm
// keeps finished jobs listed for minutes (MinJobAge), and its job names
// (trainyard-<uid>-<attempt>) must not meet an earlier run's or a
// neighbouring test's.
class PrefixedBackend final : public Backend {
 public:
  PrefixedBackend(std::unique_ptr<Backend> b, std::string prefix) : b_(std::move(b)), p_(std::move(prefix)) {}
  std::string name() const override { return b_->name(); }
  Capabilities capabilities() const override { return b_->capabilities(); }
  std::vector<sched::Node> capacity() override { return b_->capacity(); }
  std::vector<Endpoint> resolvePeers(const PlacedJob& job) override { return b_->resolvePeers(mine(job)); }
  void launch(const PlacedJob& job) override { b_->launch(mine(job)); }
  void stop(const std::string& uid, std::chrono::milliseconds grace) override { b_->stop(p_ + uid, grace); }
  std::vector<ReplicaStatus> observe(const std::string& uid) override { return b_->observe(p_ + uid); }
  std::map<std::string, std::vector<ReplicaStatus>> observeAll() override {
    std::map<std::string, std::vector<ReplicaStatus>> out;
    for (auto& [uid, s] : b_->observeAll())
      if (uid.starts_with(p_)) out[uid.substr(p_.size())] = s;
    return out;
  }
  LogChunk readLogAt(const std::string& uid, int a, const std::string& r, const std::string& c, size_t m) override {
    return b_->readLogAt(p_ + uid, a, r, c, m);
  }
  LogChunk readFileAt(const std::string& uid, int a, const std::string& r, const std::string& path, const std::string& c,
                      size_t m) override {
    return b_->readFileAt(p_ + uid, a, r, path, c, m);
  }
  void waitForChange(std::chrono::milliseconds t) override { b_->waitForChange(t); }
  std::vector<ReplicaStatus> reattach(const std::string& uid, int a, const std::vector<ReplicaStatus>& rec) override {
    return b_->reattach(p_ + uid, a, rec);
  }
  void release(const std::string& uid) override { b_->release(p_ + uid); }
  std::vector<std::string> warnings() const override { return b_->warnings(); }

 private:
  PlacedJob mine(PlacedJob job) const {
    job.uid = p_ + job.uid;
    return job;
  }
  std::unique_ptr<Backend> b_;
  std::string p_;
};

// The real Slurm of the ctest fixture "slurm" (tests/slurm/cluster.sh: 4
// slurmd on this machine); replicas are srun tasks of this process's jobs.
struct SlurmEnv : Env {
  std::string skip;
  std::string prefix = fmt::format("c{}x{}-", getpid(), std::chrono::steady_clock::now().time_since_epoch().count() % 100000);
  SlurmEnv() {
    const char* d = std::getenv("TRAINYARD_TEST_SLURM_DIR");
    if (!d) {
      skip = "TRAINYARD_TEST_SLURM_DIR not set: run through ctest (fixture slurm)";
      return;
    }
    if (std::ifstream f(std::string(d) + "/skipped"); f) {
      std::getline(f, skip);
      return;
    }
    setenv("SLURM_CONF", (std::string(d) + "/slurm.conf").c_str(), 1);
  }
  std::unique_ptr<Backend> make() override {
    SlurmOptions o;
    o.log_root = dir + "/logs";
    o.trainyard = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "trainyard").string();
    return std::make_unique<PrefixedBackend>(makeSlurmBackend(o), prefix);
  }
  std::vector<std::string> argv(Program p) override { return LocalEnv().argv(p); }
  std::vector<std::string> print(const std::string& text) override { return LocalEnv().print(text); }
  std::vector<std::string> write(const std::string& path, const std::string& text) override { return LocalEnv().write(path, text); }
};
#endif

class BackendConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
#ifdef TRAINYARD_CONFORMANCE_KUBERNETES
    auto k = std::make_unique<KubernetesEnv>();
    if (!k->skip.empty()) GTEST_SKIP() << "SKIPPED, no Kubernetes: " << k->skip;
    env = std::move(k);
#elif defined(TRAINYARD_CONFORMANCE_SLURM)
    auto sl = std::make_unique<SlurmEnv>();
    if (!sl->skip.empty()) GTEST_SKIP() << "SKIPPED, no Slurm: " << sl->skip;
    env = std::move(sl);
#else
    if (GetParam() == "local") env = std::make_unique<LocalEnv>();
    else env = std::make_unique<FakeEnv>();
#endif
    be = env->make();
  }
  void TearDown() override {
    if (be)
      for (const auto& uid : launched) be->release(uid);
  }
  PlacedJob job(const std::string& uid, int attempt, std::vector<std::vector<std::string>> programs) {
    PlacedJob j;
    j.uid = uid;
    j.name = uid;
    j.attempt = attempt;
    j.log_dir = env->dir + "/logs/" + uid;
    for (size_t i = 0; i < programs.size(); ++i) {
      ReplicaLaunch r;
      r.name = fmt::format("worker-{}", i);
      r.role = "worker";
      r.index = static_cast<int>(i);
      r.argv = programs[i];
      r.working_dir = env->dir;
      r.node = env->node(static_cast<int>(i));
      r.image = env->image();
      j.replicas.push_back(r);
    }
    launched.push_back(uid);
    return j;
  }
  // Observes until `done` holds (each backend is asynchronous).
  std::vector<ReplicaStatus> until(Backend& b, const std::string& uid,
                                   const std::function<bool(const std::vector<ReplicaStatus>&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    std::vector<ReplicaStatus> s;
    while (std::chrono::steady_clock::now() < deadline) {
      s = b.observe(uid);
      if (done(s)) return s;
      b.waitForChange(20ms);
    }
    ADD_FAILURE() << "timed out observing " << uid;
    return s;
  }
  // Whether the log of an ended replica has been read to its end: a read
  // there that is not `unavailable` (the contract's "all of it is in").
  bool logComplete(Backend& b, const std::string& uid, int attempt, const std::string& replica) {
    std::string cursor;
    for (;;) {
      auto c = b.readLogAt(uid, attempt, replica, cursor, 1 << 20);
      if (c.bytes.empty()) return !c.unavailable;
      cursor = c.next;
    }
  }
  static bool allExited(const std::vector<ReplicaStatus>& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](const auto& r) { return r.phase == ReplicaPhase::Exited; });
  }
  std::unique_ptr<Env> env;
  std::unique_ptr<Backend> be;
  std::vector<std::string> launched;
};

}  // namespace

TEST_P(BackendConformance, LaunchIsIdempotentPerUidAndAttempt) {
  auto j = job("idem", 0, {env->argv(Program::Run)});
  be->launch(j);
  auto first = be->observe("idem");
  be->launch(j);
  // Asynchronous: it runs when its backend has started it (a pod, later).
  auto second = until(*be, "idem", [](const auto& s) { return s.size() == 1 && s[0].phase == ReplicaPhase::Running; });
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_FALSE(first[0].handle.empty());
  EXPECT_EQ(first[0].handle, second[0].handle);
}

TEST_P(BackendConformance, EveryReplicaRunsOrNone) {
  be->launch(job("gang", 0, {env->argv(Program::Run), env->argv(Program::Missing)}));
  auto s = until(*be, "gang", allExited);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].reason, "StartError");
  EXPECT_NE(s[1].message.find("/nonexistent/program"), std::string::npos) << s[1].message;
  EXPECT_TRUE(s[0].signal.has_value()) << "the replica that started must not run alone";
}

TEST_P(BackendConformance, ExitCodesAreReported) {
  be->launch(job("codes", 0, {env->argv(Program::ExitZero), env->argv(Program::ExitOne)}));
  auto s = until(*be, "codes", allExited);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].exit_code, 0);
  EXPECT_EQ(s[1].exit_code, 1);
}

TEST_P(BackendConformance, StopSendsTermThenKillsAfterTheGrace) {
  be->launch(job("polite", 0, {env->argv(Program::Run)}));
  be->launch(job("stubborn", 0, {env->argv(Program::IgnoreTerm)}));
  // It says "ready" once its trap is installed (a real program's start-up).
  until(*be, "stubborn", [&](const auto&) { return be->readLogAt("stubborn", 0, "worker-0", "", 64).bytes == "ready\n"; });
  // Running, not still waiting for a node (a batch queue): then SIGTERM is what ends it.
  until(*be, "polite", [](const auto& s) { return !s.empty() && s[0].phase == ReplicaPhase::Running; });
  be->stop("polite", 5000ms);
  be->stop("stubborn", 300ms);
  auto p = until(*be, "polite", allExited);
  EXPECT_EQ(p[0].signal, SIGTERM);
  auto s = until(*be, "stubborn", allExited);
  EXPECT_EQ(s[0].signal, SIGKILL);
}

TEST_P(BackendConformance, ObserveAllCoversEveryJobInOneCall) {
  be->launch(job("a", 0, {env->argv(Program::Run)}));
  be->launch(job("b", 0, {env->argv(Program::Run), env->argv(Program::Run)}));
  auto all = be->observeAll();
  ASSERT_TRUE(all.count("a") && all.count("b"));
  EXPECT_EQ(all["a"].size(), 1u);
  EXPECT_EQ(all["b"].size(), 2u);
}

TEST_P(BackendConformance, LogsByCursorForEveryAttempt) {
  be->launch(job("logs", 0, {env->print("first attempt\n")}));
  until(*be, "logs", allExited);
  be->launch(job("logs", 1, {env->print("second attempt\n")}));
  until(*be, "logs", allExited);
  for (int attempt : {0, 1})
    until(*be, "logs", [&](const auto&) { return logComplete(*be, "logs", attempt, "worker-0"); });
  // Read in small pieces: the cursor continues exactly where the last piece ended.
  std::string text, cursor;
  for (int i = 0; i < 20; ++i) {
    auto c = be->readLogAt("logs", 0, "worker-0", cursor, 4);
    if (c.bytes.empty()) break;
    text += c.bytes;
    cursor = c.next;
  }
  EXPECT_EQ(text, "first attempt\n");
  EXPECT_EQ(be->readLogAt("logs", 1, "worker-0", "", 1 << 20).bytes, "second attempt\n");
  EXPECT_EQ(be->readLogAt("logs", 0, "worker-0", cursor, 1 << 20).bytes, "");  // nothing new
  auto tail = be->readLogAt("logs", 1, "worker-0", "tail:8", 1 << 20);
  EXPECT_EQ(tail.bytes, "attempt\n");
  EXPECT_EQ(be->readLogAt("logs", 1, "worker-0", tail.next, 1 << 20).bytes, "");
  EXPECT_EQ(be->readLogAt("logs", 0, "../../etc", "", 100).bytes, "");
}

// The File metrics collector's way in: a file the replica writes, by the
// path it has there, read by cursor from another thread than the loop's.
TEST_P(BackendConformance, FilesAReplicaWritesByCursor) {
  if (auto why = env->cannot_read_files(); !why.empty()) GTEST_SKIP() << "SKIPPED on " << GetParam() << ": " << why;
  std::string path = env->dir + "/metrics.jsonl";
  EXPECT_EQ(be->readFileAt("files", 0, "worker-0", path, "", 100).bytes, "");  // not written yet
  be->launch(job("files", 0, {env->write(path, "{\"loss\": 0.5}\n{\"loss\": 0.25}\n")}));
  until(*be, "files", allExited);
  std::string text, cursor;
  std::thread reader([&] {
    for (int i = 0; i < 20; ++i) {
      auto c = be->readFileAt("files", 0, "worker-0", path, cursor, 7);
      if (c.bytes.empty()) break;
      text += c.bytes;
      cursor = c.next;
    }
  });
  reader.join();
  EXPECT_EQ(text, "{\"loss\": 0.5}\n{\"loss\": 0.25}\n");
  EXPECT_EQ(be->readFileAt("files", 0, "worker-0", path, cursor, 100).bytes, "");
  EXPECT_EQ(be->readFileAt("files", 0, "worker-0", path, "tail:5", 100).bytes, ".25}\n");
}

TEST_P(BackendConformance, AnotherBackendReattachesAfterARestart) {
  be->launch(job("survivor", 0, {env->argv(Program::Run)}));
  auto before = until(*be, "survivor", [](const auto& s) { return !s.empty() && s[0].phase == ReplicaPhase::Running; });
  be.reset();  // the controller goes away; the replica does not
  be = env->make();
  auto after = be->reattach("survivor", 0, before);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].phase, ReplicaPhase::Running);
  be->stop("survivor", 5000ms);
  auto s = until(*be, "survivor", allExited);
  EXPECT_TRUE(s[0].signal.has_value());
}

// A controller killed between launching an attempt and recording it: the
// next one launches the same (uid, attempt) again, knowing nothing. It must
// get the replica that runs, not a second one. (The local backend's lock per
// attempt; pods and batch jobs are named by uid and attempt on the clusters,
// whose conformance to this is not asserted here yet.)
TEST_P(BackendConformance, ALaunchNobodyRecordedIsNotStartedTwice) {
  if (GetParam() != "local") GTEST_SKIP() << "LOUD SKIP: asserted for the local backend only";
  be->launch(job("unrecorded", 0, {env->argv(Program::Run)}));
  auto before = until(*be, "unrecorded", [](const auto& s) { return !s.empty() && s[0].phase == ReplicaPhase::Running; });
  be.reset();
  be = env->make();
  be->launch(job("unrecorded", 0, {env->argv(Program::Run)}));
  auto after = be->observe("unrecorded");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].phase, ReplicaPhase::Running);
  EXPECT_EQ(after[0].handle, before[0].handle);  // the same process, adopted
  be->stop("unrecorded", 5000ms);
  auto s = until(*be, "unrecorded", allExited);
  EXPECT_TRUE(s[0].signal.has_value());
}

TEST_P(BackendConformance, AReplicaNobodyKnowsIsReportedLost) {
  ReplicaStatus ghost;
  ghost.name = "worker-0";
  ghost.attempt = 0;
  ghost.handle = "999999999@1";  // not a process / not a handle of this cluster
  ghost.log_ref = env->dir + "/logs/ghost/worker-0.attempt-0.log";
  launched.push_back("ghost");
  auto s = be->reattach("ghost", 0, {ghost});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].phase, ReplicaPhase::Exited);
  EXPECT_EQ(s[0].reason, "Lost");
}

TEST_P(BackendConformance, ReleaseForgetsTheJob) {
  be->launch(job("gone", 0, {env->argv(Program::Run)}));
  be->release("gone");
  EXPECT_TRUE(be->observe("gone").empty());
  EXPECT_FALSE(be->observeAll().count("gone"));
}

TEST_P(BackendConformance, ReplicasOfALostNodeEnd) {
  if (!env->can_lose_nodes())
    GTEST_SKIP() << "the local backend's nodes are this machine; its node loss is declared with `trainyard node down` "
                    "(tests: Controller.ANodeGoingDownRestartsItsGangElsewhere, e2e cluster_test)";
  be->launch(job("spread", 0, {env->argv(Program::Run), env->argv(Program::Run)}));
  env->loseNode("node-2");
  auto s = until(*be, "spread", [](const auto& s) { return s.size() == 2 && s[1].phase == ReplicaPhase::Exited; });
  EXPECT_EQ(s[1].reason, "NodeLost");
  EXPECT_EQ(s[0].phase, ReplicaPhase::Running);
}

#ifdef TRAINYARD_CONFORMANCE_KUBERNETES
INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance, ::testing::Values("kubernetes"),
                         [](const auto& info) { return info.param; });
#elif defined(TRAINYARD_CONFORMANCE_SLURM)
INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance, ::testing::Values("slurm"),
                         [](const auto& info) { return info.param; });
#else
INSTANTIATE_TEST_SUITE_P(Backends, BackendConformance, ::testing::Values("local", "fake"),
                         [](const auto& info) { return info.param; });
#endif

#if !defined(TRAINYARD_CONFORMANCE_KUBERNETES) && !defined(TRAINYARD_CONFORMANCE_SLURM)
// The node's half of late binding: the supervisor expands $(VAR) in the
// environment and the command from what the node was given.
TEST(Supervisor, BindsLateReferencesOnTheNode) {
  std::string dir = test::freshDir();
  std::string sup = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "trainyard-supervise").string();
  std::string cmd = fmt::format(
      "env -i PATH=/usr/bin:/bin {}=10.1.2.3 'MASTER_ADDR={}' '{}' __supervise {}/status --bind-late -- "
      "/bin/sh -c 'echo \"$MASTER_ADDR $0\" > {}/out' '{}:29500'",
      backend::latePeerHostVar(0), backend::latePeerHost(0), sup, dir, dir, backend::latePeerHost(0));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(dir + "/out");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "10.1.2.3 10.1.2.3:29500");
  auto rec = backend::readExitRecord(dir + "/status");
  ASSERT_TRUE(rec && rec->exit_code);
  EXPECT_EQ(*rec->exit_code, 0);
}
#endif
