// Queues, quotas and cohorts, as Kueue's ClusterQueue and cohort: a queue
// has a nominal quota per resource; queues in one cohort lend their idle
// quota to each other, within each queue's lending limit (what it may lend)
// and borrowing limit (what it may take beyond its nominal quota). Pure.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sched/resources.h"

namespace trainyard::sched {

struct QueueSpec {
  std::string name;
  std::string cohort;   // "" = shares with nobody
  double weight = 1;    // fair share: a queue of weight 2 is entitled to twice the share
  Amounts nominal{kUnlimited, kUnlimited, kUnlimited};
  Amounts borrowing_limit{kUnlimited, kUnlimited, kUnlimited};
  Amounts lending_limit{kUnlimited, kUnlimited, kUnlimited};  // capped at nominal
  // Kueue's preemption policy: withinClusterQueue LowerPriority|Never,
  // reclaimWithinCohort Any|Never.
  bool preempt_lower_priority = true;
  bool reclaim_within_cohort = true;
  std::vector<std::string> users;  // who may submit to it; empty = anyone
  std::map<std::string, double> user_weights;  // DRF between its users; absent = 1
};

// Usage per queue and the quota rules over it.
class QuotaBook {
 public:
  // No queues: one "default" queue without limits.
  void setQueues(std::vector<QueueSpec> queues);
  const QueueSpec* queue(const std::string& name) const;
  const std::vector<QueueSpec>& queues() const { return queues_; }

  void add(const std::string& queue, const Amounts& a);
  void remove(const std::string& queue, const Amounts& a);
  const Amounts& usage(const std::string& queue) const;

  // Why `queue` cannot take `need` more now, or nullopt when it can:
  // "queue team-a over quota for gpu (4/4) and cohort research has none to lend".
  // With explain false the reason is "" (it is not formatted).
  std::optional<std::string> refuses(const std::string& queue, const Amounts& need, bool explain = true) const;
  // Why `need` can never be admitted to `queue`, even with the cohort idle.
  std::optional<std::string> neverAdmits(const std::string& queue, const Amounts& need) const;
  // True when the queue uses more than its nominal quota in some resource.
  bool borrowing(const std::string& queue) const;

 private:
  struct Pool {
    Amounts lendable{};  // sum of members' lendable quota
    Amounts lent{};      // sum of members' use beyond what they keep for themselves
  };
  Amounts guaranteed(const QueueSpec& q) const;  // nominal minus lendable
  static int64_t beyond(int64_t used, int64_t keep) { return used > keep ? used - keep : 0; }
  std::vector<QueueSpec> queues_;
  std::map<std::string, size_t> index_;
  std::map<std::string, Amounts> usage_;
  std::map<std::string, Pool> pools_;
};

}  // namespace trainyard::sched
