#include "serving/batch_policy.h"

#include <algorithm>
#include <numeric>

namespace trainyard::serving {

BatchDecision decideBatch(const BatchPolicy& p, const std::vector<int>& queued_rows, int64_t oldest_waited_us) {
  if (queued_rows.empty()) return {0, p.max_queue_delay_us};
  if (p.max_batch_size <= 1) return {1, 0};
  // The longest prefix of the queue that fits in one batch (at least one request).
  int fit = 0, rows = 0;
  for (int r : queued_rows) {
    if (fit > 0 && rows + r > p.max_batch_size) break;
    rows += r;
    ++fit;
  }
  int total = std::accumulate(queued_rows.begin(), queued_rows.end(), 0);
  if (total >= p.max_batch_size) return {fit, 0};
  const auto& pref = p.preferred_batch_sizes;
  if (std::find(pref.begin(), pref.end(), total) != pref.end()) return {fit, 0};
  if (oldest_waited_us >= p.max_queue_delay_us) return {fit, 0};
  return {0, p.max_queue_delay_us - oldest_waited_us};
}

}  // namespace trainyard::serving
