// The Store holds all durable state: desired state (specs) and observed state
// (phases, attempts, conditions, events, metrics). Controllers read and write
// only through this interface, so SQLite (default) and PostgreSQL are
// interchangeable and a restarted control plane picks up where it stopped.
//
// Thread-compatibility: one Store object per thread; several processes may
// share one SQLite file (WAL) or PostgreSQL database and coordinate through
// transaction().
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/metric.h"
#include "sched/placement.h"
#include "spec/queue.h"
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
// Ended by its experiment's early stopping (reason EarlyStopped): a trial
// that was doing worse than others, not a failure.
inline constexpr const char* kStopped = "Stopped";
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
  std::string node;             // the nodes the gang is placed on, "n1,n2" ("" while queued); placements() has each replica's
  std::string allocation;       // unused since schema 5 (placements are rows of their own)
  std::string request;          // JSON: what the scheduler needs of the spec (control/admission.h), written at creation
  int preemptions = 0;          // attempts ended by preemption, a gang timeout or suspend: counted in restarts, not against backoffLimit
  bool preempt_requested = false;  // the scheduler wants it stopped and queued again
  std::string owner;            // "host:pid:starttime" of the controller driving it
  bool cancel_requested = false;
  bool stop_early = false;  // the cancel is early stopping's: it ends Stopped, not Failed
  // Kubeflow's runPolicy.suspend, as desired state: a suspended job stays
  // queued (a running one is stopped and queued again) until it is resumed.
  bool suspended = false;
  std::string outputs_dir;
  std::string log_dir;
  std::string user;  // who submitted it ("" when no authentication is in use)
};

struct AttemptRecord {
  int64_t job_id = 0;
  int attempt = 0;  // 0-based
  std::string replica;  // "worker-0"
  std::string state = "Pending";  // Pending, Running, Exited
  std::string handle;  // the backend's name for the replica (backend::ReplicaStatus::handle)
  double started_at = 0;
  double finished_at = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;  // Completed, Error, OOMKilled, Signaled, DeadlineExceeded, Cancelled, Lost
  std::string log_path;
  // Metrics collected up to here (a restarted controller resumes there):
  // the backend's opaque read cursors into the log and the File collector's
  // file, and what was read but not parsed yet (metrics::LineParser::carry).
  std::string log_cursor;
  std::string file_cursor;
  std::string collect_carry;
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
  std::string user;
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

// A page of a filtered job list. Visibility: with `viewer` set, only jobs
// of that user or labelled trainyard.dev/shared=true.
struct JobQuery {
  std::string phase;        // "" = any; "active" = not Succeeded/Failed
  std::string label_key;    // "" = any
  std::string label_value;  // "" = any value of label_key
  std::optional<std::string> viewer;
  bool include_trials = true;  // jobs labelled trainyard.dev/experiment
  int64_t offset = 0;
  int64_t limit = 100;
  bool newest_first = false;
};
struct JobPage {
  std::vector<JobRecord> items;
  int64_t total = 0;  // matching jobs, all pages
};

// A job's or experiment's state without its spec: what the change watcher
// compares every pass (parsing specs there cost a core with large ones).
struct StateRow {
  int64_t id = 0;
  std::string name, phase, reason, user;
  int restarts = 0;
  bool shared = false;  // jobs only: labelled trainyard.dev/shared=true
};

// An active job as the scheduler sees it, without its spec.
struct SchedulingRow {
  int64_t id = 0;
  std::string name, user, phase, owner, queue, request, message;
  int priority = 0;
  int restarts = 0;
  double created_at = 0, started_at = 0;
  bool cancel_requested = false, preempt_requested = false;
  bool suspended = false;
};

// What an administrator said about a node: Ready (default), Drained (no new
// work; what runs there stays) or Down (lost: what runs there is Lost).
struct NodeStateRecord {
  std::string name, state, reason;
  double time = 0;
};

// One metric series of a job: size and range, without its points.
struct SeriesInfo {
  std::string name;
  int64_t points = 0;
  int64_t first_step = 0;
  int64_t last_step = 0;
  double last_value = 0;
};
// A series as charts get it: the points themselves when there are few,
// else min/max/last per bucket of `width` steps.
struct SeriesView {
  std::string name;
  int64_t total_points = 0;  // in the requested range
  int64_t width = 1;         // steps per bucket (1 with raw points)
  bool downsampled = false;
  std::vector<int64_t> step;
  std::vector<double> min, max, last;
  // When each point was collected (seconds since the epoch): raw points
  // only; empty when downsampled (buckets have no single time).
  std::vector<double> time;
};

inline constexpr const char* kSharedLabel = "trainyard.dev/shared";
inline constexpr const char* kExperimentLabel = "trainyard.dev/experiment";

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
  // Early stopping ends the job: as a cancel, but it ends Stopped (reason EarlyStopped).
  virtual void requestEarlyStop(int64_t job_id) = 0;
  virtual void setSuspended(int64_t job_id, bool suspended) = 0;
  virtual bool deleteJob(int64_t job_id) = 0;
  // Filtered, paged list (oldest first unless newest_first).
  virtual JobPage queryJobs(const JobQuery& q) = 0;
  // Active jobs and the newest `recent` ones of any phase.
  virtual std::vector<StateRow> jobStates(int64_t recent) = 0;

