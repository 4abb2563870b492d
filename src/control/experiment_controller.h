// Reconciles Experiments: keeps parallelTrials trials running until
// maxTrials, asks the sampler for each new trial's parameters, stops hopeless
// trials early, and ends the experiment on its target, its failure budget or
// its trial budget. Every trial and its job are written to the store before
// they start, and samplers are rebuilt from the stored trials, so running the
// same experiment again after a crash continues it: finished trials are kept,
// interrupted ones run again, and the total stays maxTrials.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "control/job_controller.h"
#include "store/store.h"
#include "tune/early_stopping.h"
#include "tune/sampler.h"

namespace trainyard::control {

// Stores a new experiment in phase Running, owned by opts.owner. Throws
// store::NameConflict.
store::ExperimentRecord submitExperiment(store::Store& store, const spec::ExperimentSpec& spec,
                                         const ControllerOptions& opts, const std::string& user = "");

class ExperimentController {
 public:
  ExperimentController(store::Store& store, JobController& jobs, ControllerOptions opts);
  ~ExperimentController();

  // Stores a new experiment in phase Running. Throws store::NameConflict.
  store::ExperimentRecord submit(const spec::ExperimentSpec& spec, const std::string& user = "");
  // Takes over an unfinished (or, with reopen, a finished) experiment of this
  // name. Throws std::runtime_error when another live process drives it.
  store::ExperimentRecord resume(const std::string& name, bool reopen);

  // One pass: drive the trials' jobs, stop trials early, start new ones, end.
  store::ExperimentRecord reconcile(int64_t experiment_id);

  // Called on each trial state change (for `trainyard run`'s display).
  std::function<void(const store::TrialRecord&)> on_trial;

  // A trial's objective from its job's metric series (strategy min|max|latest).
  static std::optional<double> objectiveValue(const std::vector<metrics::MetricPoint>& series,
                                              const tune::Objective& objective);
  // Index of the best succeeded trial (single objective), or -1.
  static int bestTrial(const spec::ExperimentSpec& spec, const std::vector<store::TrialRecord>& trials);
  // Numbers of the succeeded trials on the Pareto front (all objectives).
  static std::vector<int> paretoFront(const spec::ExperimentSpec& spec, const std::vector<store::TrialRecord>& trials);

 private:
  struct State;
  State& state(const store::ExperimentRecord& e);
  void driveTrial(store::ExperimentRecord& e, State& s, store::TrialRecord& t);
  void considerStopping(State& s, store::TrialRecord& t, const std::vector<tune::TrialView>& views);
  void finishTrial(store::ExperimentRecord& e, State& s, store::TrialRecord& t, const store::JobRecord& job);
  void startTrial(store::ExperimentRecord& e, State& s, int number, const std::vector<store::TrialRecord>& trials);
  std::string submitTrialJob(const store::ExperimentRecord& e, store::TrialRecord& t);
  std::vector<tune::TrialView> history(const store::ExperimentRecord& e, State& s,
                                       const std::vector<store::TrialRecord>& trials);
  void changed(const store::TrialRecord& t);

  store::Store& store_;
  JobController& jobs_;
  ControllerOptions opts_;
  std::map<int64_t, std::unique_ptr<State>> states_;
};

}  // namespace trainyard::control
