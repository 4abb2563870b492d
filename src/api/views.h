// JSON views of stored records: what `trainyard get/describe -o json` prints
// and what the REST API answers, so both speak the same shapes.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "store/store.h"

namespace trainyard::api {

// A job; with `detail`, its spec, conditions, attempts, events and last metrics.
nlohmann::json jobJson(store::Store& st, const store::JobRecord& j, bool detail);

// What `models push --from NAME` takes: the job NAME, or experiment NAME's
// best trial's job; `what` says which, for messages. Throws
// std::invalid_argument when there is neither, or nothing succeeded to push.
struct ModelSource {
  store::JobRecord job;
  std::string what;
  std::string experiment;  // set when NAME is an experiment
};
ModelSource modelSource(store::Store& st, const std::string& from);
// A trial; with a store, its conditions include its job's start.
nlohmann::json trialJson(const spec::ExperimentSpec& spec, const store::TrialRecord& t, store::Store* st = nullptr);
// An experiment with trial counts, best trial and Pareto front; with
// `detail`, its spec and every trial.
nlohmann::json experimentJson(store::Store& st, const store::ExperimentRecord& e, bool detail);

// Every queue with its quota, usage and waiting jobs ({"items", "cohorts"});
// with a viewer, other users' waiting jobs are counted but not named.
nlohmann::json queuesJson(store::Store& st, const std::optional<std::string>& viewer);
// A job's outputs ({job, items: [{path, size, modified}], truncated}): the
// API's answer and `trainyard outputs -o json`, on a server or not.
nlohmann::json outputsJson(const store::JobRecord& j, size_t limit = 10000);

std::string objectiveText(const spec::ExperimentSpec& spec, const store::TrialRecord& t);
std::string paramsText(const store::TrialRecord& t);

}  // namespace trainyard::api
