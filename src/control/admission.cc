#include "control/admission.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "control/job_controller.h"
#include "control/owner.h"
#include "spec/parser.h"

namespace trainyard::control {
using store::nowSeconds;

sched::Request requestOf(const spec::TrainJobSpec& spec) {
  sched::Request r;
  r.job = spec.name;
  r.queue = spec.queue;
  r.priority = spec.priority;
  for (const auto& role : spec.roles)
    for (int i = 0; i < role.replicas; ++i)
      r.replicas.push_back({fmt::format("{}-{}", role.name, i),
                            {role.resources.cpu_millis, role.resources.memory_bytes, role.resources.gpu,
                             role.resources.gpu_share}});
  r.policy = spec.placement == "spread" ? sched::PlacementPolicy::Spread : sched::PlacementPolicy::Pack;
  r.node_selector = spec.node_selector;
  if (spec.walltime_seconds) r.duration = static_cast<double>(*spec.walltime_seconds);
  else if (spec.active_deadline_seconds) r.duration = static_cast<double>(*spec.active_deadline_seconds);
  return r;
}

std::string encodeRequest(const spec::TrainJobSpec& spec) {
  sched::Request r = requestOf(spec);
  nlohmann::json reps = nlohmann::json::array();
  for (const auto& rep : r.replicas)
    reps.push_back({rep.name, rep.need.cpu_millis, rep.need.memory_bytes, rep.need.gpu, rep.need.gpu_share});
  nlohmann::json j{{"replicas", reps}};
  if (r.policy == sched::PlacementPolicy::Spread) j["placement"] = "spread";
  if (!r.node_selector.empty()) j["nodeSelector"] = r.node_selector;
  if (r.duration) j["duration"] = *r.duration;
  return j.dump();
}

sched::Request decodeRequest(const std::string& text) {
  // A row that does not decode (damaged by hand) yields no replicas: the
  // caller falls back to the spec, and one bad row never stops admission.
  sched::Request r;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("replicas") || !j["replicas"].is_array()) return r;
  try {
    for (const auto& rep : j["replicas"]) {
      if (!rep.is_array() || rep.size() < 5) continue;
      r.replicas.push_back({rep[0].get<std::string>(),
                            {rep[1].get<int64_t>(), rep[2].get<int64_t>(), rep[3].get<int>(), rep[4].get<int>()}});
    }
    if (j.value("placement", "") == "spread") r.policy = sched::PlacementPolicy::Spread;
    if (j.contains("nodeSelector")) r.node_selector = j["nodeSelector"].get<std::map<std::string, std::string>>();
    if (j.contains("duration")) r.duration = j["duration"].get<double>();
  } catch (const nlohmann::json::exception&) {
    return sched::Request{};
  }
  return r;
}

std::vector<sched::QueueSpec> queueSpecs(const std::vector<spec::QueueDef>& defs) {
  std::vector<sched::QueueSpec> out;
  auto amounts = [](const spec::QuotaDef& q) {
    return sched::Amounts{q.cpu_millis.value_or(sched::kUnlimited), q.memory_bytes.value_or(sched::kUnlimited),
                          q.gpu_milli.value_or(sched::kUnlimited)};
  };
  for (const auto& d : defs) {
    if (d.kind != "Queue") continue;
    sched::QueueSpec q;
    q.name = d.name;
    q.cohort = spec::rootCohort(defs, d.cohort);
    q.weight = d.weight;
    q.nominal = amounts(d.quota);
    q.borrowing_limit = amounts(d.borrowing_limit);
    q.lending_limit = amounts(d.lending_limit);
    q.preempt_lower_priority = d.within_queue == "LowerPriority";
    q.reclaim_within_cohort = d.reclaim_within_cohort == "Any";
    q.users = d.users;
    q.user_weights = d.user_weights;
    out.push_back(std::move(q));
  }
  // Jobs that name no queue land in "default": without limits unless declared.
  if (std::none_of(out.begin(), out.end(), [](const auto& q) { return q.name == "default"; }))
    out.push_back(sched::QueueSpec{.name = "default"});
  return out;
}

std::vector<sched::Node> withNodeStates(std::vector<sched::Node> nodes, const std::vector<store::NodeStateRecord>& states) {
  for (auto& n : nodes)
    for (const auto& s : states)
      if (s.name == n.name && (s.state == "Drained" || s.state == "Down")) n.schedulable = false;
  return nodes;
}

