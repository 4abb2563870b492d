// Replays a seeded synthetic trace through the scheduler (sched/scheduler.h)
// with a simulated clock and no store, twice in one process: the
// scheduler as Trainyard configures it (4 queues with quotas in one cohort,
// DRF, priorities with preemption, backfill) and a FIFO baseline with
// head-of-line blocking (one queue, no priorities, no backfill, no
// preemption) driven by the same code. Prints one key=value line per figure.
//
//   build/bin/sched_sim --nodes 10000 --jobs 100000 --seed 1
//
// It also measures throughput into free capacity (the trace's jobs all
// submitted at once to the empty cluster), as kube-scheduler's
// SchedulingThroughput does: the backlog figures above are bounded by
// how fast capacity frees, not by the scheduler.
//
// The trace: nodes of two shapes (CPU-only 64 cores / 256 GiB, and 8-GPU
// 96 cores / 768 GiB); jobs arriving as a Poisson process at an offered load
// of about 1.1x the cluster, of heavy-tailed sizes (gangs up to 64 replicas)
// and log-normal durations, 3 priority levels, 20 users in 4 queues. Half of
// the jobs carry a walltime hint (an upper bound of their runtime) that lets
// them backfill. A preempted job starts again from scratch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "sched/fair_share.h"
#include "sched/scheduler.h"

using namespace trainyard::sched;

