// SQLite implementation of Store: one file, WAL journal, schema migrations
// applied on open (each migration runs once, recorded in schema_version).
#pragma once
#include <string>
#include <unordered_map>

#include "store/store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace trainyard::store {

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;

  void transaction(const std::function<void()>& fn) override;
  void createJob(JobRecord& job) override;
  std::optional<JobRecord> getJob(const std::string& name) override;
  std::optional<JobRecord> getJobById(int64_t id) override;
  std::vector<JobRecord> listJobs(const std::string& phase) override;
  std::vector<JobRecord> listActiveJobs() override;
  void updateJobStatus(const JobRecord& job) override;
  void requestCancel(int64_t job_id) override;
  bool deleteJob(int64_t job_id) override;
  void upsertAttempt(const AttemptRecord& a) override;
  std::vector<AttemptRecord> attempts(int64_t job_id) override;
  void addCondition(int64_t job_id, const Condition& c) override;
  std::vector<Condition> conditions(int64_t job_id) override;
  void addEvent(int64_t job_id, const Event& e) override;
  std::vector<Event> events(int64_t job_id) override;
  void appendMetrics(int64_t job_id, const std::vector<metrics::MetricPoint>& points) override;
  std::vector<metrics::MetricPoint> metrics(int64_t job_id, const std::string& name) override;
  std::vector<metrics::MetricPoint> lastMetrics(int64_t job_id) override;
  void createExperiment(ExperimentRecord& e) override;
  std::optional<ExperimentRecord> getExperiment(const std::string& name) override;
  std::optional<ExperimentRecord> getExperimentById(int64_t id) override;
  std::vector<ExperimentRecord> listExperiments() override;
  void updateExperimentStatus(const ExperimentRecord& e) override;
  void requestExperimentCancel(int64_t id) override;
  void upsertTrial(const TrialRecord& t) override;
  std::vector<TrialRecord> trials(int64_t experiment_id) override;
  int schemaVersion() override;

 private:
  class Stmt;
  void exec(const char* sql);
  void migrate();
  int64_t metricNameId(const std::string& name);
  std::vector<JobRecord> queryJobs(const std::string& where, const std::function<void(Stmt&)>& bind);
  std::vector<ExperimentRecord> queryExperiments(const std::string& where, const std::function<void(Stmt&)>& bind);

  sqlite3* db_ = nullptr;
  std::string path_;
  int tx_depth_ = 0;
  std::unordered_map<std::string, int64_t> name_ids_;
};

}  // namespace trainyard::store
