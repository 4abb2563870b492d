// Reconciles TrainJobs: compares the desired state in the store with what the
// backend reports and acts (admit, launch, restart, stop, finish). Every
// decision is written to the store before or as it is acted on, so another
// controller started on the same store continues from there.
//
// Not thread-safe: one controller drives its jobs from one thread.
#pragma once
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "metrics/collector.h"
#include "store/store.h"

namespace trainyard::control {

struct ControllerOptions {
  std::string data_dir;  // logs/<uid>/ and outputs/<name>/ go under it
  std::chrono::milliseconds grace{10000};  // SIGTERM -> SIGKILL
  std::string owner;     // selfOwner() by default
  int run_uid = -1;      // jobs run as this user (backend::LocalBackendOptions::run_uid): it owns their outputs
  int run_gid = -1;
};

// Stores a new job in phase Queued with a Created condition, owned by
// opts.owner, its logs and outputs under opts.data_dir. Throws
// store::NameConflict when the name is taken. (The controller's submit, and
// the server's API, which writes desired state without driving it.)
store::JobRecord submitJob(store::Store& store, const spec::TrainJobSpec& spec, const ControllerOptions& opts,
                           const std::string& user = "");

// Ends a job whose driving process is gone (Failed, ControllerLost): its
// allocation is freed and the reason recorded. Call inside a transaction.
void markControllerLost(store::Store& store, store::JobRecord& job, const std::string& what_next);

class JobController {
 public:
  JobController(store::Store& store, backend::Backend& backend, ControllerOptions opts);
  ~JobController();

  // Stores a new job in phase Queued with a Created condition. Throws
  // store::NameConflict when the name is taken.
  store::JobRecord submit(const spec::TrainJobSpec& spec, const std::string& user = "");

  // Takes over a job whose controller died (a server killed and started
  // again): replicas still running are watched again, logs and metrics
  // continue from where they were collected, replicas that ended meanwhile
  // are judged by their recorded exit status (retried per policy).
  store::JobRecord adopt(int64_t job_id);

  // One pass over one job; returns its record as it now is.
  store::JobRecord reconcile(int64_t job_id);

  // Blocks until a replica may have changed or `timeout` passes.
  void wait(std::chrono::milliseconds timeout) { backend_.waitForChange(timeout); }

  // Latest value of each metric seen by this controller for the job.
  const std::map<std::string, metrics::MetricPoint>& latest(int64_t job_id);

  // Receives replica output as it is read (for `trainyard run`'s display).
  std::function<void(const std::string& replica, std::string_view bytes)> on_log;

 private:
  struct Tracked;  // per-job state that lives only in memory (log offsets, parsers)
  Tracked& tracked(const store::JobRecord& job);
  void admit(store::JobRecord& job);
  void launchAttempt(store::JobRecord& job, int attempt);
  void observe(store::JobRecord& job);
  void collect(store::JobRecord& job, Tracked& t, bool final);
  void finish(store::JobRecord& job, const std::string& phase, const std::string& reason, const std::string& message);
  void condition(store::JobRecord& job, const std::string& type, const std::string& reason, const std::string& message);
  void event(const store::JobRecord& job, const std::string& type, const std::string& reason, const std::string& message);

  store::Store& store_;
  backend::Backend& backend_;
  ControllerOptions opts_;
  std::map<int64_t, std::unique_ptr<Tracked>> tracked_;
};

}  // namespace trainyard::control
