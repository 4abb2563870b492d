// Server-side downsampling of a metric series: consecutive steps fall into
// buckets of equal width, and each bucket keeps min, max and its last point,
// so a chart of a million points drawn from ~2,000 buckets still shows every
// spike (min/max) and the true current value (last). Pure: no I/O.
#pragma once
#include <cstdint>
#include <vector>

namespace trainyard::metrics {

struct Bucket {
  int64_t step = 0;  // step of the last point in the bucket
  double min = 0;
  double max = 0;
  double last = 0;
  int64_t n = 0;     // points aggregated
};

// Floor division that also works for negative steps.
inline int64_t bucketOf(int64_t step, int64_t width) {
  return step >= 0 ? step / width : -((-step - 1) / width) - 1;
}

// Feeds points (or pre-aggregated buckets) in step order; buckets of
// `width` steps are aligned at multiples of `width`.
class Downsampler {
 public:
  explicit Downsampler(int64_t width) : width_(width < 1 ? 1 : width) {}
  void add(int64_t step, double value) { addAggregate(step, 1, value, value, step, value); }
  // A pre-aggregated run of points [first_step, last_step] (a rollup row).
  void addAggregate(int64_t first_step, int64_t n, double min, double max, int64_t last_step, double last);
  const std::vector<Bucket>& buckets() const { return out_; }
  int64_t width() const { return width_; }

 private:
  int64_t width_;
  int64_t current_ = 0;
  std::vector<Bucket> out_;
};

// The bucket width that keeps [from, to] within max_points buckets, rounded
// up to a multiple of `granule` (a rollup level's width) when granule > 1.
int64_t bucketWidth(int64_t from, int64_t to, int max_points, int64_t granule = 1);

}  // namespace trainyard::metrics