namespace {

constexpr int64_t GiB = 1LL << 30;

struct TraceJob {
  std::string name;
  int user = 0;
  int queue = 0;
  int priority = 0;
  double arrival = 0;
  double duration = 0;              // actual runtime
  std::optional<double> estimate;   // walltime hint (>= duration)
  std::vector<ReplicaNeed> replicas;
};

struct Trace {
  std::vector<Node> nodes;
  std::vector<TraceJob> jobs;
  int users = 20, queues = 4;
};

Trace makeTrace(int n_nodes, int n_jobs, uint64_t seed) {
  Trace t;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  for (int i = 0; i < n_nodes; ++i) {
    Node n;
    n.name = "n" + std::to_string(i);
    bool gpu = i % 5 == 0;  // 20% 8-GPU nodes
    n.allocatable = gpu ? Resources{96000, 768 * GiB, 8} : Resources{64000, 256 * GiB, 0};
    for (int g = 0; g < n.allocatable.gpu; ++g) n.gpu_ids.push_back(g);
    n.labels["shape"] = gpu ? "gpu" : "cpu";
    t.nodes.push_back(std::move(n));
  }
  // Work per job (core-seconds) on average, to set the arrival rate for ~1.1x load on CPUs.
  std::lognormal_distribution<double> dur(std::log(600.0), 1.2);
  std::lognormal_distribution<double> cores(std::log(4.0), 0.8);
  double cpu_capacity = 0;
  for (const auto& n : t.nodes) cpu_capacity += n.allocatable.cpu_millis / 1000.0;
  std::vector<TraceJob> jobs(n_jobs);
  double work = 0;
  for (int i = 0; i < n_jobs; ++i) {
    TraceJob& j = jobs[i];
    j.name = "j" + std::to_string(i);
    j.user = static_cast<int>(u01(rng) * t.users);
    j.queue = j.user % t.queues;
    double p = u01(rng);
    j.priority = p < 0.70 ? 0 : p < 0.95 ? 1 : 2;
    j.duration = std::min(48 * 3600.0, std::max(10.0, dur(rng)));
    if (u01(rng) < 0.5) j.estimate = j.duration * (1 + u01(rng));
    // Gang size: mostly single replicas, a heavy tail up to 64.
    int replicas = 1;
    double g = u01(rng);
    if (g > 0.6) replicas = 1 << std::min(6, static_cast<int>(std::floor(-std::log2(1 - (g - 0.6) / 0.4 + 1e-12) * 1.2)) + 1);
    replicas = std::min(64, replicas);
    bool gpu_job = u01(rng) < 0.3;
    Resources need;
    if (gpu_job) {
      int per = u01(rng) < 0.7 ? 1 : 8;
      need = {per * 10000LL, per * 64 * GiB, per};
    } else {
      int64_t c = std::clamp<int64_t>(static_cast<int64_t>(cores(rng)), 1, 32);
      need = {c * 1000, c * 4 * GiB, 0};
    }
    for (int r = 0; r < replicas; ++r) j.replicas.push_back({"worker-" + std::to_string(r), need});
    work += need.cpu_millis / 1000.0 * replicas * j.duration;
  }
  // Poisson arrivals: rate so that offered CPU work ~ 1.1x capacity.
  double mean_work = work / n_jobs;
  double rate = 1.1 * cpu_capacity / mean_work;  // jobs per second
  std::exponential_distribution<double> gap(rate);
  double now = 0;
  for (auto& j : jobs) {
    now += gap(rng);
    j.arrival = now;
  }
  t.jobs = std::move(jobs);
  return t;
}

struct Result {
  double sched_seconds = 0;  // wall time inside Scheduler::schedule
  int64_t decisions = 0;     // admissions + preemptions
  int64_t cycles = 0;
  int64_t evaluations = 0;   // queued jobs the cycles looked at (admitted, preempting or given a reason)
  int64_t admitted = 0, preemptions = 0, backfilled = 0, unschedulable = 0;
  Amounts util_num{}, util_den{};  // time-integrated allocated / available
  double util[kDims] = {0, 0, 0};
  double wait_p50 = 0, wait_p99 = 0;
  double jain = 0;
  int64_t quota_violations = 0;
  double makespan = 0;
};

SchedulerOptions optionsFor(bool fifo) {
  SchedulerOptions opts;
  opts.explain = false;
  // A cluster of thousands of nodes sees hundreds of arrivals per cycle:
  // look further behind a reservation (Slurm's bf_max_job_test is 500).
  opts.max_backfill_tests = 1000;
  opts.max_examined = 5000;
  if (fifo) opts.backfill = false, opts.preemption = false;
  return opts;
}

// The trace's nodes, and its queues (one cohort, a quarter of the cluster
// each) unless FIFO.
std::vector<QueueSpec> configure(Scheduler& s, const Trace& t, bool fifo) {
  s.setNodes(t.nodes);
  Amounts cap = s.cluster().capacity();
  std::vector<QueueSpec> queues;
  if (!fifo)
    for (int q = 0; q < t.queues; ++q) {
      QueueSpec spec{.name = "team-" + std::string(1, static_cast<char>('a' + q)), .cohort = "research"};
      for (int d = 0; d < kDims; ++d) spec.nominal[d] = cap[d] / t.queues;
      queues.push_back(spec);
    }
  s.setQueues(queues);
  return queues;
}

Request requestFor(const Trace& t, size_t i, const std::vector<QueueSpec>& queues) {
  const auto& j = t.jobs[i];
  Request r;
  r.job = j.name;
  r.seq = static_cast<int64_t>(i);
  r.replicas = j.replicas;
  if (!queues.empty()) {
    r.user = "u" + std::to_string(j.user);
    r.queue = queues[j.queue].name;
    r.priority = j.priority;
    r.duration = j.estimate;
  }
  return r;
}

// Throughput into free capacity, as kube-scheduler's SchedulingThroughput
// measures it: the trace's jobs all submitted at once to the empty
// cluster, cycles run until one admits nothing; admissions per second of
// scheduler time.
struct Burst {
  int64_t admitted = 0, cycles = 0;
  double seconds = 0;
};

Burst burst(const Trace& t, bool fifo) {
  Scheduler s(optionsFor(fifo));
  auto queues = configure(s, t, fifo);
  for (size_t i = 0; i < t.jobs.size(); ++i) s.enqueue(requestFor(t, i, queues));
  Burst b;
  for (double now = 0;; now += 1) {
    auto t0 = std::chrono::steady_clock::now();
    Decision d = s.schedule(now);
    b.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++b.cycles;
    b.admitted += static_cast<int64_t>(d.admitted.size());
    if (d.admitted.empty()) break;
  }
  return b;
}

Result simulate(const Trace& t, bool fifo) {
  Scheduler s(optionsFor(fifo));
  auto queues = configure(s, t, fifo);
  Amounts cap = s.cluster().capacity();

  std::vector<double> admitted_at(t.jobs.size(), -1);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < t.jobs.size(); ++i) index[t.jobs[i].name] = i;
  auto requestOf = [&](size_t i) { return requestFor(t, i, queues); };
  // Completions: (time, job index, generation) — a preempted run's completion is stale.
  using Ev = std::tuple<double, size_t, int>;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<>> ends;
  std::vector<int> generation(t.jobs.size(), 0);
  std::vector<Amounts> user_use(t.users, Amounts{});
  std::vector<int> user_pending(t.users, 0);
  Amounts used{};

