#include "sched/fair_share.h"

#include <algorithm>

namespace trainyard::sched {

double dominantShare(const Amounts& usage, const Amounts& capacity, double weight) {
  double s = 0;
  for (int d = 0; d < kDims; ++d)
    if (capacity[d] > 0 && capacity[d] < kUnlimited)
      s = std::max(s, static_cast<double>(usage[d]) / static_cast<double>(capacity[d]));
  return s / (weight > 0 ? weight : 1);
}

double jainIndex(const std::vector<double>& x) {
  double sum = 0, sq = 0;
  for (double v : x) sum += v, sq += v * v;
  if (x.empty() || sq == 0) return 1;
  return sum * sum / (static_cast<double>(x.size()) * sq);
}

}  // namespace trainyard::sched
