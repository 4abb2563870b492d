// A metric point as collectors produce it and the store keeps it.
#pragma once
#include <cstdint>
#include <string>

namespace trainyard::metrics {

// Steps are kept within [-kMaxStep, kMaxStep] (a trillion): far beyond any
// training run, far from int64 overflow in bucket arithmetic.
constexpr int64_t kMaxStep = 1'000'000'000'000;

struct MetricPoint {
  std::string name;
  double value = 0;
  int64_t step = 0;       // the line's step/epoch key, else the point's index in its series
  double timestamp = 0;   // seconds since the epoch, when collected
};

}  // namespace trainyard::metrics
