#include "metrics/downsample.h"

#include <algorithm>

namespace trainyard::metrics {

void Downsampler::addAggregate(int64_t first_step, int64_t n, double min, double max, int64_t last_step, double last) {
  int64_t b = bucketOf(first_step, width_);
  if (out_.empty() || b != current_) {
    out_.push_back({last_step, min, max, last, n});
    current_ = b;
    return;
  }
  Bucket& k = out_.back();
  k.min = std::min(k.min, min);
  k.max = std::max(k.max, max);
  if (last_step >= k.step) {
    k.step = last_step;
    k.last = last;
  }
  k.n += n;
}

int64_t bucketWidth(int64_t from, int64_t to, int max_points, int64_t granule) {
  if (max_points < 1) max_points = 1;
  int64_t span = to >= from ? to - from + 1 : 1;
  int64_t w = (span + max_points - 1) / max_points;
  if (granule > 1) w = (w + granule - 1) / granule * granule;
  // Aligned buckets can straddle both ends: one extra bucket at most.
  while (w > 0 && bucketOf(to, w) - bucketOf(from, w) + 1 > max_points) w += std::max<int64_t>(granule, 1);
  return std::max<int64_t>(w, 1);
}

}  // namespace trainyard::metrics
