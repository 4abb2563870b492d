// The live progress line of `trainyard run`: job state, epoch/step, latest
// metrics, elapsed and ETA. Pure: the caller supplies the numbers.
//
// ETA needs a total: a metric "epochs" (or "total_epochs") next to "epoch",
// "steps" (or "total_steps") next to "step", or a "progress" metric in
// [0, 1]. Without one, the line shows no ETA rather than a guess.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "metrics/metric.h"

namespace trainyard::cli {

struct ProgressInput {
  std::string name;
  std::string phase;
  int restarts = 0;
  double elapsed = 0;  // since the first start
  std::map<std::string, metrics::MetricPoint> latest;
};

std::string renderProgress(const ProgressInput& in, size_t max_width = 160);

}  // namespace trainyard::cli
