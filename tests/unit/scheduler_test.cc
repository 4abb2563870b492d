#include "sched/scheduler.h"

#include <random>

#include <gtest/gtest.h>

#include "sched/fair_share.h"

using namespace trainyard::sched;

namespace {
constexpr int64_t GiB = 1LL << 30;

Node node(const std::string& name, int cores, int gpus = 0, int64_t mem = 16 * GiB) {
  Node n{name, {cores * 1000LL, mem, gpus}, {}};
  for (int i = 0; i < gpus; ++i) n.gpu_ids.push_back(i);
  return n;
}
std::vector<Node> nodes(int count, int cores, int gpus = 0) {
  std::vector<Node> v;
  for (int i = 0; i < count; ++i) v.push_back(node("n" + std::to_string(i + 1), cores, gpus));
  return v;
}
Request req(const std::string& job, int replicas, double cpu, int prio = 0, int64_t seq = 0, int gpu = 0) {
  Request r{.job = job, .priority = prio, .seq = seq};
  for (int i = 0; i < replicas; ++i)
    r.replicas.push_back({"worker-" + std::to_string(i), {static_cast<int64_t>(cpu * 1000), 0, gpu}});
  return r;
}
Allocation running(const std::string& job, const std::string& on, double cpu, double started = 0,
                   std::optional<double> end = std::nullopt) {
  Allocation a{.job = job};
  a.placements.push_back({"worker-0", on, {static_cast<int64_t>(cpu * 1000), 0, 0}, {}});
  a.started_at = started;
  a.expected_end = end;
  return a;
}
std::vector<std::string> admitted(const Decision& d) {
  std::vector<std::string> v;
  for (const auto& a : d.admitted) v.push_back(a.job);
  return v;
}
std::string reason(const Decision& d, const std::string& job) {
  for (const auto& w : d.waiting)
    if (w.job == job) return w.reason + " (position " + std::to_string(w.position) + ")";
  return "<not waiting>";
}
std::set<std::string> nodesOf(const Allocation& a) {
  std::set<std::string> s;
  for (const auto& p : a.placements) s.insert(p.node);
  return s;
}
}  // namespace

TEST(Scheduler, AdmitsInPriorityThenSubmissionOrder) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  for (auto r : {req("late-low", 1, 1, 0, 3), req("early-low", 1, 1, 0, 1), req("high", 1, 1, 10, 5)}) s.enqueue(r);
  EXPECT_EQ(admitted(s.schedule(0)), (std::vector<std::string>{"high", "early-low", "late-low"}));
}

TEST(Scheduler, HeadOfQueueBlocksJobsWithoutAKnownDuration) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  s.assume(running("running", "n1", 2));
  s.enqueue(req("big", 1, 3, 0, 1));
  s.enqueue(req("small", 1, 1, 0, 2));
  auto d = s.schedule(0);
  EXPECT_TRUE(d.admitted.empty());
  EXPECT_NE(reason(d, "big").find("0/1 nodes available: 1 insufficient cpu (needs 3, max free 2)"), std::string::npos)
      << reason(d, "big");
  EXPECT_NE(reason(d, "small").find("waiting behind big"), std::string::npos) << reason(d, "small");
  EXPECT_NE(reason(d, "small").find("(position 2)"), std::string::npos) << reason(d, "small");
}

TEST(Scheduler, BackfillsOnlyJobsThatEndBeforeTheReservedStart) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  s.assume(running("running", "n1", 2, 0, 100.0));  // ends at t=100
  s.enqueue(req("gang", 2, 2, 0, 1));               // needs the whole node: starts at 100
  auto quick = req("quick", 1, 1, 0, 2);
  quick.duration = 50;  // ends at 60 < 100
  auto slow = req("slow", 1, 1, 0, 3);
  slow.duration = 500;
  s.enqueue(quick);
  s.enqueue(slow);
  auto d = s.schedule(10);
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"quick"}));
  EXPECT_EQ(d.backfilled, 1);
  EXPECT_NE(reason(d, "gang").find("expected to start in 90 s"), std::string::npos) << reason(d, "gang");
  EXPECT_NE(reason(d, "slow").find("would not end before it starts"), std::string::npos) << reason(d, "slow");
}