std::optional<std::string> applyPriorityClass(const std::vector<spec::QueueDef>& defs, spec::TrainJobSpec& spec) {
  const spec::QueueDef* found = nullptr;
  for (const auto& d : defs)
    if (d.kind == "PriorityClass" &&
        (spec.priority_class.empty() ? d.global_default && spec.priority == 0 : d.name == spec.priority_class))
      found = &d;
  if (found) {
    spec.priority = static_cast<int>(found->value);
    return std::nullopt;
  }
  if (spec.priority_class.empty()) return std::nullopt;
  std::string known;
  for (const auto& d : defs)
    if (d.kind == "PriorityClass") known += (known.empty() ? "" : ", ") + d.name;
  return fmt::format("priority class {} does not exist (apply a scheduling.k8s.io/v1 PriorityClass; classes: {})",
                     spec.priority_class, known.empty() ? "none" : known);
}

std::optional<Refusal> refuseAtSubmit(const spec::TrainJobSpec& spec, const std::string& user,
                                      const std::vector<sched::Node>& nodes, const std::vector<spec::QueueDef>& defs,
                                      const sched::SchedulerOptions& opts) {
  spec::TrainJobSpec resolved = spec;
  if (auto missing = applyPriorityClass(defs, resolved))
    return Refusal{"UnknownPriorityClass", "spec.priorityClassName", *missing};
  sched::Request r = requestOf(spec);
  r.user = user;
  auto queues = queueSpecs(defs);
  auto q = std::find_if(queues.begin(), queues.end(), [&](const auto& x) { return x.name == r.queue; });
  if (q == queues.end()) {
    std::string known;
    for (const auto& x : queues) known += (known.empty() ? "" : ", ") + x.name;
    return Refusal{"UnknownQueue", "spec.queue", fmt::format("queue {} does not exist (queues: {})", r.queue, known)};
  }
  if (!q->users.empty() && !user.empty() && std::find(q->users.begin(), q->users.end(), user) == q->users.end())
    return Refusal{"Forbidden", "spec.queue", fmt::format("user {} may not submit to queue {}", user, r.queue)};
  for (const auto& role : spec.roles)
    if (role.resources.gpu_share > 0 && !opts.gpu_sharing)
      return Refusal{"Unschedulable", fmt::format("spec.roles.{}.resources.gpu", role.name),
                     fmt::format("a share of a GPU ({:g}) needs GPU sharing, which is off on this server (--gpu-sharing)",
                                 role.resources.gpu_share / 1000.0)};
  if (!nodes.empty())
    if (auto why = sched::neverFits(nodes, r)) return Refusal{"Unschedulable", "spec.resources", *why};
  sched::QuotaBook book;
  book.setQueues(queues);
  if (auto why = book.neverAdmits(r.queue, sched::amounts(r.total()))) return Refusal{"Unschedulable", "spec.resources", *why};
  return std::nullopt;
}

void applyQueue(store::Store& store, const spec::QueueDef& def, const std::string& user) {
  store.transaction([&] {
    auto defs = store.queueDefs();
    std::erase_if(defs, [&](const auto& d) { return d.kind == def.kind && d.name == def.name; });
    defs.insert(defs.begin(), def);  // checked first: a problem it brings is reported as its own
    if (auto problem = spec::checkQueues(defs)) {
      const auto& d = *problem->def;
      if (&d == &defs.front())  // its own cohort or parent: at the line that names it
        throw spec::SpecError(d.source_file, d.parent_line, d.parent_column, problem->field, problem->message);
      throw spec::SpecError(def.source_file, 0, 0, "metadata.name",
                            fmt::format("applying {} {} would break {} {}: {}", def.kind, def.name, d.kind, d.name,
                                        problem->message));
    }
    store.putQueue(def, user);
  });
}

namespace {

std::string placedOn(const std::vector<sched::Placement>& placements) {
  std::map<std::string, int> per_node;
  for (const auto& p : placements) per_node[p.node]++;
  std::string out;
  for (const auto& [node, n] : per_node) out += fmt::format("{}{} ({} replica{})", out.empty() ? "" : ", ", node, n, n == 1 ? "" : "s");
  return out;
}

}  // namespace

