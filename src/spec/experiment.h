// Experiments (hyperparameter sweeps): the typed spec, parsed from Trainyard's
// Experiment or translated from Katib's kubeflow.org/v1beta1 Experiment. The
// trial template stays YAML until a trial is made: trialJob() substitutes
// ${trialParameters.NAME} and parses it like any job, so a template error
// names the experiment file's line and column.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "spec/trainjob.h"
#include "tune/space.h"

namespace trainyard::spec {

struct ExperimentSpec {
  std::string api_version = "trainyard.dev/v1";
  std::string kind = "Experiment";
  std::string name;
  std::map<std::string, std::string> labels;
  std::vector<tune::Objective> objectives;  // the first is primary; several = multi-objective
  std::optional<double> target;             // reaching it (primary objective) ends the experiment
  std::vector<std::string> additional_metrics;
  // How an additional metric's value is read from its series: min, max or
  // latest (Katib's metricStrategies; Katib defaults them to the
  // objective's direction). Unlisted: latest.
  std::map<std::string, std::string> additional_strategies;
  std::string algorithm = "random";
  // Katib's resumePolicy: Never (a finished experiment is never reopened,
  // `run --resume` included); LongRunning and FromVolume (""): the store
  // keeps the algorithm's state, so it may be.
  std::string resume_policy;
  std::map<std::string, std::string> algorithm_settings;
  std::string early_stopping;  // "" = none; median | asha | hyperband
  std::map<std::string, std::string> early_stopping_settings;
  tune::SearchSpace space;
  int parallel_trials = 1;
  int max_trials = 10;
  int max_failed_trials = 3;
  uint64_t seed = 0;
  // The template as YAML text (a TrainJob, a Kubeflow job or a batch/v1 Job)
  // and the placeholder names: trialParameters NAME -> parameter name.
  std::string trial_template;
  std::map<std::string, std::string> trial_parameters;
  // Katib's metrics collector, applied to every trial job when set.
  std::optional<MetricsCollector> metrics_collector;
  std::string source_file;
  std::string base_dir;
  std::string workspace;  // when set, every trial's paths must stay inside it (a confined user's)
  std::string queue;      // when set, every trial runs in this queue (a tenant's namespace's)
  std::vector<std::string> overrides;  // --set arguments, re-applied when a trial is made

  // The TrainJob of one trial: placeholders replaced by `values` (parameter
  // name -> formatted value), named `job_name`. Throws SpecError.
  TrainJobSpec trialJob(const std::map<std::string, std::string>& values, const std::string& job_name,
                        std::vector<std::string>* warnings = nullptr) const;
  // A trial with every parameter at the middle of its range, as validation
  // renders one to check the template (and callers its paths and resources).
  TrainJobSpec sampleTrial(std::vector<std::string>* warnings = nullptr) const;
};

void to_json(nlohmann::json& j, const ExperimentSpec& s);
void from_json(const nlohmann::json& j, ExperimentSpec& s);

// Katib algorithm names -> Trainyard's (bayesianoptimization -> gp, ...);
// unsupported ones (enas, darts, pbt...) get a clear error message.
std::optional<std::string> mapKatibAlgorithm(const std::string& katib, std::string& error);

}  // namespace trainyard::spec
