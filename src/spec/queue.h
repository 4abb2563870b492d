// Queues and cohorts (trainyard.dev/v1 kinds Queue and Cohort): how a shared
// cluster is divided between teams, in Kueue's terms. A Queue (Kueue's
// ClusterQueue) has a nominal quota per resource and may belong to a
// Cohort, whose queues lend idle quota to each other; a Cohort may have a
// parent cohort (the whole tree shares one pool).
//
//   apiVersion: trainyard.dev/v1
//   kind: Queue
//   metadata: {name: team-a}
//   spec:
//     cohort: research
//     weight: 2                       # fair share against the other queues
//     quota: {cpu: 8, memory: 32Gi, gpu: 2}
//     borrowingLimit: {cpu: 4}        # at most this much beyond the quota
//     lendingLimit: {gpu: 1}          # at most this much lent to the cohort
//     preemption: {withinQueue: LowerPriority, reclaimWithinCohort: Any}
//     users: [alice, bob]             # who may submit to it (default: anyone)
//     userWeights: {alice: 2}         # fair share between its users (default 1 each)
//
// Kubernetes' PriorityClass (scheduling.k8s.io/v1: metadata.name, value,
// globalDefault) is kept beside them: a job naming it (Kubeflow's
// schedulingPolicy.priorityClass, a TrainJob's priorityClassName) gets its
// value as priority when it is submitted; a globalDefault one applies to
// jobs that give neither a class nor a priority.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace trainyard::spec {

struct QuotaDef {  // absent = unlimited
  std::optional<int64_t> cpu_millis;
  std::optional<int64_t> memory_bytes;
  std::optional<int64_t> gpu_milli;  // thousandths of a device
};

struct QueueDef {
  std::string kind = "Queue";  // Queue | Cohort | PriorityClass
  std::string name;
  std::string cohort;  // Queue: the cohort it shares with ("" = none)
  std::string parent;  // Cohort: its parent cohort ("" = a root)
  double weight = 1;
  QuotaDef quota, borrowing_limit, lending_limit;
  std::string within_queue = "LowerPriority";  // or Never
  std::string reclaim_within_cohort = "Any";   // or Never
  std::vector<std::string> users;
  std::map<std::string, double> user_weights;
  int64_t value = 0;            // PriorityClass: the priority it gives
  bool global_default = false;  // PriorityClass: for jobs that name none
  std::string source_file;
  int parent_line = 0, parent_column = 0;  // where `cohort`/`parent` is written, for errors found later
};

void to_json(nlohmann::json& j, const QueueDef& q);
void from_json(const nlohmann::json& j, QueueDef& q);

// Checks a set of definitions together: every queue's cohort exists, and no
// cohort is its own ancestor. Returns the offending definition and what is
// wrong, or nullopt.
struct QueueProblem {
  const QueueDef* def;
  std::string field;
  std::string message;
};
std::optional<QueueProblem> checkQueues(const std::vector<QueueDef>& defs);
// The root of the cohort tree `cohort` belongs to ("" for "").
std::string rootCohort(const std::vector<QueueDef>& defs, const std::string& cohort);

}  // namespace trainyard::spec