AdmissionOutcome admitQueued(store::Store& store, const std::vector<sched::Node>& nodes,
                             const sched::SchedulerOptions& opts, const std::string& owner, double now) {
  AdmissionOutcome out;
  store.transaction([&] {
    auto rows = store.schedulingRows();
    bool any_queued = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return r.phase == store::kQueued; });
    if (!any_queued) return;
    auto placements = store.allPlacements();
    sched::Scheduler s(opts);
    s.setNodes(withNodeStates(nodes, store.nodeStates()));
    s.setQueues(queueSpecs(store.queueDefs()));

    std::map<std::string, bool> alive;  // per owner, asked once per cycle
    auto ownerLive = [&](const std::string& o) {
      if (o == owner) return true;
      auto it = alive.find(o);
      if (it == alive.end()) it = alive.emplace(o, ownerAlive(o, &store)).first;
      return it->second;
    };
    std::map<std::string, const store::SchedulingRow*> by_name;
    for (const auto& row : rows) {
      by_name[row.name] = &row;
      sched::Request r = row.request.empty() ? sched::Request{} : decodeRequest(row.request);
      if (r.replicas.empty()) {  // stored before schema 5: read the spec once
        auto job = store.getJobById(row.id);
        if (!job) continue;
        r = requestOf(job->spec);
      }
      auto held = placements.find(row.id);
      if (held != placements.end() && !held->second.empty()) {
        // A job whose controller died holds nothing any more.
        if (!ownerLive(row.owner)) {
          if (auto job = store.getJobById(row.id)) markControllerLost(store, *job, "");
          continue;
        }
        sched::Allocation a;
        a.job = row.name;
        a.user = row.user;
        a.queue = row.queue;
        a.priority = row.priority;
        a.seq = row.id;
        a.placements = held->second;
        a.started_at = row.started_at;
        if (r.duration) a.expected_end = row.started_at + *r.duration;
        a.terminating = row.cancel_requested || row.preempt_requested || row.suspended;
        s.assume(std::move(a));
        continue;
      }
      if (row.phase != store::kQueued || row.suspended) continue;  // suspended: not a candidate until resumed
      ++out.queued;
      r.job = row.name;
      r.user = row.user;
      r.queue = row.queue;
      r.priority = row.priority;
      r.seq = row.id;
      s.enqueue(std::move(r));
    }

    auto d = s.schedule(now);
    for (const auto& a : d.admitted) {
      const auto* row = by_name.at(a.job);
      if (row->owner != owner && ownerLive(row->owner)) continue;  // its own controller admits it
      auto job = store.getJobById(row->id);
      if (!job || job->phase != store::kQueued) continue;
      store.setPlacements(job->id, a.placements);
      std::set<std::string> on;
      for (const auto& p : a.placements) on.insert(p.node);
      job->node.clear();
      for (const auto& n : on) job->node += (job->node.empty() ? "" : ",") + n;
      job->owner = owner;
      job->phase = store::kRunning;
      if (job->started_at == 0) job->started_at = now;
      job->message.clear();
      store.updateJobStatus(*job);
      store.addEvent(job->id, {now, "Normal", "Scheduled", "placed on " + placedOn(a.placements)});
      out.admitted.push_back(job->id);
    }
    for (const auto& u : d.unschedulable) {
      const auto* row = by_name.at(u.job);
      if (row->owner != owner && ownerLive(row->owner)) continue;
      auto job = store.getJobById(row->id);
      if (!job) continue;
      failJob(store, *job, "Unschedulable", u.reason);
      out.unschedulable.push_back(job->id);
    }
    for (const auto& v : d.preempted) {
      const auto* row = by_name.at(v.job);
      store.requestPreemption(row->id);
      store.addEvent(row->id, {now, "Warning", "Preempted", v.reason});
      out.preempted.push_back(row->id);
    }
    std::vector<std::pair<int64_t, std::string>> changed;
    std::vector<std::pair<int64_t, store::Event>> queued;
    for (const auto& w : d.waiting) {
      const auto* row = by_name.at(w.job);
      if (row->message == w.reason) continue;
      if (row->message.empty()) queued.push_back({row->id, {now, "Normal", "Queued", w.reason}});
      changed.emplace_back(row->id, w.reason);
    }
    store.addEvents(queued);
    store.setJobMessages(changed);
  });
  return out;
}

}  // namespace trainyard::control
