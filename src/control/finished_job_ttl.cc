#include "control/finished_job_ttl.h"

#include <filesystem>

namespace trainyard::control {

void FinishedJobTtl::scan(store::Store& store) {
  for (const char* phase : {store::kSucceeded, store::kFailed})
    for (const auto& job : store.listJobs(phase)) finished(job);
}

void FinishedJobTtl::finished(const store::JobRecord& job) {
  if (!job.spec.ttl_seconds_after_finished || !store::isTerminal(job.phase)) return;
  if (job.spec.labels.count(store::kExperimentLabel)) return;
  due_.push({job.finished_at + static_cast<double>(*job.spec.ttl_seconds_after_finished), job.id});
}

std::vector<std::string> FinishedJobTtl::collect(store::Store& store, double now) {
  std::vector<std::string> deleted;
  while (!due_.empty() && due_.top().first <= now) {
    int64_t id = due_.top().second;
    due_.pop();
    auto job = store.getJobById(id);
    if (!job || !store::isTerminal(job->phase)) continue;  // deleted by hand meanwhile
    if (store.deleteJob(id)) {
      std::error_code ec;
      if (!job->log_dir.empty()) std::filesystem::remove_all(job->log_dir, ec);
      deleted.push_back(job->name);
    }
  }
  return deleted;
}

}  // namespace trainyard::control