TEST(Scheduler, NoBackfillWhenTheReservedStartIsUnknown) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  s.assume(running("running", "n1", 2));  // no expected end
  s.enqueue(req("gang", 2, 2, 0, 1));
  auto quick = req("quick", 1, 1, 0, 2);
  quick.duration = 1;
  s.enqueue(quick);
  auto d = s.schedule(0);
  EXPECT_TRUE(d.admitted.empty());
  EXPECT_NE(reason(d, "quick").find("unknown"), std::string::npos) << reason(d, "quick");
}

TEST(Scheduler, NeverFittingJobIsUnschedulableAndDoesNotBlock) {
  Scheduler s;
  s.setNodes(nodes(2, 2));
  s.enqueue(req("huge", 1, 64, 0, 1));
  s.enqueue(req("wide", 8, 1, 0, 2));  // each replica fits, the gang never does (4 slots)
  s.enqueue(req("ok", 1, 1, 0, 3));
  auto d = s.schedule(0);
  ASSERT_EQ(d.unschedulable.size(), 2u);
  EXPECT_EQ(d.unschedulable[0].job, "huge");
  EXPECT_NE(d.unschedulable[0].reason.find("needs 64, 2 available"), std::string::npos) << d.unschedulable[0].reason;
  EXPECT_NE(d.unschedulable[1].reason.find("its gang has 8 replicas"), std::string::npos) << d.unschedulable[1].reason;
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"ok"}));
  EXPECT_EQ(s.pending(), 0u);
}

TEST(Scheduler, PackPutsAGangOnTheFewestNodes) {
  Scheduler s;
  s.setNodes(nodes(4, 4));
  s.assume(running("other", "n1", 1));  // n1 holds only 1 more 2-cpu replica
  s.enqueue(req("ddp", 4, 2, 0, 1));
  auto d = s.schedule(0);
  ASSERT_EQ(d.admitted.size(), 1u);
  EXPECT_EQ(d.admitted[0].placements.size(), 4u);
  EXPECT_EQ(nodesOf(d.admitted[0]).size(), 2u);
  EXPECT_FALSE(nodesOf(d.admitted[0]).count("n1"));
}

TEST(Scheduler, SpreadPutsOneReplicaPerNode) {
  Scheduler s;
  s.setNodes(nodes(4, 4));
  auto r = req("ps", 4, 1, 0, 1);
  r.policy = PlacementPolicy::Spread;
  s.enqueue(r);
  auto d = s.schedule(0);
  ASSERT_EQ(d.admitted.size(), 1u);
  EXPECT_EQ(nodesOf(d.admitted[0]).size(), 4u);
}

TEST(Scheduler, GangIsAllOrNothing) {
  Scheduler s;
  s.setNodes(nodes(2, 4));
  s.assume(running("a", "n1", 1));
  s.enqueue(req("gang", 2, 4, 0, 1));  // one node's worth free on n2 only
  auto d = s.schedule(0);
  EXPECT_TRUE(d.admitted.empty());
  EXPECT_NE(reason(d, "gang").find("gang of 2 replicas: only 1 fit"), std::string::npos) << reason(d, "gang");
  // Nothing of the gang is held: a 3-cpu job still fits on n1.
  s.dequeue("gang");
  s.enqueue(req("three", 1, 3, 0, 2));
  EXPECT_EQ(admitted(s.schedule(0)), (std::vector<std::string>{"three"}));
}

