// Kubeflow's runPolicy.ttlSecondsAfterFinished (and a TrainJob's
// spec.ttlSecondsAfterFinished): a finished job is deleted -- its record,
// metrics and logs; its outputs are kept, as `trainyard delete job` does --
// that long after it finished. The server keeps the due times in a heap: one
// scan of the store when it starts (jobs that finished while no server ran),
// then each job as the control loop sees it finish, so no pass lists every
// finished job. Trial jobs are left to their experiment.
#pragma once
#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "store/store.h"

namespace trainyard::control {

class FinishedJobTtl {
 public:
  // Every finished job with a TTL in the store (call once, at start).
  void scan(store::Store& store);
  // A job the loop saw finish.
  void finished(const store::JobRecord& job);
  // Deletes the jobs due by `now`; returns their names.
  std::vector<std::string> collect(store::Store& store, double now);

 private:
  using Due = std::pair<double, int64_t>;  // (when, job id)
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
};

}  // namespace trainyard::control
