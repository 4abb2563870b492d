#include "metrics/downsample.h"

#include <algorithm>
#include <cstdint>

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
  // Closed form (a loop that widened step by step spun for hours on a span
  // of 10^15). With w buckets are aligned at multiples of w, so [from, to]
  // touches at most floor((span - 1) / w) + 2 of them; ceil(span / M) is the
  // least width that could do, (span - 1) / (M - 1) + 1 one that surely does.
  if (granule < 1) granule = 1;
  int64_t m = std::max(max_points, 2);  // one bucket cannot straddle a multiple of any width
  uint64_t span = to >= from ? static_cast<uint64_t>(to) - static_cast<uint64_t>(from) + 1 : 1;
  auto roundUp = [&](uint64_t w) {
    w = std::max<uint64_t>(w, 1);
    uint64_t g = static_cast<uint64_t>(granule);
    uint64_t r = (w + g - 1) / g * g;
    return static_cast<int64_t>(std::min<uint64_t>(r, static_cast<uint64_t>(INT64_MAX) / 2));
  };
  auto fits = [&](int64_t w) { return bucketOf(to, w) - bucketOf(from, w) + 1 <= m; };
  if (max_points <= 1) {  // one bucket: [0, w) or [-w, 0) holding both ends; across 0 two are unavoidable
    uint64_t w = from >= 0 ? static_cast<uint64_t>(to) + 1 : to < 0 ? static_cast<uint64_t>(-(from + 1)) + 1 : span;
    return roundUp(w);
  }
  int64_t least = roundUp((span + m - 1) / m);
  if (fits(least)) return least;
  if (fits(least + granule)) return least + granule;
  return roundUp((span - 1) / (m - 1) + 1);
}

}  // namespace trainyard::metrics