TEST(Scheduler, NodeSelectorAndUnschedulableNodes) {
  auto ns = nodes(3, 4);
  ns[0].labels["accelerator"] = "a100";
  ns[1].labels["accelerator"] = "a100";
  ns[1].schedulable = false;  // drained
  Scheduler s;
  s.setNodes(ns);
  auto r = req("picky", 1, 1, 0, 1);
  r.node_selector = {{"accelerator", "a100"}};
  auto r2 = r;
  r2.job = "picky2";
  r2.seq = 2;
  r2.replicas[0].need.cpu_millis = 4000;
  s.enqueue(r);
  s.enqueue(r2);
  auto d = s.schedule(0);
  ASSERT_EQ(admitted(d), (std::vector<std::string>{"picky"}));
  EXPECT_EQ(*nodesOf(d.admitted[0]).begin(), "n1");
  EXPECT_NE(reason(d, "picky2").find("1 unschedulable (drained or down), 1 did not match the node selector"), std::string::npos)
      << reason(d, "picky2");
  auto bad = req("nowhere", 1, 1, 0, 3);
  bad.node_selector = {{"accelerator", "tpu"}};
  s.enqueue(bad);
  auto d2 = s.schedule(0);
  ASSERT_EQ(d2.unschedulable.size(), 1u);
  EXPECT_NE(d2.unschedulable[0].reason.find("node selector"), std::string::npos);
}

TEST(Scheduler, GpusAreExclusiveAndSharesPackOntoOneDevice) {
  Scheduler s({.gpu_sharing = true});
  s.setNodes({node("g1", 16, 2)});
  s.enqueue(req("whole", 1, 1, 0, 1, 1));
  auto d = s.schedule(0);
  ASSERT_EQ(d.admitted.size(), 1u);
  EXPECT_EQ(d.admitted[0].placements[0].gpu_ids, (std::vector<int>{0}));
  for (int i = 0; i < 5; ++i) {
    auto r = req("quarter" + std::to_string(i), 1, 1, 0, 10 + i);
    r.replicas[0].need.gpu_share = 250;
    s.enqueue(r);
  }
  d = s.schedule(0);
  ASSERT_EQ(d.admitted.size(), 4u);  // four quarters fill device 1; never device 0, held whole
  for (const auto& a : d.admitted) EXPECT_EQ(a.placements[0].gpu_ids, (std::vector<int>{1}));
  EXPECT_NE(reason(d, "quarter4").find("insufficient gpu"), std::string::npos) << reason(d, "quarter4");
}

TEST(Scheduler, GpuSharesAreRefusedWhenSharingIsOff) {
  Scheduler s;
  s.setNodes({node("g1", 16, 2)});
  auto r = req("share", 1, 1);
  r.replicas[0].need.gpu_share = 300;
  s.enqueue(r);
  auto d = s.schedule(0);
  ASSERT_EQ(d.unschedulable.size(), 1u);
  EXPECT_NE(d.unschedulable[0].reason.find("GPU sharing is off"), std::string::npos);
}

TEST(Scheduler, QueueQuotaAndBorrowingWithinACohort) {
  Scheduler s;
  s.setNodes(nodes(4, 8));
  QueueSpec a{.name = "team-a", .cohort = "research", .nominal = {8000, kUnlimited, 0}};
  QueueSpec b{.name = "team-b", .cohort = "research", .nominal = {8000, kUnlimited, 0}};
  a.borrowing_limit = {4000, kUnlimited, kUnlimited};
  s.setQueues({a, b});
  auto job = [](const std::string& n, const std::string& q, int seq, double cpu) {
    auto r = req(n, 1, cpu, 0, seq);
    r.queue = q;
    return r;
  };
  s.enqueue(job("a1", "team-a", 1, 8));
  s.enqueue(job("a2", "team-a", 2, 4));   // borrows 4 of team-b's idle quota
  s.enqueue(job("a3", "team-a", 3, 1));   // over the borrowing limit
  auto d = s.schedule(0);
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_NE(reason(d, "a3").find("queue team-a over quota for cpu (12/8, needs 1 more) and its borrowing limit is 4"),
            std::string::npos)
      << reason(d, "a3");
  EXPECT_TRUE(s.quotas().borrowing("team-a"));
  // team-b may still use what it did not lend.
  s.enqueue(job("b1", "team-b", 4, 4));
  EXPECT_EQ(admitted(s.schedule(0)), (std::vector<std::string>{"b1"}));
  s.enqueue(job("b2", "team-b", 5, 1));
  auto d2 = s.schedule(0);
  // b2 is within team-b's quota but it is lent: team-a's borrower is reclaimed.
  ASSERT_EQ(d2.preempted.size(), 1u);
  EXPECT_EQ(d2.preempted[0].job, "a2");
  EXPECT_NE(reason(d2, "b2").find("preempting 1 job"), std::string::npos) << reason(d2, "b2");
  s.release("a2");
  // b2 goes first (team-b's share is smaller); a3 now fits within team-a's borrowing limit.
  EXPECT_EQ(admitted(s.schedule(1)), (std::vector<std::string>{"b2", "a3"}));
}

