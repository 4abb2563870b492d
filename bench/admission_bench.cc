// One admission cycle (control/admission.h) on a real store with many
// queued jobs, against the way admission worked before the cluster core
// (one pass per queued job, each reading and parsing every active job's
// spec), measured in the same run on the same store.
//
//   admission_bench [--store DIR|postgresql://...] [--queued 1000] [--nodes 100]
//
// The cluster is full (400 running jobs hold every core of 100 8-core
// nodes), so queued jobs wait: "cold" is the first cycle (it writes every
// job's reason), "steady" a cycle with nothing new, "churn" a cycle after 10
// running jobs ended (their successors are admitted and placed).
// Target (issue #11): a cycle with 1,000 queued jobs <= 50 ms.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "control/admission.h"
#include "control/job_controller.h"
#include "control/owner.h"
#include "store/store.h"

using namespace trainyard;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

spec::TrainJobSpec job(const std::string& name, int replicas, int64_t cpu_millis) {
  spec::TrainJobSpec s;
  s.name = name;
  s.framework = replicas > 1 ? "pytorch" : "none";
  spec::ReplicaRole r;
  r.name = replicas > 1 ? "master" : "worker";
  r.command = {"python3", "train.py", "--epochs", "10"};
  r.env = {{"LR", "0.01"}, {"BATCH", "64"}};
  r.resources.cpu_millis = cpu_millis;
  r.resources.memory_bytes = 1LL << 30;
  s.roles.push_back(r);
  if (replicas > 1) {
    r.name = "worker";
    r.replicas = replicas - 1;
    s.roles.push_back(r);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string location = arg(argc, argv, "--store", "");
  int queued = std::stoi(arg(argc, argv, "--queued", "1000"));
  int n_nodes = std::stoi(arg(argc, argv, "--nodes", "100"));
  std::string tmp;
  if (location.empty()) {
    tmp = (fs::temp_directory_path() / fmt::format("ty-admission-{}", getpid())).string();
    location = tmp;
  }
  auto st = store::openStore(location);
  std::vector<sched::Node> nodes;
  for (int i = 0; i < n_nodes; ++i) nodes.push_back({fmt::format("node-{}", i + 1), {8000, 64LL << 30, 0}, {}});

  control::ControllerOptions co;
  co.data_dir = tmp.empty() ? "/tmp/ty-admission" : tmp;
  co.owner = control::selfOwner();
  // Every core held: 4 jobs of 2 cores per node.
  std::vector<int64_t> running;
  st->transaction([&] {
    for (int i = 0; i < n_nodes * 4; ++i) {
      auto j = control::submitJob(*st, job(fmt::format("running-{}", i), 1, 2000), co);
      j.phase = store::kRunning;
      j.started_at = store::nowSeconds();
      j.node = nodes[i / 4].name;
      st->updateJobStatus(j);
      st->setPlacements(j.id, {{"worker-0", nodes[i / 4].name, {2000, 1LL << 30, 0}, {}}});
      running.push_back(j.id);
    }
    for (int i = 0; i < queued; ++i)
      control::submitJob(*st, job(fmt::format("queued-{}", i), i % 10 == 0 ? 4 : 1, (1 + i % 4) * 1000LL), co);
  });

  sched::SchedulerOptions so;
  auto cycle = [&] {
    auto t0 = Clock::now();
    auto out = control::admitQueued(*st, nodes, so, co.owner, store::nowSeconds());
    return std::pair{ms(Clock::now() - t0), out};
  };
  auto [cold, first] = cycle();
  std::vector<double> steady;
  for (int i = 0; i < 15; ++i) steady.push_back(cycle().first);
  std::sort(steady.begin(), steady.end());
  // Churn: 10 running jobs end, the cycle places their successors.
  std::vector<double> churn;
  size_t admitted = 0;
  for (int round = 0; round < 10; ++round) {
    st->transaction([&] {
      for (int k = 0; k < 10 && !running.empty(); ++k) {
        auto j = st->getJobById(running.back());
        running.pop_back();
        j->phase = store::kSucceeded;
        j->finished_at = store::nowSeconds();
        st->setPlacements(j->id, {});
        st->updateJobStatus(*j);
      }
    });
    auto [t, out] = cycle();
    churn.push_back(t);
    admitted += out.admitted.size();
  }
  std::sort(churn.begin(), churn.end());

  // Before: every queued job ran its own admission, reading and parsing
  // every active job (one such read, timed, times the queued jobs).
  std::vector<double> reads;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    st->transaction([&] { (void)st->listActiveJobs(); });
    reads.push_back(ms(Clock::now() - t0));
  }
  std::sort(reads.begin(), reads.end());
  double before = reads[reads.size() / 2] * queued;

  std::printf("store=%s\nqueued=%d\nrunning=%d\nnodes=%d\n", location.rfind("postgresql", 0) == 0 ? "postgresql" : "sqlite",
              queued, n_nodes * 4, n_nodes);
  std::printf("cycle_cold_ms=%.1f\ncycle_steady_ms=%.1f\ncycle_churn_ms=%.1f\nadmitted_in_churn=%zu\n", cold,
              steady[steady.size() / 2], churn[churn.size() / 2], admitted);
  std::printf("before_per_cycle_ms=%.0f (one read of every active job %.1f ms x %d queued jobs)\n", before,
              reads[reads.size() / 2], queued);
  std::printf("speedup_steady=%.0fx\n", before / std::max(0.01, steady[steady.size() / 2]));
  if (!tmp.empty()) fs::remove_all(tmp);
  return 0;
}