  // Where each replica of a job is placed (replica "*": the whole gang, as
  // stores before schema 5 kept it). Replaced as a whole; empty frees it.
  virtual void setPlacements(int64_t job_id, const std::vector<sched::Placement>& p) = 0;
  virtual std::vector<sched::Placement> placements(int64_t job_id) = 0;
  // Every job's placements: what is held on the nodes (one indexed query).
  virtual std::map<int64_t, std::vector<sched::Placement>> allPlacements() = 0;
  // Active jobs without their specs: one admission cycle's input.
  virtual std::vector<SchedulingRow> schedulingRows() = 0;
  // Why queued jobs wait (their status messages), without touching the rest;
  // one statement per few hundred jobs.
  virtual void setJobMessages(const std::vector<std::pair<int64_t, std::string>>& messages) = 0;
  // Asks the driving controller to stop a job and queue it again.
  virtual void requestPreemption(int64_t job_id) = 0;

  // Queues and cohorts (kind Queue | Cohort); putQueue replaces one of the same kind and name.
  virtual void putQueue(const spec::QueueDef& q, const std::string& user) = 0;
  virtual bool deleteQueue(const std::string& kind, const std::string& name) = 0;
  virtual std::vector<spec::QueueDef> queueDefs() = 0;
  // A controller's lease on its jobs: it holds them until `expires_at`
  // unless it renews (control/owner.h). Lets a controller on another host
  // take over the jobs of one that died.
  virtual void renewLease(const std::string& owner, double expires_at) = 0;
  virtual std::optional<double> leaseExpiry(const std::string& owner) = 0;
  virtual void setNodeState(const NodeStateRecord& n) = 0;
  virtual std::vector<NodeStateRecord> nodeStates() = 0;

  virtual void upsertAttempt(const AttemptRecord& a) = 0;
  virtual std::vector<AttemptRecord> attempts(int64_t job_id) = 0;
  // Records how far a replica's output has been collected into metrics
  // (written with the metrics it produced, in one transaction).
  virtual void saveCollectCursors(int64_t job_id, int attempt, const std::string& replica, const std::string& log_cursor,
                                  const std::string& file_cursor, const std::string& carry) = 0;

  virtual void addCondition(int64_t job_id, const Condition& c) = 0;
  virtual std::vector<Condition> conditions(int64_t job_id) = 0;

  virtual void addEvent(int64_t job_id, const Event& e) = 0;
  // Many jobs' events in a few statements (an admission cycle's "Queued").
  virtual void addEvents(const std::vector<std::pair<int64_t, Event>>& events) = 0;
  virtual std::vector<Event> events(int64_t job_id) = 0;

  virtual void appendMetrics(int64_t job_id, const std::vector<metrics::MetricPoint>& points) = 0;
  // Drops `name`'s points at steps >= from_step (a restarted attempt reports
  // those steps again: its points replace the earlier ones, as TensorBoard
  // purges a restarted run's orphaned steps). The rollups and the last point
  // are made again from what is left.
  virtual void truncateSeries(int64_t job_id, const std::string& name, int64_t from_step) = 0;
  // The whole series of `name`, or of every metric when `name` is empty, by name then step.
  virtual std::vector<metrics::MetricPoint> metrics(int64_t job_id, const std::string& name = "") = 0;
  // The latest point of each metric.
  virtual std::vector<metrics::MetricPoint> lastMetrics(int64_t job_id) = 0;
  // Every series of the job with its size and step range.
  virtual std::vector<SeriesInfo> seriesInfo(int64_t job_id) = 0;
  // Steps [from, to] of a series in at most max_points buckets, from the
  // rollups kept on append when the range is long (no full scan).
  virtual SeriesView seriesView(int64_t job_id, const std::string& name, int64_t from, int64_t to, int max_points) = 0;

  // Experiments and their trials. createExperiment throws NameConflict.
  virtual void createExperiment(ExperimentRecord& e) = 0;
  virtual std::optional<ExperimentRecord> getExperiment(const std::string& name) = 0;
  virtual std::optional<ExperimentRecord> getExperimentById(int64_t id) = 0;
  virtual std::vector<ExperimentRecord> listExperiments() = 0;
  // Experiments not yet Succeeded or Failed: what a control loop looks at
  // every pass, without parsing the whole history's specs.
  virtual std::vector<ExperimentRecord> listActiveExperiments() = 0;
  virtual std::vector<StateRow> activeExperimentStates() = 0;
  virtual void updateExperimentStatus(const ExperimentRecord& e) = 0;
  virtual void requestExperimentCancel(int64_t id) = 0;
  virtual void upsertTrial(const TrialRecord& t) = 0;
  virtual std::vector<TrialRecord> trials(int64_t experiment_id) = 0;
  // Trials by state, counted in the database (no trial is read).
  virtual std::map<std::string, int64_t> trialCounts(int64_t experiment_id) = 0;

  virtual int schemaVersion() = 0;
};

// Opens the store named by `location`: a directory (SQLite file
// <dir>/trainyard.db, created with its schema) or a postgresql:// URL.
std::unique_ptr<Store> openStore(const std::string& location);
// The files a store at `location` keeps on this machine (the SQLite file and
// its WAL and shared-memory files; none for a postgresql:// URL).
std::vector<std::string> storeFiles(const std::string& location);

double nowSeconds();

}  // namespace trainyard::store
