// Store over SQL: one implementation for SQLite (default: one file, WAL,
// shared by several processes) and PostgreSQL (a team's server). Schema
// migrations are applied on open, each once, recorded in schema_version.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>

#include "store/sql.h"
#include "store/store.h"

namespace trainyard::store {

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<SqlDb> db);
  ~SqlStore() override;

  void transaction(const std::function<void()>& fn) override;
  void createJob(JobRecord& job) override;
  std::optional<JobRecord> getJob(const std::string& name) override;
  std::optional<JobRecord> getJobById(int64_t id) override;
  std::vector<JobRecord> listJobs(const std::string& phase) override;
  std::vector<JobRecord> listActiveJobs() override;
  std::vector<StateRow> jobStates(int64_t recent) override;
  std::vector<StateRow> activeExperimentStates() override;
  void updateJobStatus(const JobRecord& job) override;
  void setSuspended(int64_t job_id, bool suspended) override;
  void requestEarlyStop(int64_t job_id) override;
  void requestCancel(int64_t job_id) override;
  bool deleteJob(int64_t job_id) override;
  JobPage queryJobs(const JobQuery& q) override;
  void setPlacements(int64_t job_id, const std::vector<sched::Placement>& p) override;
  std::vector<sched::Placement> placements(int64_t job_id) override;
  std::map<int64_t, std::vector<sched::Placement>> allPlacements() override;
  std::vector<SchedulingRow> schedulingRows() override;
  void requestPreemption(int64_t job_id) override;
  void setJobMessages(const std::vector<std::pair<int64_t, std::string>>& messages) override;
  void putQueue(const spec::QueueDef& q, const std::string& user) override;
  bool deleteQueue(const std::string& kind, const std::string& name) override;
  std::vector<spec::QueueDef> queueDefs() override;
  void renewLease(const std::string& owner, double expires_at) override;
  std::optional<double> leaseExpiry(const std::string& owner) override;
  void setNodeState(const NodeStateRecord& n) override;
  std::vector<NodeStateRecord> nodeStates() override;
  void upsertAttempt(const AttemptRecord& a) override;
  std::vector<AttemptRecord> attempts(int64_t job_id) override;
  void saveCollectCursors(int64_t job_id, int attempt, const std::string& replica, const std::string& log_cursor,
                          const std::string& file_cursor, const std::string& carry) override;
  void addCondition(int64_t job_id, const Condition& c) override;
  std::vector<Condition> conditions(int64_t job_id) override;
  void addEvent(int64_t job_id, const Event& e) override;
  void addEvents(const std::vector<std::pair<int64_t, Event>>& events) override;
  std::vector<Event> events(int64_t job_id) override;
  void appendMetrics(int64_t job_id, const std::vector<metrics::MetricPoint>& points) override;
  void truncateSeries(int64_t job_id, const std::string& name, int64_t from_step) override;
  std::vector<metrics::MetricPoint> metrics(int64_t job_id, const std::string& name) override;
  std::vector<metrics::MetricPoint> lastMetrics(int64_t job_id) override;
  std::vector<SeriesInfo> seriesInfo(int64_t job_id) override;
  SeriesView seriesView(int64_t job_id, const std::string& name, int64_t from, int64_t to, int max_points) override;
  void createExperiment(ExperimentRecord& e) override;
  std::optional<ExperimentRecord> getExperiment(const std::string& name) override;
  std::optional<ExperimentRecord> getExperimentById(int64_t id) override;
  std::vector<ExperimentRecord> listExperiments() override;
  std::vector<ExperimentRecord> listActiveExperiments() override;
  void updateExperimentStatus(const ExperimentRecord& e) override;
  void requestExperimentCancel(int64_t id) override;
  void upsertTrial(const TrialRecord& t) override;
  std::vector<TrialRecord> trials(int64_t experiment_id) override;
  std::map<std::string, int64_t> trialCounts(int64_t experiment_id) override;
  int schemaVersion() override;

  // The schema version this build writes, per dialect.
  static int latestSchemaVersion(Dialect d);

 private:
  void migrate();
  int64_t metricNameId(const std::string& name);
  std::optional<int64_t> findMetricNameId(const std::string& name);
  std::vector<JobRecord> selectJobs(const std::string& where, const std::function<void(SqlStmt&)>& bind);
  std::vector<ExperimentRecord> selectExperiments(const std::string& where, const std::function<void(SqlStmt&)>& bind);
  void updateRollups(int64_t job_id, const std::vector<metrics::MetricPoint>& points);

  sched::Placement readPlacement(SqlStmt& s, int first_column);  // columns replica..gpu_ids
  std::unique_ptr<SqlDb> db_;
  int tx_depth_ = 0;
  void runTransaction(const std::function<void()>& fn, bool exclusive);
  std::unordered_map<std::string, int64_t> name_ids_;
};

}  // namespace trainyard::store
