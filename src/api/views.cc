#include "api/views.h"

#include "artifacts/artifact_store.h"
#include "artifacts/run_record.h"

#include <cstdio>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "control/admission.h"
#include "control/experiment_controller.h"
#include "util/format.h"
#include "metrics/progress.h"

namespace trainyard::api {

using nlohmann::json;

json jobJson(store::Store& st, const store::JobRecord& j, bool detail) {
  json out{{"name", j.name},
           {"uid", j.uid},
           {"kind", j.kind},
           {"phase", j.phase},
           {"reason", j.reason},
           {"message", j.message},
           {"restarts", j.restarts},
           {"suspended", j.suspended},
           {"createdAt", j.created_at},
           {"startedAt", j.started_at},
           {"finishedAt", j.finished_at},
           {"outputsDir", j.outputs_dir},
           {"logDir", j.log_dir},
           {"nodes", j.node},
           {"queue", j.spec.queue},
           {"priority", j.spec.priority}};
  if (!j.user.empty()) out["user"] = j.user;
  if (j.preemptions) out["preemptions"] = j.preemptions;
  // Progress and ETA while it runs, from what it reports (see metrics/progress.h).
  if (j.phase == store::kRunning && j.started_at > 0) {
    metrics::Latest latest;
    for (auto& m : st.lastMetrics(j.id)) latest[m.name] = m;
    if (auto f = metrics::progressFraction(latest)) out["progress"] = *f;
    if (auto eta = metrics::etaSeconds(latest, store::nowSeconds() - j.started_at)) out["etaSeconds"] = *eta;
  }
  if (!detail) return out;
  out["spec"] = j.spec;
  out["record"] = artifacts::readRunRecord(j.log_dir);  // how it was made: rerun reads it
  json placed = json::array();
  for (const auto& p : st.placements(j.id))
    placed.push_back({{"replica", p.replica}, {"node", p.node}, {"cpu", p.held.cpu_millis / 1000.0},
                      {"memoryBytes", p.held.memory_bytes}, {"gpu", p.held.gpu + p.held.gpu_share / 1000.0},
                      {"gpuIds", p.gpu_ids}});
  out["placements"] = placed;
  json conds = json::array();
  for (const auto& c : st.conditions(j.id))
    conds.push_back({{"type", c.type}, {"status", c.status}, {"reason", c.reason}, {"message", c.message}, {"time", c.time}});
  out["conditions"] = conds;
  json attempts = json::array();
  for (const auto& a : st.attempts(j.id)) {
    // The backend's handle; for a local process ("pid@start") also its pid.
    long pid = 0;
    unsigned long long started = 0;
    json pid_json = std::sscanf(a.handle.c_str(), "%ld@%llu", &pid, &started) == 2 ? json(pid) : json(nullptr);
    json r{{"attempt", a.attempt}, {"replica", a.replica}, {"state", a.state}, {"handle", a.handle}, {"pid", pid_json},
           {"startedAt", a.started_at}, {"finishedAt", a.finished_at}, {"reason", a.reason}, {"logPath", a.log_path}};
    r["exitCode"] = a.exit_code ? json(*a.exit_code) : json(nullptr);
    r["signal"] = a.signal ? json(*a.signal) : json(nullptr);
    attempts.push_back(r);
  }
  out["attempts"] = attempts;
  json events = json::array();
  for (const auto& e : st.events(j.id))
    events.push_back({{"time", e.time}, {"type", e.type}, {"reason", e.reason}, {"message", e.message}});
  out["events"] = events;
  json metrics = json::object();
  for (const auto& m : st.lastMetrics(j.id)) metrics[m.name] = {{"value", m.value}, {"step", m.step}, {"time", m.timestamp}};
  out["lastMetrics"] = metrics;
  return out;
}

std::string objectiveText(const spec::ExperimentSpec& spec, const store::TrialRecord& t) {
  std::string out;
  for (size_t k = 0; k < t.objective.size() && k < spec.objectives.size(); ++k)
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", spec.objectives[k].metric, util::formatValue(t.objective[k]));
  return out;
}

std::string paramsText(const store::TrialRecord& t) {
  std::string out;
  for (const auto& [k, v] : t.params) out += fmt::format("{}{}={}", out.empty() ? "" : " ", k, v);
  return out;
}

// A trial's conditions, Katib-style: Created, Running (its current job's
// start), then its final state, each with a time.
static json trialConditions(store::Store* st, const store::TrialRecord& t) {
  json c = json::array();
  c.push_back({{"type", "Created"}, {"time", t.created_at}});
  if (st)
    if (auto job = st->getJob(t.job_name); job && job->started_at > 0)
      c.push_back({{"type", "Running"}, {"time", job->started_at}});
  if (t.state != store::kTrialRunning)
    c.push_back({{"type", t.state}, {"reason", t.reason}, {"message", t.message}, {"time", t.finished_at}});
  return c;
}

json trialJson(const spec::ExperimentSpec& spec, const store::TrialRecord& t, store::Store* st) {
  json objective = json::object();
  for (size_t k = 0; k < t.objective.size() && k < spec.objectives.size(); ++k) objective[spec.objectives[k].metric] = t.objective[k];
  return {{"trial", t.number}, {"state", t.state}, {"parameters", t.params}, {"objective", objective},
          {"metrics", t.metrics}, {"rung", t.rung}, {"note", t.meta}, {"job", t.job_name}, {"runs", t.runs}, {"reason", t.reason},
          {"message", t.message}, {"createdAt", t.created_at}, {"finishedAt", t.finished_at},
          {"conditions", trialConditions(st, t)}};
}

json experimentJson(store::Store& st, const store::ExperimentRecord& e, bool detail) {
  auto trials = st.trials(e.id);
  std::map<std::string, int> counts;
  for (const auto& t : trials) counts[t.state]++;
  json out{{"name", e.name}, {"uid", e.uid}, {"phase", e.phase}, {"reason", e.reason}, {"message", e.message},
           {"createdAt", e.created_at}, {"finishedAt", e.finished_at}, {"trials", trials.size()}, {"counts", counts},
           {"maxTrials", e.spec.max_trials}};
  int best = control::ExperimentController::bestTrial(e.spec, trials);
  if (best >= 0) {
    out["best"] = trialJson(e.spec, trials[best]);
    if (auto job = st.getJob(trials[best].job_name)) out["best"]["outputsDir"] = job->outputs_dir;
  }
  if (e.spec.objectives.size() > 1) out["paretoFront"] = control::ExperimentController::paretoFront(e.spec, trials);
  if (!detail) return out;
  out["spec"] = e.spec;
  json arr = json::array();
  for (const auto& t : trials) arr.push_back(trialJson(e.spec, t, &st));
  out["trialList"] = arr;
  return out;
}

json queuesJson(store::Store& db, const std::optional<std::string>& viewer) {
  auto defs = db.queueDefs();
  auto rows = db.schedulingRows();
  auto placements = db.allPlacements();
  auto specs = control::queueSpecs(defs);
  std::map<std::string, sched::Resources> used;
  std::map<std::string, json> pending;
  std::map<std::string, int> running;
  // Per user: what their running jobs hold (another user's name is not
  // shown to a viewer who is not an administrator: "others").
  std::map<std::string, sched::Resources> by_user;
  std::map<std::string, int> running_by_user;
  for (const auto& r : rows) {
    auto p = placements.find(r.id);
    if (p != placements.end()) {
      std::string who = !viewer || *viewer == r.user ? (r.user.empty() ? "(no auth)" : r.user) : "others";
      for (const auto& pl : p->second) used[r.queue] += pl.held, by_user[who] += pl.held;
      running[r.queue]++;
      running_by_user[who]++;
    }
    if (r.phase != store::kQueued) continue;
    json& list = pending[r.queue];
    if (!list.is_array()) list = json::array();
    bool visible = !viewer || *viewer == r.user;
    list.push_back({{"name", visible ? r.name : ""}, {"user", visible ? r.user : ""}, {"priority", r.priority},
                    {"createdAt", r.created_at}, {"message", visible ? r.message : ""}});
  }
  auto amounts = [](const sched::Amounts& a) {
    json j = json::object();
    for (int d = 0; d < sched::kDims; ++d)
      if (a[d] < sched::kUnlimited) j[sched::kDimNames[d]] = d == 1 ? json(a[d]) : json(a[d] / 1000.0);
    return j;
  };
  json items = json::array();
  for (const auto& q : specs) {
    auto ua = sched::amounts(used.count(q.name) ? used.at(q.name) : sched::Resources{});
    bool borrowing = false;
    for (int d = 0; d < sched::kDims; ++d) borrowing |= q.nominal[d] < sched::kUnlimited && ua[d] > q.nominal[d];
    json p = pending.count(q.name) ? pending.at(q.name) : json::array();
    items.push_back({{"name", q.name},
                     {"cohort", q.cohort},
                     {"weight", q.weight},
                     {"quota", amounts(q.nominal)},
                     {"borrowingLimit", amounts(q.borrowing_limit)},
                     {"lendingLimit", amounts(q.lending_limit)},
                     {"users", q.users},
                     {"usage", amounts(ua)},
                     {"borrowing", borrowing},
                     {"running", running.count(q.name) ? running.at(q.name) : 0},
                     {"pending", p.size()},
                     {"jobs", p}});
  }
  json cohorts = json::array();
  for (const auto& d : defs)
    if (d.kind == "Cohort") cohorts.push_back({{"name", d.name}, {"parent", d.parent}});
  json users = json::array();
  for (const auto& [who, held] : by_user)
    users.push_back({{"user", who}, {"usage", amounts(sched::amounts(held))}, {"running", running_by_user[who]}});
  return {{"items", items}, {"cohorts", cohorts}, {"users", users}};
}

ModelSource modelSource(store::Store& st, const std::string& from) {
  ModelSource s;
  std::string job_name = from;
  if (st.getJob(from)) {
    s.what = fmt::format("job {}", from);
  } else if (auto e = st.getExperiment(from)) {
    auto trials = st.trials(e->id);
    int best = control::ExperimentController::bestTrial(e->spec, trials);
    if (best < 0) throw std::invalid_argument(fmt::format("experiment {} has no succeeded trial with its objective to push", from));
    job_name = trials[best].job_name;
    s.experiment = from;
    s.what = fmt::format("experiment {}'s best trial #{} (job {})", from, trials[best].number, job_name);
  } else {
    throw std::invalid_argument(fmt::format("no job or experiment named \"{}\"", from));
  }
  auto job = st.getJob(job_name);
  if (!job || job->phase != store::kSucceeded)
    throw std::invalid_argument(fmt::format("{} has not succeeded ({}): nothing to push", s.what, job ? job->phase : "deleted"));
  s.job = *job;
  return s;
}

json outputsJson(const store::JobRecord& j, size_t limit) {
  bool truncated = false;
  json items = json::array();
  for (const auto& e : artifacts::makeDirectoryStore()->list(j.outputs_dir, limit, &truncated))
    items.push_back({{"path", e.path}, {"size", e.size}, {"modified", e.modified}});
  return {{"job", j.name}, {"items", items}, {"truncated", truncated}};
}

}  // namespace trainyard::api
