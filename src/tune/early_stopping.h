// Early stopping from intermediate values. Pure: the experiment controller
// passes every trial's intermediate series and acts on the decision (stops
// the trial's processes, marks it EarlyStopped with the rung it reached).
//
//   median     Optuna's MedianPruner / Katib's medianstop: from start_step on,
//              once min_trials_required trials have finished, stop a trial
//              whose value at its latest step is worse than the median of the
//              finished trials' values at that step.
//   asha       asynchronous successive halving, stopping variant: rungs at
//              min_resource * reduction_factor^k below max_resource; a trial
//              reaching a rung goes on only if it is in the top
//              1/reduction_factor of all trials that reached that rung.
//   hyperband  several ASHA brackets with increasing min_resource; trials are
//              spread over the brackets and compete only within theirs.
// The resource is the step of the objective's points (e.g. epoch).
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "tune/sampler.h"

namespace trainyard::tune {

struct StopDecision {
  bool stop = false;
  int rung = -1;        // stop: the rung at which it was stopped; else the rung it now passed
  int64_t step = 0;     // the resource reached
  std::string reason;   // human-readable, for events
};

class EarlyStopper {
 public:
  virtual ~EarlyStopper() = default;
  // nullopt: nothing new to decide for `trial` now.
  virtual std::optional<StopDecision> decide(const TrialView& trial, const std::vector<TrialView>& all) = 0;
};

struct EarlyStoppingConfig {
  std::string name;  // median | asha | hyperband
  std::map<std::string, std::string> settings;
};

// Throws std::invalid_argument naming the setting that is wrong.
std::unique_ptr<EarlyStopper> makeEarlyStopper(const EarlyStoppingConfig& config);

}  // namespace trainyard::tune
