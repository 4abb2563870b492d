#include "spec/queue.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace trainyard::spec {
namespace {

nlohmann::json quotaJson(const QuotaDef& q) {
  nlohmann::json j = nlohmann::json::object();
  if (q.cpu_millis) j["cpu_millis"] = *q.cpu_millis;
  if (q.memory_bytes) j["memory_bytes"] = *q.memory_bytes;
  if (q.gpu_milli) j["gpu_milli"] = *q.gpu_milli;
  return j;
}

QuotaDef quotaFrom(const nlohmann::json& j) {
  QuotaDef q;
  if (!j.is_object()) return q;
  if (j.contains("cpu_millis")) q.cpu_millis = j["cpu_millis"].get<int64_t>();
  if (j.contains("memory_bytes")) q.memory_bytes = j["memory_bytes"].get<int64_t>();
  if (j.contains("gpu_milli")) q.gpu_milli = j["gpu_milli"].get<int64_t>();
  return q;
}

}  // namespace

void to_json(nlohmann::json& j, const QueueDef& q) {
  j = nlohmann::json{{"kind", q.kind},
                     {"name", q.name},
                     {"cohort", q.cohort},
                     {"parent", q.parent},
                     {"weight", q.weight},
                     {"quota", quotaJson(q.quota)},
                     {"borrowingLimit", quotaJson(q.borrowing_limit)},
                     {"lendingLimit", quotaJson(q.lending_limit)},
                     {"withinQueue", q.within_queue},
                     {"reclaimWithinCohort", q.reclaim_within_cohort},
                     {"users", q.users},
                     {"userWeights", q.user_weights},
                     {"sourceFile", q.source_file}};
  if (q.kind == "PriorityClass") j["value"] = q.value, j["globalDefault"] = q.global_default;
}

void from_json(const nlohmann::json& j, QueueDef& q) {
  q.kind = j.value("kind", q.kind);
  q.name = j.value("name", q.name);
  q.cohort = j.value("cohort", q.cohort);
  q.parent = j.value("parent", q.parent);
  q.weight = j.value("weight", q.weight);
  if (j.contains("quota")) q.quota = quotaFrom(j["quota"]);
  if (j.contains("borrowingLimit")) q.borrowing_limit = quotaFrom(j["borrowingLimit"]);
  if (j.contains("lendingLimit")) q.lending_limit = quotaFrom(j["lendingLimit"]);
  q.within_queue = j.value("withinQueue", q.within_queue);
  q.reclaim_within_cohort = j.value("reclaimWithinCohort", q.reclaim_within_cohort);
  q.users = j.value("users", q.users);
  q.user_weights = j.value("userWeights", q.user_weights);
  q.source_file = j.value("sourceFile", q.source_file);
  q.value = j.value("value", q.value);
  q.global_default = j.value("globalDefault", q.global_default);
}

std::optional<QueueProblem> checkQueues(const std::vector<QueueDef>& defs) {
  std::map<std::string, const QueueDef*> cohorts;
  for (const auto& d : defs)
    if (d.kind == "Cohort") cohorts[d.name] = &d;
  for (const auto& d : defs) {
    if (d.kind == "Queue" && !d.cohort.empty() && !cohorts.count(d.cohort))
      return QueueProblem{&d, "spec.cohort", fmt::format("cohort {} does not exist (apply a kind: Cohort first)", d.cohort)};
    if (d.kind != "Cohort" || d.parent.empty()) continue;
    if (!cohorts.count(d.parent))
      return QueueProblem{&d, "spec.parent", fmt::format("cohort {} does not exist", d.parent)};
    std::string path = d.name;
    std::set<std::string> seen{d.name};
    for (std::string at = d.parent; !at.empty();) {
      path += " -> " + at;
      if (!seen.insert(at).second)
        return QueueProblem{&d, "spec.parent", fmt::format("cohorts form a cycle: {}", path)};
      auto it = cohorts.find(at);
      at = it == cohorts.end() ? "" : it->second->parent;
    }
  }
  return std::nullopt;
}

std::string rootCohort(const std::vector<QueueDef>& defs, const std::string& cohort) {
  std::string at = cohort;
  for (size_t steps = 0; steps <= defs.size(); ++steps) {
    const QueueDef* c = nullptr;
    for (const auto& d : defs)
      if (d.kind == "Cohort" && d.name == at) c = &d;
    if (!c || c->parent.empty()) return at;
    at = c->parent;
  }
  return at;
}

}  // namespace trainyard::spec
