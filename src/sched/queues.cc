#include "sched/queues.h"

#include <algorithm>

#include <fmt/format.h>

namespace trainyard::sched {
namespace {

int64_t sat(int64_t a, int64_t b) { return a >= kUnlimited || b >= kUnlimited ? kUnlimited : a + b; }

}  // namespace

void QuotaBook::setQueues(std::vector<QueueSpec> queues) {
  if (queues.empty()) queues.emplace_back().name = "default";
  queues_ = std::move(queues);
  index_.clear();
  pools_.clear();
  for (size_t i = 0; i < queues_.size(); ++i) {
    auto& q = queues_[i];
    for (int d = 0; d < kDims; ++d) q.lending_limit[d] = std::min(q.lending_limit[d], q.nominal[d]);
    index_[q.name] = i;
    usage_.try_emplace(q.name, Amounts{});
    if (q.cohort.empty()) continue;
    auto& pool = pools_[q.cohort];
    for (int d = 0; d < kDims; ++d) pool.lendable[d] = sat(pool.lendable[d], q.lending_limit[d]);
  }
  for (auto& [name, use] : usage_) {
    const QueueSpec* q = queue(name);
    if (!q || q->cohort.empty()) continue;
    auto keep = guaranteed(*q);
    for (int d = 0; d < kDims; ++d) pools_[q->cohort].lent[d] += beyond(use[d], keep[d]);
  }
}

const QueueSpec* QuotaBook::queue(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &queues_[it->second];
}

Amounts QuotaBook::guaranteed(const QueueSpec& q) const {
  Amounts g{};
  for (int d = 0; d < kDims; ++d)
    g[d] = q.nominal[d] >= kUnlimited ? kUnlimited : q.nominal[d] - q.lending_limit[d];
  return g;
}

void QuotaBook::add(const std::string& queue_name, const Amounts& a) {
  auto& use = usage_[queue_name];
  const QueueSpec* q = queue(queue_name);
  if (q && !q->cohort.empty()) {
    auto keep = guaranteed(*q);
    auto& pool = pools_[q->cohort];
    for (int d = 0; d < kDims; ++d) pool.lent[d] += beyond(use[d] + a[d], keep[d]) - beyond(use[d], keep[d]);
  }
  use += a;
}

void QuotaBook::remove(const std::string& queue_name, const Amounts& a) {
  Amounts neg{};
  for (int d = 0; d < kDims; ++d) neg[d] = -a[d];
  add(queue_name, neg);
}

const Amounts& QuotaBook::usage(const std::string& queue_name) const {
  static const Amounts kZero{};
  auto it = usage_.find(queue_name);
  return it == usage_.end() ? kZero : it->second;
}

bool QuotaBook::borrowing(const std::string& queue_name) const {
  const QueueSpec* q = queue(queue_name);
  if (!q) return false;
  const auto& use = usage(queue_name);
  for (int d = 0; d < kDims; ++d)
    if (q->nominal[d] < kUnlimited && use[d] > q->nominal[d]) return true;
  return false;
}

std::optional<std::string> QuotaBook::refuses(const std::string& queue_name, const Amounts& need, bool explain) const {
  const QueueSpec* q = queue(queue_name);
  if (!q) return fmt::format("queue {} does not exist", queue_name);
  const auto& use = usage(queue_name);
  for (int d = 0; d < kDims; ++d) {
    if (need[d] == 0 || q->nominal[d] >= kUnlimited) continue;
    int64_t after = use[d] + need[d];
    if (after <= q->nominal[d]) continue;  // within its own quota (lent-out part reclaimable by preemption)
    if (!explain) {
      if (q->cohort.empty()) return "";
      if (q->borrowing_limit[d] < kUnlimited && after - q->nominal[d] > q->borrowing_limit[d]) return "";
      const auto& pool = pools_.at(q->cohort);
      auto keep = guaranteed(*q);
      if (pool.lendable[d] < kUnlimited && pool.lent[d] - beyond(use[d], keep[d]) + beyond(after, keep[d]) > pool.lendable[d])
        return "";
      continue;
    }
    std::string what = fmt::format("queue {} over quota for {} ({}/{}, needs {} more)", q->name, kDimNames[d],
                                   formatAmount(d, use[d]), formatAmount(d, q->nominal[d]), formatAmount(d, need[d]));
    if (q->cohort.empty()) return what;
    if (q->borrowing_limit[d] < kUnlimited && after - q->nominal[d] > q->borrowing_limit[d])
      return what + fmt::format(" and its borrowing limit is {}", formatAmount(d, q->borrowing_limit[d]));
    const auto& pool = pools_.at(q->cohort);
    auto keep = guaranteed(*q);
    int64_t lent_after = pool.lent[d] - beyond(use[d], keep[d]) + beyond(after, keep[d]);
    if (pool.lendable[d] < kUnlimited && lent_after > pool.lendable[d])
      return what + fmt::format(" and cohort {} has none to lend ({} of {} lent)", q->cohort,
                                formatAmount(d, pool.lent[d]), formatAmount(d, pool.lendable[d]));
  }
  // Within its nominal quota, but that quota may be lent out: the cohort's
  // pool must still hold it.
  if (!q->cohort.empty()) {
    const auto& pool = pools_.at(q->cohort);
    auto keep = guaranteed(*q);
    for (int d = 0; d < kDims; ++d) {
      if (need[d] == 0 || pool.lendable[d] >= kUnlimited) continue;
      int64_t lent_after = pool.lent[d] - beyond(use[d], keep[d]) + beyond(use[d] + need[d], keep[d]);
      if (lent_after > pool.lendable[d] && !explain) return "";
      if (lent_after > pool.lendable[d])
        return fmt::format("queue {}'s {} quota is lent to other queues of cohort {} ({} of {} lent)", q->name,
                           kDimNames[d], q->cohort, formatAmount(d, pool.lent[d]), formatAmount(d, pool.lendable[d]));
    }
  }
  return std::nullopt;
}

std::optional<std::string> QuotaBook::neverAdmits(const std::string& queue_name, const Amounts& need) const {
  const QueueSpec* q = queue(queue_name);
  if (!q) return fmt::format("queue {} does not exist", queue_name);
  for (int d = 0; d < kDims; ++d) {
    if (q->nominal[d] >= kUnlimited || need[d] <= q->nominal[d]) continue;
    int64_t most = q->nominal[d];
    if (!q->cohort.empty()) {
      const auto& pool = pools_.at(q->cohort);
      // Everything the others may lend, within this queue's borrowing limit.
      int64_t others = pool.lendable[d] >= kUnlimited ? kUnlimited : pool.lendable[d] - q->lending_limit[d];
      most = sat(most, std::min(others, q->borrowing_limit[d]));
    }
    if (need[d] > most)
      return fmt::format("the job needs {} {} and queue {} can never hold more than {}", formatAmount(d, need[d]),
                         kDimNames[d], q->name, formatAmount(d, most));
  }
  return std::nullopt;
}

}  // namespace trainyard::sched
