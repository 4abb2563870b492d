#include "control/experiment_controller.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "control/checkpoint_handover.h"
#include "control/owner.h"
#include "tune/pareto.h"

namespace trainyard::control {
namespace {

bool isMax(const tune::Objective& o) { return o.maximize; }

std::string strategyOf(const tune::Objective& o) {
  if (!o.strategy.empty()) return o.strategy;
  return o.maximize ? "max" : "min";
}

// Lower is better, for samplers and pruners.
double oriented(const tune::Objective& o, double v) { return isMax(o) ? -v : v; }

tune::TrialView::State viewState(const std::string& s) {
  if (s == store::kTrialRunning) return tune::TrialView::State::Running;
  if (s == store::kTrialSucceeded) return tune::TrialView::State::Complete;
  if (s == store::kTrialEarlyStopped) return tune::TrialView::State::Pruned;
  return tune::TrialView::State::Failed;
}

bool reachedTarget(const spec::ExperimentSpec& spec, const store::TrialRecord& t) {
  if (!spec.target || t.state != store::kTrialSucceeded || t.objective.empty()) return false;
  return spec.objectives[0].maximize ? t.objective[0] >= *spec.target : t.objective[0] <= *spec.target;
}

// PBT: where a trial finds its checkpoint (tune/pbt_sampler.h).
std::optional<std::string> pbtTrialDir(const spec::ExperimentSpec& spec) {
  if (spec.algorithm != "pbt") return std::nullopt;
  auto it = spec.algorithm_settings.find("suggestion_trial_dir");
  if (it == spec.algorithm_settings.end()) return std::nullopt;
  return it->second;
}

// A PBT trial's checkpoint directory, seeded from its parent's before each
// run of the trial (its first, or again after a crash).
void seedIfPbt(const ControllerOptions& opts, const store::ExperimentRecord& e, const store::TrialRecord& t) {
  if (pbtTrialDir(e.spec)) seedCheckpoint(opts.data_dir, e, t, opts.run_uid, opts.run_gid);
}

}  // namespace

struct ExperimentController::State {
  std::unique_ptr<tune::Sampler> sampler;
  std::unique_ptr<tune::EarlyStopper> stopper;
  std::map<int, std::map<int64_t, double>> finished_series;  // intermediate values of finished trials
  bool exhausted = false;
  bool waiting = false;  // the sampler waits for running trials (hyperband's rungs)
};

ExperimentController::ExperimentController(store::Store& store, JobController& jobs, ControllerOptions opts)
    : store_(store), jobs_(jobs), opts_(std::move(opts)) {
  if (opts_.owner.empty()) opts_.owner = selfOwner();
}

ExperimentController::~ExperimentController() = default;

ExperimentController::State& ExperimentController::state(const store::ExperimentRecord& e) {
  auto& s = states_[e.id];
  if (!s) {
    s = std::make_unique<State>();
    const auto& spec = e.spec;
    s->sampler = tune::makeSampler({spec.algorithm, spec.algorithm_settings, spec.seed, spec.objectives.size()}, spec.space);
    if (!spec.early_stopping.empty())
      s->stopper = tune::makeEarlyStopper({spec.early_stopping, spec.early_stopping_settings});
  }
  return *s;
}

void ExperimentController::changed(const store::TrialRecord& t) {
  if (on_trial) on_trial(t);
}

store::ExperimentRecord submitExperiment(store::Store& store, const spec::ExperimentSpec& spec,
                                         const ControllerOptions& opts, const std::string& user) {
  store::ExperimentRecord e;
  e.user = user;
  e.name = spec.name;
  e.spec = spec;
  e.phase = store::kRunning;
  e.created_at = store::nowSeconds();
  e.owner = opts.owner;
  store.createExperiment(e);
  return e;
}

store::ExperimentRecord ExperimentController::submit(const spec::ExperimentSpec& spec, const std::string& user) {
  return submitExperiment(store_, spec, opts_, user);
}

store::ExperimentRecord ExperimentController::resume(const std::string& name, bool reopen) {
  store::ExperimentRecord e;
  store_.transaction([&] {
    auto found = store_.getExperiment(name);
    if (!found) throw std::runtime_error(fmt::format("experiment {} not found", name));
    e = *found;
    if (!store::isTerminal(e.phase) && e.owner != opts_.owner && ownerAlive(e.owner, &store_))
      throw std::runtime_error(fmt::format("experiment {} is being run by another process ({})", name, e.owner));
    if (store::isTerminal(e.phase) && !reopen)
      throw std::runtime_error(fmt::format("experiment {} already finished ({})", name, e.phase));
    if (store::isTerminal(e.phase) && e.spec.resume_policy == "Never")
      throw std::runtime_error(fmt::format("experiment {} has resumePolicy Never: once finished ({}), it is not reopened",
                                           name, e.phase));
    e.owner = opts_.owner;
    e.phase = store::kRunning;
    e.reason = "Resumed";
    e.message.clear();
    e.finished_at = 0;
    e.cancel_requested = false;
    store_.updateExperimentStatus(e);
  });
  return e;
}

std::optional<double> ExperimentController::objectiveValue(const std::vector<metrics::MetricPoint>& series,
                                                           const tune::Objective& o) {
  if (series.empty()) return std::nullopt;
  std::string s = strategyOf(o);
  if (s == "latest") {
    // The point with the highest step (ties: the later one).
    const metrics::MetricPoint* last = &series.front();
    for (const auto& p : series)
      if (p.step >= last->step) last = &p;
    return last->value;
  }
  double v = series.front().value;
  for (const auto& p : series) v = s == "max" ? std::max(v, p.value) : std::min(v, p.value);
  return v;
}

int ExperimentController::bestTrial(const spec::ExperimentSpec& spec, const std::vector<store::TrialRecord>& trials) {
  int best = -1;
  for (size_t i = 0; i < trials.size(); ++i) {
    const auto& t = trials[i];
    if (t.state != store::kTrialSucceeded || t.objective.empty()) continue;
    if (best < 0 || oriented(spec.objectives[0], t.objective[0]) < oriented(spec.objectives[0], trials[best].objective[0]))
      best = static_cast<int>(i);
  }
  return best;
}

std::vector<int> ExperimentController::paretoFront(const spec::ExperimentSpec& spec,
                                                   const std::vector<store::TrialRecord>& trials) {
  std::vector<std::vector<double>> pts;
  std::vector<int> numbers;
  for (const auto& t : trials) {
    if (t.state != store::kTrialSucceeded || t.objective.size() != spec.objectives.size()) continue;
    std::vector<double> p;
    for (size_t k = 0; k < t.objective.size(); ++k) p.push_back(oriented(spec.objectives[k], t.objective[k]));
    pts.push_back(p);
    numbers.push_back(t.number);
  }
  auto ranks = tune::paretoRanks(pts);
  std::vector<int> front;
  for (size_t i = 0; i < ranks.size(); ++i)
    if (ranks[i] == 0) front.push_back(numbers[i]);
  return front;
}

std::vector<tune::TrialView> ExperimentController::history(const store::ExperimentRecord& e, State& s,
                                                           const std::vector<store::TrialRecord>& trials) {
  const auto& primary = e.spec.objectives[0];
  std::vector<tune::TrialView> views;
  for (const auto& t : trials) {
    tune::TrialView v;
    v.number = t.number;
    v.state = viewState(t.state);
    v.point = t.point;
    v.meta = t.meta;
    v.rung = t.rung;
    if (t.state == store::kTrialSucceeded && t.objective.size() == e.spec.objectives.size())
      for (size_t k = 0; k < t.objective.size(); ++k) v.values.push_back(oriented(e.spec.objectives[k], t.objective[k]));
    auto cached = s.finished_series.find(t.number);
    if (cached != s.finished_series.end()) {
      v.intermediate = cached->second;
    } else if (auto job = store_.getJob(t.job_name)) {
      for (const auto& p : store_.metrics(job->id, primary.metric)) v.intermediate[p.step] = oriented(primary, p.value);
      if (t.state != store::kTrialRunning) s.finished_series[t.number] = v.intermediate;
    }
    if (v.state == tune::TrialView::State::Pruned && !v.intermediate.empty())
      v.values = {v.intermediate.rbegin()->second};  // a stopped trial is as good as its last report
    views.push_back(std::move(v));
  }
  return views;
}

std::string ExperimentController::submitTrialJob(const store::ExperimentRecord& e, store::TrialRecord& t) {
  std::string base = t.runs > 1 ? fmt::format("{}-{}-r{}", e.name, t.number, t.runs - 1) : fmt::format("{}-{}", e.name, t.number);
  spec::TrainJobSpec job = e.spec.trialJob(t.params, base);
  if (auto at = pbtTrialDir(e.spec))
    mountCheckpoint(job, trialCheckpointDir(opts_.data_dir, e, t.number), *at);
  job.labels[store::kExperimentLabel] = e.name;
  for (const auto& [k, v] : e.spec.labels)
    if (k.starts_with(backend::kOwnerLabelPrefix)) job.labels[k] = v;
  for (int i = 2;; ++i) {
    try {
      auto rec = jobs_.submit(job, e.user);
      return rec.name;
    } catch (const store::NameConflict&) {
      job.name = fmt::format("{}-{}", base, i);  // left over from a deleted experiment of the same name
      if (i > 100) throw;
    }
  }
}

void ExperimentController::startTrial(store::ExperimentRecord& e, State& s, int number,
                                      const std::vector<store::TrialRecord>& trials) {
  auto views = history(e, s, trials);
  auto suggestion = s.sampler->ask(number, views);
  if (!suggestion) {
    s.exhausted = true;
    return;
  }
  if (suggestion->wait) {  // it depends on trials still running: next pass
    s.waiting = true;
    return;
  }
  store::TrialRecord t;
  t.experiment_id = e.id;
  t.number = number;
  t.point = suggestion->point;
  t.meta = suggestion->meta;
  for (size_t j = 0; j < e.spec.space.size(); ++j)
    t.params[e.spec.space.params[j].name] = e.spec.space.params[j].format(suggestion->point[j]);
  t.created_at = store::nowSeconds();
  seedIfPbt(opts_, e, t);
  // The trial and its job are stored together: a crash leaves both or neither.
  store_.transaction([&] {
    t.job_name = submitTrialJob(e, t);
    store_.upsertTrial(t);
  });
  changed(t);
}

void ExperimentController::finishTrial(store::ExperimentRecord& e, State& s, store::TrialRecord& t,
                                       const store::JobRecord& job) {
  t.finished_at = job.finished_at;
  t.objective.clear();
  bool all = true;
  for (const auto& o : e.spec.objectives) {
    auto v = objectiveValue(store_.metrics(job.id, o.metric), o);
    if (!v) all = false;
    else t.objective.push_back(*v);
  }
  if (!all) t.objective.clear();
  for (const auto& m : e.spec.additional_metrics) {
    auto strategy = e.spec.additional_strategies.find(m);
    tune::Objective o{m, e.spec.objectives[0].maximize, strategy != e.spec.additional_strategies.end() ? strategy->second : "latest"};
    if (auto v = objectiveValue(store_.metrics(job.id, m), o)) t.metrics[m] = *v;
  }
  if (t.stop_requested) {
    t.state = store::kTrialEarlyStopped;
    t.reason = "EarlyStopped";
    if (t.message.empty()) t.message = "stopped early";
  } else if (job.phase == store::kSucceeded) {
    t.state = all ? store::kTrialSucceeded : store::kTrialMetricsUnavailable;
    t.reason = all ? "Completed" : "MetricsUnavailable";
    t.message = all ? "" : fmt::format("the job succeeded but never reported {}", e.spec.objectives[0].metric);
  } else if (job.reason == "Cancelled") {
    t.state = store::kTrialCancelled;
    t.reason = "Cancelled";
    t.message = "the experiment ended while it ran";
  } else {
    t.state = store::kTrialFailed;
    t.reason = job.reason;
    t.message = job.message;
  }
  s.finished_series.erase(t.number);
  store_.upsertTrial(t);
  changed(t);
}

void ExperimentController::driveTrial(store::ExperimentRecord& e, State& s, store::TrialRecord& t) {
  auto job = store_.getJob(t.job_name);
  // A run interrupted with its controller: still marked running by a dead
  // owner, or already failed as ControllerLost by a scheduler that noticed.
  bool lost = job && ((!store::isTerminal(job->phase) && job->owner != opts_.owner) ||
                      (job->phase == store::kFailed && job->reason == "ControllerLost"));
  if (lost) {
    // A run interrupted with its controller (kill -9 of `trainyard run`):
    // its processes went with it. The trial runs again under a new job.
    seedIfPbt(opts_, e, t);
    store_.transaction([&] {
      if (!store::isTerminal(job->phase)) markControllerLost(store_, *job, "; the trial runs again");
      t.runs += 1;
      t.stop_requested = false;
      t.rung = -1;
      t.job_name = submitTrialJob(e, t);
      store_.upsertTrial(t);
    });
    s.finished_series.erase(t.number);
    changed(t);
    return;
  }
  if (!job) {
    seedIfPbt(opts_, e, t);
    store_.transaction([&] {
      t.job_name = submitTrialJob(e, t);
      store_.upsertTrial(t);
    });
    return;
  }
  store::JobRecord now = jobs_.reconcile(job->id);
  if (store::isTerminal(now.phase)) {
    finishTrial(e, s, t, now);
    return;
  }
}

void ExperimentController::considerStopping(State& s, store::TrialRecord& t, const std::vector<tune::TrialView>& views) {
  auto job = store_.getJob(t.job_name);
  if (!job || job->phase != store::kRunning) return;
  auto me = std::find_if(views.begin(), views.end(), [&](const auto& v) { return v.number == t.number; });
  if (me == views.end()) return;
  auto decision = s.stopper->decide(*me, views);
  if (!decision) return;
  if (decision->stop) {
    t.stop_requested = true;
    t.rung = decision->rung;
    t.message = fmt::format("stopped early at step {}: {}", decision->step, decision->reason);
    store_.transaction([&] {
      store_.upsertTrial(t);
      store_.requestEarlyStop(job->id);
      store_.addEvent(job->id, {store::nowSeconds(), "Normal", "EarlyStopped", t.message});
    });
  } else if (decision->rung > t.rung) {
    t.rung = decision->rung;
    store_.upsertTrial(t);
  }
}

store::ExperimentRecord ExperimentController::reconcile(int64_t id) {
  auto rec = store_.getExperimentById(id);
  if (!rec) throw std::runtime_error(fmt::format("experiment {} is not in the store", id));
  store::ExperimentRecord e = std::move(*rec);
  if (store::isTerminal(e.phase)) return e;
  State& s = state(e);
  const auto& spec = e.spec;

  auto trials = store_.trials(e.id);
  for (auto& t : trials)
    if (t.state == store::kTrialRunning) driveTrial(e, s, t);
  trials = store_.trials(e.id);
  // Early stopping on the primary objective's intermediate values, with one
  // view of the whole experiment per pass.
  if (s.stopper) {
    auto views = history(e, s, trials);
    for (auto& t : trials)
      if (t.state == store::kTrialRunning && !t.stop_requested) considerStopping(s, t, views);
  }

  int running = 0, failed = 0, done = 0;
  bool goal = false;
  for (const auto& t : trials) {
    if (t.state == store::kTrialRunning) ++running;
    else ++done;
    if (t.state == store::kTrialFailed || t.state == store::kTrialMetricsUnavailable) ++failed;
    goal = goal || reachedTarget(spec, t);
  }

  // Ending: decide once, stop what runs, finish when nothing does.
  std::string end_phase, end_reason, end_message;
  if (e.cancel_requested) {
    end_phase = store::kFailed, end_reason = "Cancelled", end_message = "cancelled by the user";
  } else if (goal) {
    end_phase = store::kSucceeded, end_reason = "GoalReached";
    end_message = fmt::format("a trial reached the target {} = {}", spec.objectives[0].metric, *spec.target);
  } else if (failed > spec.max_failed_trials) {
    end_phase = store::kFailed, end_reason = "MaxFailedTrialsReached";
    end_message = fmt::format("{} trials failed (maxFailedTrials {})", failed, spec.max_failed_trials);
  } else if (done >= spec.max_trials) {
    end_phase = store::kSucceeded, end_reason = "MaxTrialsReached";
    end_message = fmt::format("{} trials finished", done);
  } else if (s.exhausted && running == 0) {
    end_phase = store::kSucceeded, end_reason = "SearchSpaceExhausted";
    end_message = spec.algorithm == "hyperband"
                      ? fmt::format("every hyperband bracket ran ({} trials)", trials.size())
                      : fmt::format("all {} points of the grid were tried", trials.size());
  }
  if (!end_phase.empty()) {
    if (running > 0) {
      for (const auto& t : trials)
        if (t.state == store::kTrialRunning)
          if (auto job = store_.getJob(t.job_name); job && !job->cancel_requested) store_.requestCancel(job->id);
      return e;
    }
    e.phase = end_phase;
    e.reason = end_reason;
    e.message = end_message;
    e.finished_at = store::nowSeconds();
    store_.updateExperimentStatus(e);
    return e;
  }

  // Starting: fill the free parallel slots up to maxTrials.
  int created = static_cast<int>(trials.size());
  s.waiting = false;
  while (running < spec.parallel_trials && created < spec.max_trials && !s.exhausted) {
    startTrial(e, s, created, trials);
    if (s.exhausted || s.waiting) break;
    trials = store_.trials(e.id);
    ++created;
    ++running;
  }
  return e;
}

}  // namespace trainyard::control