  Result res;
  size_t next = 0;
  double now = 0, last = 0;
  const double horizon = t.jobs.back().arrival;  // measure the steady state, not the drain
  double jain_weighted = 0, jain_time = 0;
  auto integrate = [&](double to) {
    double from = std::min(last, horizon), end = std::min(to, horizon);
    if (end > from) {
      double dt = end - from;
      for (int d = 0; d < kDims; ++d) {
        res.util_num[d] += static_cast<int64_t>(static_cast<double>(used[d]) / 1e3 * dt);
        res.util_den[d] += static_cast<int64_t>(static_cast<double>(cap[d]) / 1e3 * dt);
      }
      std::vector<double> shares;
      for (int u = 0; u < t.users; ++u)
        if (user_pending[u] > 0 || user_use[u] != Amounts{}) shares.push_back(dominantShare(user_use[u], cap));
      if (!shares.empty()) jain_weighted += jainIndex(shares) * dt, jain_time += dt;
    }
    last = to;
  };
  auto release = [&](size_t i) {
    const auto& a = s.running().at(t.jobs[i].name);
    auto use = amounts(a.total());
    used -= use;
    user_use[t.jobs[i].user] -= use;
    s.release(t.jobs[i].name);
  };

  while (next < t.jobs.size() || !ends.empty() || s.pending() > 0) {
    double t_arrival = next < t.jobs.size() ? t.jobs[next].arrival : INFINITY;
    double t_end = ends.empty() ? INFINITY : std::get<0>(ends.top());
    if (std::isinf(t_arrival) && std::isinf(t_end)) break;  // pending jobs that can never start
    // One cycle per simulated second at most, with every event of that
    // second (Volcano's default schedulePeriod is 1 s).
    now = std::ceil(std::min(t_arrival, t_end));
    integrate(now);
    while (!ends.empty() && std::get<0>(ends.top()) <= now) {
      auto [when, i, gen] = ends.top();
      ends.pop();
      if (gen != generation[i]) continue;
      release(i);
    }
    while (next < t.jobs.size() && t.jobs[next].arrival <= now) {
      s.enqueue(requestOf(next));
      user_pending[t.jobs[next].user]++;
      ++next;
    }
    auto t0 = std::chrono::steady_clock::now();
    Decision d = s.schedule(now);
    res.sched_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++res.cycles;
    res.evaluations += d.examined;
    res.backfilled += d.backfilled;
    res.unschedulable += static_cast<int64_t>(d.unschedulable.size());
    for (const auto& u : d.unschedulable) user_pending[t.jobs[index.at(u.job)].user]--;
    for (const auto& a : d.admitted) {
      size_t i = index.at(a.job);
      auto use = amounts(a.total());
      used += use;
      user_use[t.jobs[i].user] += use;
      user_pending[t.jobs[i].user]--;
      if (admitted_at[i] < 0) admitted_at[i] = now;
      ends.push({now + t.jobs[i].duration, i, generation[i]});
      ++res.admitted;
    }
    for (const auto& p : d.preempted) {  // stops at once, queued again with its place
      size_t i = index.at(p.job);
      ++generation[i];
      release(i);
      s.enqueue(requestOf(i));
      user_pending[t.jobs[i].user]++;
      ++res.preemptions;
    }
    res.decisions += static_cast<int64_t>(d.admitted.size() + d.preempted.size());
    if (!fifo)
      for (const auto& q : queues) {
        const auto& use = s.quotas().usage(q.name);
        Amounts total{};
        for (const auto& o : queues) total += s.quotas().usage(o.name);
        for (int dim = 0; dim < kDims; ++dim)
          if (total[dim] > cap[dim] || use[dim] < 0) ++res.quota_violations;
      }
  }
  res.makespan = now;
  for (int d = 0; d < kDims; ++d)
    res.util[d] = res.util_den[d] > 0 ? static_cast<double>(res.util_num[d]) / static_cast<double>(res.util_den[d]) : 0;
  std::vector<double> waits;
  for (size_t i = 0; i < t.jobs.size(); ++i)
    if (admitted_at[i] >= 0) waits.push_back(admitted_at[i] - t.jobs[i].arrival);
  std::sort(waits.begin(), waits.end());
  if (!waits.empty()) {
    res.wait_p50 = waits[waits.size() / 2];
    res.wait_p99 = waits[std::min(waits.size() - 1, waits.size() * 99 / 100)];
  }
  res.jain = jain_time > 0 ? jain_weighted / jain_time : 1;
  return res;
}