TEST(Scheduler, LendingLimitKeepsQuotaForItsOwner) {
  Scheduler s;
  s.setNodes(nodes(2, 8));
  QueueSpec a{.name = "a", .cohort = "c", .nominal = {8000, kUnlimited, kUnlimited}};
  QueueSpec b{.name = "b", .cohort = "c", .nominal = {8000, kUnlimited, kUnlimited}};
  b.lending_limit = {2000, kUnlimited, kUnlimited};
  s.setQueues({a, b});
  auto r = req("big", 2, 6, 0, 1);
  r.queue = "a";
  auto r2 = req("fits", 2, 5, 0, 2);
  r2.queue = "a";
  s.enqueue(r);
  auto d = s.schedule(0);
  ASSERT_TRUE(d.admitted.empty());
  ASSERT_EQ(d.unschedulable.size(), 1u);  // 8 own + at most 2 lent
  EXPECT_NE(d.unschedulable[0].reason.find("can never hold more than 10"), std::string::npos) << d.unschedulable[0].reason;
  s.enqueue(r2);
  EXPECT_EQ(admitted(s.schedule(0)), (std::vector<std::string>{"fits"}));
}

TEST(Scheduler, HigherPriorityPreemptsLowerOnceAndWaitsForIt) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  auto low = running("low", "n1", 3, 0);
  s.assume(low);
  auto low2 = running("low-newer", "n1", 1, 5);
  s.assume(low2);
  s.enqueue(req("urgent", 1, 1, 10, 1));
  auto d = s.schedule(10);
  ASSERT_EQ(d.preempted.size(), 1u);
  EXPECT_EQ(d.preempted[0].job, "low-newer");  // the newest job that frees enough
  EXPECT_NE(d.preempted[0].reason.find("urgent"), std::string::npos);
  // Next cycle: the victim is still stopping; nobody else is preempted.
  auto d2 = s.schedule(11);
  EXPECT_TRUE(d2.preempted.empty());
  EXPECT_NE(reason(d2, "urgent").find("preempt"), std::string::npos) << reason(d2, "urgent");
  s.release("low-newer");
  EXPECT_EQ(admitted(s.schedule(12)), (std::vector<std::string>{"urgent"}));
}

TEST(Scheduler, SamePriorityNeverPreempts) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  s.assume(running("first", "n1", 4));
  s.enqueue(req("second", 1, 1, 0, 1));
  auto d = s.schedule(0);
  EXPECT_TRUE(d.preempted.empty());
  EXPECT_TRUE(d.admitted.empty());
}

