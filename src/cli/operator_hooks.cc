#include "cli/operator_hooks.h"

#include <ctime>
#include <memory>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/views.h"
#include "control/admission.h"
#include "control/experiment_controller.h"
#include "control/job_controller.h"
#include "spec/parser.h"
#include "store/store.h"

namespace trainyard::cli {
namespace {
using json = nlohmann::json;

// Whether a job or experiment with these labels was started by `r` (and
// not by a resource of the same job name in another namespace). Jobs from
// before tenancy carry no namespace: they were the server namespace's.
bool startedBy(const std::map<std::string, std::string>& labels, const backend::ServedResource& r) {
  auto it = labels.find(backend::kFromNamespaceLabel);
  return it == labels.end() ? r.user.empty() : it->second == r.ns;
}

json experimentStatus(store::Store& db, const store::ExperimentRecord& e) {
  auto v = api::experimentJson(db, e, false);
  json counts = v["counts"];
  json st = {{"phase", e.phase}, {"reason", e.reason}, {"message", e.message},
             {"trials", v["trials"]}, {"trialCounts", counts},
             // Katib's names for the same counts
             {"trialsSucceeded", counts.value("Succeeded", 0)}, {"trialsFailed", counts.value("Failed", 0)},
             {"trialsRunning", counts.value("Running", 0)}};
  if (v.contains("best")) {
    const auto& b = v["best"];
    std::string best = fmt::format("trial {}", b["trial"].get<int>());
    json assignments = json::array(), metrics = json::array();
    for (const auto& [metric, value] : b["objective"].items()) {
      best += fmt::format(" {}={}", metric, value.dump());
      metrics.push_back({{"name", metric}, {"latest", value.dump()}});
    }
    for (const auto& [param, value] : b["parameters"].items())
      assignments.push_back({{"name", param}, {"value", value.is_string() ? value.get<std::string>() : value.dump()}});
    st["best"] = best;
    st["currentOptimalTrial"] = {{"bestTrialName", b["job"]}, {"parameterAssignments", assignments},
                                 {"observation", {{"metrics", metrics}}}};
  }
  return st;
}

json jobStatus(store::Store& db, const store::JobRecord& j) {
  // Conditions as Kubeflow's training operator writes them.
  json conditions = json::array();
  for (const auto& c : db.conditions(j.id))
    conditions.push_back({{"type", c.type}, {"status", c.status}, {"reason", c.reason}, {"message", c.message},
                          {"lastTransitionTime",
                           fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(static_cast<std::time_t>(c.time)))}});
  return {{"phase", j.phase}, {"reason", j.reason}, {"message", j.message}, {"restarts", j.restarts},
          {"conditions", conditions}};
}

}  // namespace

backend::OperatorHooks operatorHooks(control::ControlPlane& plane, const std::string& store_location) {
  auto store = std::make_shared<std::unique_ptr<store::Store>>();  // the operator thread's own
  auto db = [store, store_location]() -> store::Store& {
    if (!*store) *store = store::openStore(store_location);
    return **store;
  };
  backend::OperatorHooks hooks;
  hooks.submit = [db, &plane](const backend::ServedResource& r, const std::string& text) -> std::string {
    try {
      if (r.category == "Queue") {
        auto loaded = spec::loadSpecString(text, fmt::format("Queue/{}", r.name), "");
        if (!loaded.queue || loaded.queue->kind != "Queue") return "expected a Queue";
        control::applyQueue(db(), *loaded.queue, "");
        plane.wake();
        return "";
      }
      auto loaded = spec::loadSpecString(text, fmt::format("{}/{}/{}", r.kind, r.ns, r.name), "");
      if (loaded.queue || (r.category == "Experiment") != loaded.experiment.has_value()) return "expected a " + r.category;
      // The namespace's queue: a spec may name it or none, not another one.
      std::string asked = loaded.experiment ? loaded.experiment->sampleTrial().queue : loaded.job.queue;
      if (!r.queue.empty() && asked != "default" && asked != r.queue)
        return fmt::format("spec.queue: namespace {} runs its jobs in queue {}, not {}", r.ns, r.queue, asked);
      if (!r.queue.empty()) {
        if (loaded.experiment) loaded.experiment->queue = r.queue;
        else loaded.job.queue = r.queue;
      }
      if (db().getJob(r.job_name) || db().getExperiment(r.job_name))
        return fmt::format("the name {} is taken by another job (from another namespace)", r.job_name);
      // Refused as the API refuses it (what no node could ever hold, a queue that does not exist).
      auto runs = loaded.experiment ? loaded.experiment->sampleTrial() : loaded.job;
      if (auto no = control::refuseAtSubmit(runs, r.user, plane.status().nodes, db().queueDefs(), plane.options().scheduling))
        return fmt::format("{}: {}", no->field, no->message);
      if (loaded.experiment) control::submitExperiment(db(), *loaded.experiment, plane.options(), r.user);
      else control::submitJob(db(), loaded.job, plane.options(), r.user);
      plane.wake();
      return "";
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  // The status a resource shows: the job's phase and restarts; an
  // experiment's phase, trial counts and best trial.
  hooks.status = [db](const backend::ServedResource& r) -> std::optional<std::string> {
    if (r.category == "Experiment") {
      auto e = db().getExperiment(r.job_name);
      if (!e || !startedBy(e->spec.labels, r)) return std::nullopt;
      return experimentStatus(db(), *e).dump();
    }
    auto j = db().getJob(r.job_name);
    if (!j || !startedBy(j->spec.labels, r)) return std::nullopt;
    return jobStatus(db(), *j).dump();
  };
  hooks.cancel = [db, &plane](const backend::ServedResource& r) {
    if (r.category == "Queue") {  // jobs waiting in it wait on, as when it is deleted through the API
      db().deleteQueue("Queue", r.name);
      plane.wake();
      return true;
    }
    if (r.category == "Experiment") {
      auto e = db().getExperiment(r.job_name);
      if (!e || !startedBy(e->spec.labels, r)) return true;
      if (e->phase != store::kRunning) return true;
      db().requestExperimentCancel(e->id), plane.wake();
      return false;
    }
    auto j = db().getJob(r.job_name);
    if (!j || !startedBy(j->spec.labels, r) || store::isTerminal(j->phase)) return true;
    db().requestCancel(j->id), plane.wake();
    return false;
  };
  return hooks;
}

}  // namespace trainyard::cli
