#include "sched/scheduler.h"

#include <gtest/gtest.h>

using namespace trainyard::sched;

namespace {
Node node(int cores, int gpus = 0) {
  Node n{"n1", {cores * 1000LL, 16LL << 30, gpus}, {}};
  for (int i = 0; i < gpus; ++i) n.gpu_ids.push_back(i);
  return n;
}
Request req(const std::string& job, int cpu, int prio = 0, int64_t seq = 0, int gpu = 0) {
  return {job, prio, seq, {cpu * 1000LL, 0, gpu}};
}
std::vector<std::string> admitted(const Decision& d) {
  std::vector<std::string> v;
  for (const auto& a : d.admitted) v.push_back(a.job);
  return v;
}
}  // namespace

TEST(Scheduler, AdmitsInPriorityThenSubmissionOrder) {
  auto d = schedule({node(4)}, {}, {req("late-low", 1, 0, 3), req("early-low", 1, 0, 1), req("high", 1, 10, 5)});
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"high", "early-low", "late-low"}));
}

TEST(Scheduler, HeadOfQueueBlocksSmallerJobsBehindIt) {
  // 2 cores in use of 4: "big" (3) cannot start; "small" (1) would fit but must not overtake.
  std::vector<Allocation> used{{"running", "n1", {2000, 0, 0}, {}}};
  auto d = schedule({node(4)}, used, {req("big", 3, 0, 1), req("small", 1, 0, 2)});
  EXPECT_TRUE(d.admitted.empty());
  ASSERT_EQ(d.waiting.size(), 2u);
  EXPECT_EQ(d.waiting[0].job, "big");
  EXPECT_NE(d.waiting[0].reason.find("cpu (needs 3, 2 available)"), std::string::npos) << d.waiting[0].reason;
  EXPECT_EQ(d.waiting[1].job, "small");
}

TEST(Scheduler, NeverFittingJobIsUnschedulableAndDoesNotBlock) {
  auto d = schedule({node(2)}, {}, {req("huge", 64, 0, 1), req("ok", 1, 0, 2)});
  ASSERT_EQ(d.unschedulable.size(), 1u);
  EXPECT_EQ(d.unschedulable[0].job, "huge");
  EXPECT_NE(d.unschedulable[0].reason.find("needs 64, 2 available"), std::string::npos);
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"ok"}));
}

TEST(Scheduler, GpusAreExclusive) {
  std::vector<Allocation> used{{"a", "n1", {1000, 0, 1}, {0}}};
  auto d = schedule({node(8, 3)}, used, {req("b", 1, 0, 1, 2), req("c", 1, 0, 2, 1)});
  ASSERT_EQ(d.admitted.size(), 1u);
  EXPECT_EQ(d.admitted[0].job, "b");
  EXPECT_EQ(d.admitted[0].gpu_ids, (std::vector<int>{1, 2}));
  ASSERT_EQ(d.waiting.size(), 1u);
  EXPECT_EQ(d.waiting[0].job, "c");
  EXPECT_NE(d.waiting[0].reason.find("gpu"), std::string::npos);
}

TEST(Scheduler, MemoryCounts) {
  Node n{"n1", {8000, 4LL << 30, 0}, {}};
  auto d = schedule({n}, {}, {{"a", 0, 1, {1000, 3LL << 30, 0}}, {"b", 0, 2, {1000, 2LL << 30, 0}}});
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"a"}));
  ASSERT_EQ(d.waiting.size(), 1u);
  EXPECT_NE(d.waiting[0].reason.find("memory"), std::string::npos);
}

TEST(Scheduler, AllocationsOnVanishedNodesAreIgnored) {
  std::vector<Allocation> used{{"ghost", "gone", {4000, 0, 0}, {}}};
  auto d = schedule({node(4)}, used, {req("a", 4)});
  EXPECT_EQ(admitted(d), (std::vector<std::string>{"a"}));
}
