// The Store holds all durable state: desired state (specs) and observed state
// (phases, attempts, conditions, events, metrics). Controllers read and write
// only through this interface, so SQLite (default) and PostgreSQL (later) are
// interchangeable and a restarted control plane picks up where it stopped.
//
// Thread-compatibility: one Store object per thread; several processes may
// open the same SQLite file (WAL) and coordinate through transaction().
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/metric.h"
#include "spec/experiment.h"
#include "spec/trainjob.h"
#include "tune/space.h"

namespace trainyard::store {

// Job phases. Kubeflow's condition types plus Queued (admitted to the store,
// waiting for resources).
inline constexpr const char* kQueued = "Queued";
inline constexpr const char* kRunning = "Running";
inline constexpr const char* kRestarting = "Restarting";
inline constexpr const char* kSucceeded = "Succeeded";
inline constexpr const char* kFailed = "Failed";
bool isTerminal(const std::string& phase);

struct JobRecord {
  int64_t id = 0;
  std::string uid;  // unique per job, never reused; backends key on it
  std::string name;
  std::string kind = "TrainJob";
  spec::TrainJobSpec spec;
  std::string phase = kQueued;
  std::string reason;
  std::string message;
  int restarts = 0;  // attempts after the first
  double created_at = 0;
  double started_at = 0;   // first attempt start; the deadline counts from here
  double finished_at = 0;
  std::string node;             // where the gang is placed ("" while queued)
  std::string allocation;       // JSON: held resources and GPU ids
  std::string owner;            // "host:pid:starttime" of the controller driving it
  bool cancel_requested = false;
  std::string outputs_dir;
  std::string log_dir;
};

struct AttemptRecord {
  int64_t job_id = 0;
  int attempt = 0;  // 0-based
  std::string replica;  // "worker-0"
  std::string state = "Pending";  // Pending, Running, Exited
  int64_t pid = 0;
  double started_at = 0;
  double finished_at = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;  // Completed, Error, OOMKilled, Signaled, DeadlineExceeded, Cancelled
  std::string log_path;
};

struct Condition {
  std::string type;  // Created, Running, Restarting, Succeeded, Failed
  std::string status = "True";
  std::string reason;
  std::string message;
  double time = 0;
};

struct Event {
  double time = 0;
  std::string type = "Normal";  // Normal | Warning
  std::string reason;
  std::string message;
};

struct ExperimentRecord {
  int64_t id = 0;
  std::string uid;
  std::string name;
  spec::ExperimentSpec spec;
  std::string phase = kRunning;  // Running, Succeeded, Failed
  std::string reason;
  std::string message;
  double created_at = 0;
  double finished_at = 0;
  std::string owner;
  bool cancel_requested = false;
};

// Trial states.
inline constexpr const char* kTrialRunning = "Running";
inline constexpr const char* kTrialSucceeded = "Succeeded";
inline constexpr const char* kTrialFailed = "Failed";
inline constexpr const char* kTrialEarlyStopped = "EarlyStopped";
inline constexpr const char* kTrialMetricsUnavailable = "MetricsUnavailable";
inline constexpr const char* kTrialCancelled = "Cancelled";

struct TrialRecord {
  int64_t experiment_id = 0;
  int number = 0;
  std::map<std::string, std::string> params;  // name -> value as given to the trial
  tune::Point point;                          // the sampler's representation
  std::string state = kTrialRunning;
  std::string job_name;  // the current run's TrainJob
  int runs = 1;          // > 1 when an interrupted run was started again
  std::vector<double> objective;  // per objective, as reported (not negated); empty until known
  std::map<std::string, double> metrics;  // additional metrics at the end
  int rung = -1;                // highest early-stopping rung passed (or the one it was stopped at)
  bool stop_requested = false;  // early stopping asked the job to stop
  std::string meta;             // the sampler's note (e.g. CMA-ES generation)
  std::string reason;
  std::string message;
  double created_at = 0;
  double finished_at = 0;
};

class NameConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs `fn` atomically and exclusively against other writers (also in
  // other processes). Calls inside `fn` join the transaction.
  virtual void transaction(const std::function<void()>& fn) = 0;

  // Assigns id and uid. Throws NameConflict when the name is taken.
  virtual void createJob(JobRecord& job) = 0;
  virtual std::optional<JobRecord> getJob(const std::string& name) = 0;
  virtual std::optional<JobRecord> getJobById(int64_t id) = 0;
  // All jobs, oldest first; `phase` filters when non-empty.
  virtual std::vector<JobRecord> listJobs(const std::string& phase = "") = 0;
  // Jobs not yet Succeeded or Failed, oldest first: what schedulers and
  // controllers look at, without reading the whole history.
  virtual std::vector<JobRecord> listActiveJobs() = 0;
  // Writes the status fields (phase..log_dir); the spec is immutable.
  virtual void updateJobStatus(const JobRecord& job) = 0;
  virtual void requestCancel(int64_t job_id) = 0;
  virtual bool deleteJob(int64_t job_id) = 0;

  virtual void upsertAttempt(const AttemptRecord& a) = 0;
  virtual std::vector<AttemptRecord> attempts(int64_t job_id) = 0;

  virtual void addCondition(int64_t job_id, const Condition& c) = 0;
  virtual std::vector<Condition> conditions(int64_t job_id) = 0;

  virtual void addEvent(int64_t job_id, const Event& e) = 0;
  virtual std::vector<Event> events(int64_t job_id) = 0;

  virtual void appendMetrics(int64_t job_id, const std::vector<metrics::MetricPoint>& points) = 0;
  // The whole series of `name`, or of every metric when `name` is empty, by name then step.
  virtual std::vector<metrics::MetricPoint> metrics(int64_t job_id, const std::string& name = "") = 0;
  // The latest point of each metric.
  virtual std::vector<metrics::MetricPoint> lastMetrics(int64_t job_id) = 0;

  // Experiments and their trials. createExperiment throws NameConflict.
  virtual void createExperiment(ExperimentRecord& e) = 0;
  virtual std::optional<ExperimentRecord> getExperiment(const std::string& name) = 0;
  virtual std::optional<ExperimentRecord> getExperimentById(int64_t id) = 0;
  virtual std::vector<ExperimentRecord> listExperiments() = 0;
  virtual void updateExperimentStatus(const ExperimentRecord& e) = 0;
  virtual void requestExperimentCancel(int64_t id) = 0;
  virtual void upsertTrial(const TrialRecord& t) = 0;
  virtual std::vector<TrialRecord> trials(int64_t experiment_id) = 0;

  virtual int schemaVersion() = 0;
};

// Opens the store named by `location`: a directory (SQLite file
// <dir>/trainyard.db, created with its schema) or, later, postgresql://...
std::unique_ptr<Store> openStore(const std::string& location);

double nowSeconds();

}  // namespace trainyard::store
