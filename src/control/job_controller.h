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
#include "sched/scheduler.h"
#include "store/store.h"

namespace trainyard::control {

struct ControllerOptions {
  std::string data_dir;  // logs/<uid>/ and outputs/<name>/ go under it
  std::chrono::milliseconds grace{10000};  // SIGTERM -> SIGKILL
  std::string owner;     // selfOwner() by default
  int run_uid = -1;      // jobs run as this user (backend::LocalBackendOptions::run_uid): it owns their outputs
  int run_gid = -1;
  sched::SchedulerOptions scheduling;  // backfill, preemption, GPU sharing
  // With a backend that has a queue of its own (Slurm): up to this many
  // times the cluster's CPUs and memory are submitted to it, so that its
  // scheduler starts the next job the moment room frees instead of waiting
  // for this loop's next pass. 1: only what fits now.
  int batch_backlog = 2;
};

// Stores a new job in phase Queued with a Created condition, owned by
// opts.owner, its logs and outputs under opts.data_dir. Throws
// store::NameConflict when the name is taken. (The controller's submit, and
// the server's API, which writes desired state without driving it.)
store::JobRecord submitJob(store::Store& store, const spec::TrainJobSpec& spec, const ControllerOptions& opts,
                           const std::string& user = "");

// Ends a job as Failed with `reason`: its placements are freed, the
// condition and an event recorded. Call inside a transaction.
void failJob(store::Store& store, store::JobRecord& job, const std::string& reason, const std::string& message);
// Ends a job whose driving process is gone (Failed, ControllerLost).
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

  // One pass over one job; returns its record as it now is. The first
  // queued job reconciled in a pass runs the admission cycle for all of them
  // (control/admission.h); the others it admitted launch when reconciled.
  store::JobRecord reconcile(int64_t job_id);

  // The backend's nodes as read in this pass (read at most once per pass).
  const std::vector<sched::Node>& nodes() {
    nodeStates();
    return nodes_;
  }

  // A new pass: the next queued job runs admission again, nodes are read again.
  // Also renews this controller's lease on its jobs (control/owner.h).
  void beginPass();
  // Blocks until a replica may have changed or `timeout` passes; starts a new pass.
  void wait(std::chrono::milliseconds timeout) {
    backend_.waitForChange(timeout);
    beginPass();
  }

  // Latest value of each metric seen by this controller for the job.
  const std::map<std::string, metrics::MetricPoint>& latest(int64_t job_id);

  // Receives replica output as it is read (for `trainyard run`'s display).
  std::function<void(const std::string& replica, std::string_view bytes)> on_log;

 private:
  struct Tracked;  // per-job state that lives only in memory (read cursors, parsers)
  Tracked& tracked(const store::JobRecord& job);
  void admitQueuedJobs();
  // The backend's state of `uid`, from one observeAll() per pass.
  std::map<std::string, int64_t> restartedSeries(const store::JobRecord& job, Tracked& t, std::vector<metrics::MetricPoint>& points);
  std::vector<backend::ReplicaStatus> statusesOf(const std::string& uid);
  const std::vector<store::NodeStateRecord>& nodeStates();
  void requeue(store::JobRecord& job, const std::string& reason, const std::string& message, bool preempted);
  void launchAttempt(store::JobRecord& job, int attempt);
  void observe(store::JobRecord& job);
  // The job's run record (artifacts/run_record.h), once, when it first starts.
  void record(const store::JobRecord& job);
  // Reads what the replicas wrote since the last pass. `final`: they have
  // all exited; false when a log could not be read to its end (try again).
  bool collect(store::JobRecord& job, Tracked& t, bool final);
  void finish(store::JobRecord& job, const std::string& phase, const std::string& reason, const std::string& message);
  void condition(store::JobRecord& job, const std::string& type, const std::string& reason, const std::string& message);
  void event(const store::JobRecord& job, const std::string& type, const std::string& reason, const std::string& message);

  store::Store& store_;
  backend::Backend& backend_;
  ControllerOptions opts_;
  std::map<int64_t, std::unique_ptr<Tracked>> tracked_;
  bool admitted_in_pass_ = false;
  bool nodes_read_ = false;
  bool observed_all_ = false;
  std::map<std::string, std::vector<backend::ReplicaStatus>> observed_;
  std::vector<sched::Node> nodes_;
  std::vector<store::NodeStateRecord> node_states_;
};

}  // namespace trainyard::control
