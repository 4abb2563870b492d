// When to run a batch (dynamic batching, after Triton's): pure, no clocks
// of its own and no I/O, so it is tested and benchmarked alone.
//
// Given the sizes (rows) of the queued requests in arrival order and how
// long the oldest has waited, it answers "run the first k requests now" or
// "wait until the oldest has waited this long". Rules, in order:
//   1. the queue holds at least max_batch_size rows: run as many requests
//      as fit in max_batch_size (at least one);
//   2. the rows queued equal a preferred batch size: run them;
//   3. the oldest has waited max_queue_delay: run what is there;
//   4. else wait for the rest of the delay (or a new request).
// A request larger than max_batch_size is refused before it is queued.
#pragma once
#include <cstdint>
#include <vector>

namespace trainyard::serving {

struct BatchPolicy {
  int max_batch_size = 32;  // <= 1: every request alone
  int64_t max_queue_delay_us = 500;
  std::vector<int> preferred_batch_sizes;  // ascending
};

struct BatchDecision {
  int take = 0;          // requests to run now (0: wait)
  int64_t wait_us = 0;   // when take == 0: how much longer the oldest may wait
};

BatchDecision decideBatch(const BatchPolicy& p, const std::vector<int>& queued_rows, int64_t oldest_waited_us);

}  // namespace trainyard::serving