TEST(Scheduler, UsersShareAQueueByDominantShare) {
  Scheduler s;
  s.setNodes(nodes(1, 8));
  auto a = running("alice-running", "n1", 4);
  a.user = "alice";
  s.assume(a);
  auto r1 = req("alice-2", 1, 1, 0, 1);
  r1.user = "alice";
  auto r2 = req("bob-1", 1, 1, 0, 2);
  r2.user = "bob";
  auto r3 = req("bob-2", 1, 1, 0, 3);
  r3.user = "bob";
  for (auto& r : {r1, r2, r3}) s.enqueue(r);
  // bob (share 0) goes before alice's earlier submission, twice; alice's job last.
  EXPECT_EQ(admitted(s.schedule(0)), (std::vector<std::string>{"bob-1", "bob-2", "alice-2"}));
}

// userWeights: inside one queue, a user of weight 3 gets three times the share.
TEST(Scheduler, UsersShareByWeightedDominantShare) {
  Scheduler s;
  s.setNodes(nodes(1, 8));
  s.setQueues({QueueSpec{.name = "default", .user_weights = {{"alice", 3}}}});
  for (int i = 0; i < 8; ++i) {
    auto a = req("a" + std::to_string(i), 1, 1, 0, i);
    a.user = "alice";
    auto b = req("b" + std::to_string(i), 1, 1, 0, 100 + i);
    b.user = "bob";
    s.enqueue(a);
    s.enqueue(b);
  }
  auto d = s.schedule(0);
  int alice = 0;
  for (const auto& a : d.admitted) alice += a.user == "alice";
  EXPECT_EQ(d.admitted.size(), 8u);
  EXPECT_EQ(alice, 6);  // 3:1
}

TEST(Scheduler, QueuesShareByWeightedDominantShare) {
  Scheduler s;
  s.setNodes(nodes(1, 6));
  s.setQueues({QueueSpec{.name = "heavy", .weight = 2}, QueueSpec{.name = "light", .weight = 1}});
  for (int i = 0; i < 6; ++i) {
    auto h = req("h" + std::to_string(i), 1, 1, 0, i);
    h.queue = "heavy";
    auto l = req("l" + std::to_string(i), 1, 1, 0, 100 + i);
    l.queue = "light";
    s.enqueue(h);
    s.enqueue(l);
  }
  auto d = s.schedule(0);
  int heavy = 0;
  for (const auto& a : d.admitted) heavy += a.queue == "heavy";
  EXPECT_EQ(d.admitted.size(), 6u);
  EXPECT_EQ(heavy, 4);  // 2:1
}

TEST(Scheduler, UnknownQueueAndForbiddenUserAreUnschedulable) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  s.setQueues({QueueSpec{.name = "team-a", .users = {"alice"}}});
  auto r = req("x", 1, 1, 0, 1);
  r.queue = "nope";
  auto r2 = req("y", 1, 1, 0, 2);
  r2.queue = "team-a";
  r2.user = "bob";
  s.enqueue(r);
  s.enqueue(r2);
  auto d = s.schedule(0);
  ASSERT_EQ(d.unschedulable.size(), 2u);
  EXPECT_NE(d.unschedulable[0].reason.find("queue nope does not exist"), std::string::npos);
  EXPECT_NE(d.unschedulable[1].reason.find("user bob may not submit to queue team-a"), std::string::npos);
}

TEST(Scheduler, NodesThatVanishFreeNothingAndHoldNothing) {
  Scheduler s;
  s.setNodes(nodes(1, 4));
  s.assume(running("ghost", "gone", 4));
  s.enqueue(req("a", 1, 4));
  EXPECT_EQ(admitted(s.schedule(0)), (std::vector<std::string>{"a"}));
}