void print(const char* prefix, const Result& r) {
  std::printf("%s.decisions_per_second=%.0f\n", prefix, r.decisions / std::max(1e-9, r.sched_seconds));
  std::printf("%s.scheduler_seconds=%.2f\n", prefix, r.sched_seconds);
  std::printf("%s.cycles=%lld\n", prefix, static_cast<long long>(r.cycles));
  std::printf("%s.evaluations_per_second=%.0f\n", prefix, r.evaluations / std::max(1e-9, r.sched_seconds));
  std::printf("%s.admitted=%lld\n", prefix, static_cast<long long>(r.admitted));
  std::printf("%s.utilisation_cpu=%.3f\n", prefix, r.util[0]);
  std::printf("%s.utilisation_memory=%.3f\n", prefix, r.util[1]);
  std::printf("%s.utilisation_gpu=%.3f\n", prefix, r.util[2]);
  std::printf("%s.wait_p50_seconds=%.0f\n", prefix, r.wait_p50);
  std::printf("%s.wait_p99_seconds=%.0f\n", prefix, r.wait_p99);
  std::printf("%s.jain_index_users=%.3f\n", prefix, r.jain);
  std::printf("%s.preemptions=%lld\n", prefix, static_cast<long long>(r.preemptions));
  std::printf("%s.backfilled=%lld\n", prefix, static_cast<long long>(r.backfilled));
  std::printf("%s.unschedulable=%lld\n", prefix, static_cast<long long>(r.unschedulable));
  std::printf("%s.quota_violations=%lld\n", prefix, static_cast<long long>(r.quota_violations));
  std::printf("%s.makespan_hours=%.1f\n", prefix, r.makespan / 3600);
}

}  // namespace

int main(int argc, char** argv) {
  int nodes = 10000, jobs = 100000;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--nodes")) nodes = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--jobs")) jobs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: sched_sim [--nodes N] [--jobs N] [--seed S]\n");
      return 2;
    }
  }
  if (nodes < 1 || jobs < 1) {
    std::fprintf(stderr, "sched_sim: --nodes and --jobs must be positive\n");
    return 2;
  }
  Trace t = makeTrace(nodes, jobs, seed);
  std::printf("nodes=%d\njobs=%d\nseed=%llu\n", nodes, jobs, static_cast<unsigned long long>(seed));
  Result ours = simulate(t, false);
  print("trainyard", ours);
  Result fifo = simulate(t, true);
  print("fifo", fifo);
  std::printf("utilisation_cpu_gain_points=%.1f\n", 100 * (ours.util[0] - fifo.util[0]));
  std::printf("utilisation_gpu_gain_points=%.1f\n", 100 * (ours.util[2] - fifo.util[2]));
  std::printf("wait_p50_ratio_fifo_over_trainyard=%.2f\n", fifo.wait_p50 / std::max(1.0, ours.wait_p50));
  for (bool f : {false, true}) {
    Burst b = burst(t, f);
    const char* who = f ? "fifo" : "trainyard";
    std::printf("%s.burst_admitted=%lld\n", who, static_cast<long long>(b.admitted));
    std::printf("%s.burst_cycles=%lld\n", who, static_cast<long long>(b.cycles));
    std::printf("%s.burst_admissions_per_second=%.0f\n", who, b.admitted / std::max(1e-9, b.seconds));
  }
  return 0;
}