TEST(FairShare, JainIndex) {
  EXPECT_DOUBLE_EQ(jainIndex({1, 1, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(jainIndex({1, 0, 0, 0}), 0.25);
  EXPECT_DOUBLE_EQ(dominantShare({500, 0, 0}, {1000, 100, 0}, 1), 0.5);
  EXPECT_DOUBLE_EQ(dominantShare({500, 80, 0}, {1000, 100, 0}, 2), 0.4);
}

// Property: whatever arrives and ends, no node is over-committed, no queue
// exceeds nominal + borrowing limit, the cohort never lends more than it
// has, and every admitted gang is placed whole.
TEST(Scheduler, PropertyNeverOvercommitsAndGangsAreWhole) {
  for (int seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    std::vector<Node> ns;
    for (int i = 0; i < pick(3, 12); ++i) ns.push_back(node("n" + std::to_string(i), pick(2, 16), pick(0, 4), pick(4, 64) * GiB));
    std::vector<QueueSpec> qs;
    for (int i = 0; i < 3; ++i) {
      QueueSpec q{.name = "q" + std::to_string(i), .cohort = i < 2 ? "c" : "", .weight = static_cast<double>(pick(1, 3))};
      q.nominal = {pick(4, 40) * 1000LL, pick(16, 200) * GiB, pick(0, 8) * 1000LL};
      q.borrowing_limit = {pick(0, 20) * 1000LL, kUnlimited, pick(0, 4) * 1000LL};
      qs.push_back(q);
    }
    Scheduler s({.gpu_sharing = true, .max_backfill_tests = 1000});
    s.setNodes(ns);
    s.setQueues(qs);
    int next = 0;
    double now = 0;
    for (int cycle = 0; cycle < 60; ++cycle, now += 1) {
      for (int k = pick(0, 4); k > 0; --k) {
        Request r = req("j" + std::to_string(next), pick(1, 6), pick(1, 8) * 0.5, pick(0, 2), next);
        ++next;
        r.queue = qs[pick(0, 2)].name;
        r.user = "u" + std::to_string(pick(0, 4));
        r.policy = pick(0, 1) ? PlacementPolicy::Pack : PlacementPolicy::Spread;
        int g = pick(0, 5);
        for (auto& rep : r.replicas) {
          rep.need.memory_bytes = pick(0, 8) * GiB;
          if (g == 1) rep.need.gpu = 1;
          if (g == 2) rep.need.gpu_share = 250;
        }
        if (pick(0, 1)) r.duration = pick(1, 20);
        s.enqueue(r);
      }
      auto d = s.schedule(now);
      for (const auto& a : d.admitted) {
        int expect = 0;
        ASSERT_FALSE(a.placements.empty());
        std::set<std::string> names;
        for (const auto& p : a.placements) names.insert(p.replica), ++expect;
        EXPECT_EQ(names.size(), a.placements.size()) << a.job;
      }
      for (const auto& v : d.preempted) s.release(v.job);  // victims stop at once here
      // Random ends.
      std::vector<std::string> ids;
      for (const auto& [job, a] : s.running()) ids.push_back(job);
      for (const auto& job : ids)
        if (pick(0, 3) == 0) s.release(job);
      for (const auto& n : s.cluster().nodes()) {
        ASSERT_GE(n.free.cpu_millis, 0) << "seed " << seed << " node " << n.node.name;
        ASSERT_GE(n.free.memory_bytes, 0) << "seed " << seed;
        for (size_t g = 0; g < n.device_use.size(); ++g) ASSERT_LE(n.device_use[g], 1000) << "seed " << seed;
      }
      Amounts lent{}, lendable{};
      for (const auto& q : qs) {
        const auto& use = s.quotas().usage(q.name);
        for (int dim = 0; dim < kDims; ++dim) {
          int64_t limit = q.cohort.empty() ? q.nominal[dim] : q.nominal[dim] + q.borrowing_limit[dim];
          if (q.nominal[dim] < kUnlimited) ASSERT_LE(use[dim], limit) << "seed " << seed << " queue " << q.name;
          if (!q.cohort.empty()) {
            lent[dim] += std::max<int64_t>(0, use[dim]);
            lendable[dim] += q.nominal[dim];
          }
        }
      }
      for (int dim = 0; dim < kDims; ++dim) ASSERT_LE(lent[dim], lendable[dim]) << "seed " << seed;
    }
  }
}
