#include "store/sqlite_store.h"

#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

namespace trainyard::store {

// Thin RAII statement: bind by position, step, read columns.
class SqliteStore::Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      throw std::runtime_error(fmt::format("sqlite prepare failed: {} in: {}", sqlite3_errmsg(db), sql));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, int v) { sqlite3_bind_int64(s_, i, v); return *this; }
  Stmt& bind(int i, double v) { sqlite3_bind_double(s_, i, v); return *this; }
  Stmt& bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); return *this; }
  Stmt& bindOpt(int i, const std::optional<int>& v) {
    if (v) sqlite3_bind_int64(s_, i, *v); else sqlite3_bind_null(s_, i);
    return *this;
  }
  // True while a row is available.
  bool step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    if (rc == SQLITE_CONSTRAINT) throw NameConflict(sqlite3_errmsg(db_));
    throw std::runtime_error(fmt::format("sqlite step failed: {}", sqlite3_errmsg(db_)));
  }
  void reset() { sqlite3_reset(s_); sqlite3_clear_bindings(s_); }
  int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
  double f64(int c) { return sqlite3_column_double(s_, c); }
  bool isNull(int c) { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) {
    auto p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

namespace {

// Append-only list: each entry migrates the schema from version i to i+1.
// Never edit a shipped entry; add a new one.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  spec TEXT NOT NULL,
  phase TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  restarts INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL DEFAULT 0,
  queue TEXT NOT NULL DEFAULT 'default',
  created_at REAL NOT NULL,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  node TEXT NOT NULL DEFAULT '',
  allocation TEXT NOT NULL DEFAULT '',
  owner TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  outputs_dir TEXT NOT NULL DEFAULT '',
  log_dir TEXT NOT NULL DEFAULT '');
CREATE INDEX jobs_phase ON jobs(phase);
CREATE TABLE attempts(
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  replica TEXT NOT NULL,
  state TEXT NOT NULL,
  pid INTEGER NOT NULL DEFAULT 0,
  started_at REAL NOT NULL DEFAULT 0,
  finished_at REAL NOT NULL DEFAULT 0,
  exit_code INTEGER,
  signal INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  log_path TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(job_id, attempt, replica));
CREATE TABLE conditions(
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  type TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX conditions_job ON conditions(job_id);
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  time REAL NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX events_job ON events(job_id);
CREATE TABLE metric_names(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE metrics(
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name_id INTEGER NOT NULL,
  step INTEGER NOT NULL,
  time REAL NOT NULL,
  value REAL NOT NULL);
CREATE INDEX metrics_series ON metrics(job_id, name_id, step);
)sql",
    // 2: the latest point of each series, kept on append, so "last values"
    // does not scan a million-point series.
    R"sql(
CREATE TABLE metric_last(
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name_id INTEGER NOT NULL,
  step INTEGER NOT NULL,
  time REAL NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY(job_id, name_id));
INSERT INTO metric_last(job_id, name_id, step, time, value)
  SELECT job_id, name_id, step, time, value FROM metrics
  WHERE rowid IN (SELECT MAX(rowid) FROM metrics GROUP BY job_id, name_id);
)sql",
    // 3: experiments (hyperparameter sweeps) and their trials.
    R"sql(
CREATE TABLE experiments(
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,
  phase TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  finished_at REAL NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0);
CREATE TABLE trials(
  experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  params TEXT NOT NULL,
  point TEXT NOT NULL,
  state TEXT NOT NULL,
  job_name TEXT NOT NULL,
  runs INTEGER NOT NULL DEFAULT 1,
  objective TEXT NOT NULL DEFAULT '[]',
  metrics TEXT NOT NULL DEFAULT '{}',
  rung INTEGER NOT NULL DEFAULT -1,
  stop_requested INTEGER NOT NULL DEFAULT 0,
  meta TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  finished_at REAL NOT NULL DEFAULT 0,
  PRIMARY KEY(experiment_id, number));
)sql",
};

std::string newUid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

}  // namespace

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error(fmt::format("cannot open the store {}: {}", path, msg));
  }
  // Several `trainyard run` processes may share the file: wait for locks
  // rather than fail.
  sqlite3_busy_timeout(db_, 30000);
  // Note: the last connection checkpoints the WAL on close. Turning that off
  // (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE) was measured to be slower: every
  // later open then rebuilds the WAL index by reading the whole WAL.
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
  migrate();
}

SqliteStore::~SqliteStore() { sqlite3_close(db_); }

void SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(fmt::format("sqlite: {} ({})", msg, path_));
  }
}

void SqliteStore::migrate() {
  // Fast path, read-only: the schema is current (every open but the first).
  {
    Stmt probe(db_, "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'");
    if (probe.step() && schemaVersion() == static_cast<int>(std::size(kMigrations))) return;
  }
  transaction([&] {
    exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
    int version = schemaVersion();
    int latest = static_cast<int>(std::size(kMigrations));
    if (version > latest)
      throw std::runtime_error(fmt::format(
          "the store {} has schema version {}, newer than this trainyard knows ({}); upgrade trainyard", path_,
          version, latest));
    for (int v = version; v < latest; ++v) exec(kMigrations[v]);
    if (version != latest) {
      exec("DELETE FROM schema_version");
      Stmt(db_, "INSERT INTO schema_version(version) VALUES(?)").bind(1, latest).step();
    }
  });
}

int SqliteStore::schemaVersion() {
  Stmt s(db_, "SELECT MAX(version) FROM schema_version");
  return s.step() && !s.isNull(0) ? static_cast<int>(s.i64(0)) : 0;
}

void SqliteStore::transaction(const std::function<void()>& fn) {
  if (tx_depth_ > 0) {
    fn();
    return;
  }
  exec("BEGIN IMMEDIATE");
  ++tx_depth_;
  try {
    fn();
  } catch (...) {
    --tx_depth_;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  --tx_depth_;
  exec("COMMIT");
}

void SqliteStore::createJob(JobRecord& job) {
  job.uid = newUid();
  Stmt s(db_,
         "INSERT INTO jobs(uid, name, kind, spec, phase, reason, message, priority, queue, created_at, owner, "
         "outputs_dir, log_dir) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, job.uid).bind(2, job.name).bind(3, job.kind).bind(4, nlohmann::json(job.spec).dump());
  s.bind(5, job.phase).bind(6, job.reason).bind(7, job.message).bind(8, job.spec.priority);
  s.bind(9, job.spec.queue).bind(10, job.created_at).bind(11, job.owner).bind(12, job.outputs_dir);
  s.bind(13, job.log_dir);
  try {
    s.step();
  } catch (const NameConflict&) {
    throw NameConflict(fmt::format("a job named \"{}\" already exists", job.name));
  }
  job.id = sqlite3_last_insert_rowid(db_);
}

static constexpr const char* kJobColumns =
    "SELECT id, uid, name, kind, spec, phase, reason, message, restarts, created_at, started_at, finished_at, "
    "node, allocation, owner, cancel_requested, outputs_dir, log_dir FROM jobs ";

std::vector<JobRecord> SqliteStore::queryJobs(const std::string& where, const std::function<void(Stmt&)>& bind) {
  Stmt s(db_, (kJobColumns + where).c_str());
  bind(s);
  std::vector<JobRecord> out;
  while (s.step()) {
    JobRecord j;
    j.id = s.i64(0);
    j.uid = s.text(1);
    j.name = s.text(2);
    j.kind = s.text(3);
    j.spec = nlohmann::json::parse(s.text(4)).get<spec::TrainJobSpec>();
    j.phase = s.text(5);
    j.reason = s.text(6);
    j.message = s.text(7);
    j.restarts = static_cast<int>(s.i64(8));
    j.created_at = s.f64(9);
    j.started_at = s.f64(10);
    j.finished_at = s.f64(11);
    j.node = s.text(12);
    j.allocation = s.text(13);
    j.owner = s.text(14);
    j.cancel_requested = s.i64(15) != 0;
    j.outputs_dir = s.text(16);
    j.log_dir = s.text(17);
    out.push_back(std::move(j));
  }
  return out;
}

std::optional<JobRecord> SqliteStore::getJob(const std::string& name) {
  auto v = queryJobs("WHERE name = ?", [&](Stmt& s) { s.bind(1, name); });
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}

std::optional<JobRecord> SqliteStore::getJobById(int64_t id) {
  auto v = queryJobs("WHERE id = ?", [&](Stmt& s) { s.bind(1, id); });
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}

std::vector<JobRecord> SqliteStore::listJobs(const std::string& phase) {
  if (phase.empty()) return queryJobs("ORDER BY id", [](Stmt&) {});
  return queryJobs("WHERE phase = ? ORDER BY id", [&](Stmt& s) { s.bind(1, phase); });
}

std::vector<JobRecord> SqliteStore::listActiveJobs() {
  return queryJobs("WHERE phase NOT IN ('Succeeded', 'Failed') ORDER BY id", [](Stmt&) {});
}

void SqliteStore::updateJobStatus(const JobRecord& j) {
  Stmt s(db_,
         "UPDATE jobs SET phase=?, reason=?, message=?, restarts=?, started_at=?, finished_at=?, node=?, "
         "allocation=?, owner=?, outputs_dir=?, log_dir=? WHERE id=?");
  s.bind(1, j.phase).bind(2, j.reason).bind(3, j.message).bind(4, j.restarts).bind(5, j.started_at);
  s.bind(6, j.finished_at).bind(7, j.node).bind(8, j.allocation).bind(9, j.owner).bind(10, j.outputs_dir);
  s.bind(11, j.log_dir).bind(12, j.id);
  s.step();
}

void SqliteStore::requestCancel(int64_t job_id) {
  Stmt(db_, "UPDATE jobs SET cancel_requested=1 WHERE id=?").bind(1, job_id).step();
}

bool SqliteStore::deleteJob(int64_t job_id) {
  Stmt(db_, "DELETE FROM jobs WHERE id=?").bind(1, job_id).step();
  return sqlite3_changes(db_) > 0;
}

void SqliteStore::upsertAttempt(const AttemptRecord& a) {
  Stmt s(db_,
         "INSERT INTO attempts(job_id, attempt, replica, state, pid, started_at, finished_at, exit_code, signal, "
         "reason, log_path) VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(job_id, attempt, replica) DO UPDATE SET "
         "state=excluded.state, pid=excluded.pid, started_at=excluded.started_at, finished_at=excluded.finished_at, "
         "exit_code=excluded.exit_code, signal=excluded.signal, reason=excluded.reason, log_path=excluded.log_path");
  s.bind(1, a.job_id).bind(2, a.attempt).bind(3, a.replica).bind(4, a.state).bind(5, a.pid);
  s.bind(6, a.started_at).bind(7, a.finished_at).bindOpt(8, a.exit_code).bindOpt(9, a.signal);
  s.bind(10, a.reason).bind(11, a.log_path);
  s.step();
}

std::vector<AttemptRecord> SqliteStore::attempts(int64_t job_id) {
  Stmt s(db_,
         "SELECT attempt, replica, state, pid, started_at, finished_at, exit_code, signal, reason, log_path "
         "FROM attempts WHERE job_id=? ORDER BY attempt, replica");
  s.bind(1, job_id);
  std::vector<AttemptRecord> out;
  while (s.step()) {
    AttemptRecord a;
    a.job_id = job_id;
    a.attempt = static_cast<int>(s.i64(0));
    a.replica = s.text(1);
    a.state = s.text(2);
    a.pid = s.i64(3);
    a.started_at = s.f64(4);
    a.finished_at = s.f64(5);
    if (!s.isNull(6)) a.exit_code = static_cast<int>(s.i64(6));
    if (!s.isNull(7)) a.signal = static_cast<int>(s.i64(7));
    a.reason = s.text(8);
    a.log_path = s.text(9);
    out.push_back(std::move(a));
  }
  return out;
}

void SqliteStore::addCondition(int64_t job_id, const Condition& c) {
  Stmt s(db_, "INSERT INTO conditions(job_id, type, status, reason, message, time) VALUES(?,?,?,?,?,?)");
  s.bind(1, job_id).bind(2, c.type).bind(3, c.status).bind(4, c.reason).bind(5, c.message).bind(6, c.time);
  s.step();
}

std::vector<Condition> SqliteStore::conditions(int64_t job_id) {
  Stmt s(db_, "SELECT type, status, reason, message, time FROM conditions WHERE job_id=? ORDER BY id");
  s.bind(1, job_id);
  std::vector<Condition> out;
  while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.f64(4)});
  return out;
}

void SqliteStore::addEvent(int64_t job_id, const Event& e) {
  Stmt s(db_, "INSERT INTO events(job_id, time, type, reason, message) VALUES(?,?,?,?,?)");
  s.bind(1, job_id).bind(2, e.time).bind(3, e.type).bind(4, e.reason).bind(5, e.message);
  s.step();
}

std::vector<Event> SqliteStore::events(int64_t job_id) {
  Stmt s(db_, "SELECT time, type, reason, message FROM events WHERE job_id=? ORDER BY id");
  s.bind(1, job_id);
  std::vector<Event> out;
  while (s.step()) out.push_back({s.f64(0), s.text(1), s.text(2), s.text(3)});
  return out;
}

int64_t SqliteStore::metricNameId(const std::string& name) {
  auto it = name_ids_.find(name);
  if (it != name_ids_.end()) return it->second;
  Stmt(db_, "INSERT OR IGNORE INTO metric_names(name) VALUES(?)").bind(1, name).step();
  Stmt q(db_, "SELECT id FROM metric_names WHERE name=?");
  q.bind(1, name);
  q.step();
  int64_t id = q.i64(0);
  name_ids_.emplace(name, id);
  return id;
}

void SqliteStore::appendMetrics(int64_t job_id, const std::vector<metrics::MetricPoint>& points) {
  if (points.empty()) return;
  // Multi-row INSERTs: one statement step per kBatch points instead of per
  // point roughly halves the cost of ingesting a long series.
  constexpr size_t kBatch = 64;
  static const std::string batch_sql = [] {
    std::string sql = "INSERT INTO metrics(job_id, name_id, step, time, value) VALUES ";
    for (size_t i = 0; i < kBatch; ++i) sql += i ? ",(?,?,?,?,?)" : "(?,?,?,?,?)";
    return sql;
  }();
  transaction([&] {
    std::unordered_map<int64_t, const metrics::MetricPoint*> last;
    Stmt many(db_, batch_sql.c_str());
    Stmt one(db_, "INSERT INTO metrics(job_id, name_id, step, time, value) VALUES(?,?,?,?,?)");
    size_t i = 0;
    auto bind = [&](Stmt& s, int base, const metrics::MetricPoint& p) {
      int64_t name_id = metricNameId(p.name);
      last[name_id] = &p;
      s.bind(base + 1, job_id).bind(base + 2, name_id).bind(base + 3, p.step).bind(base + 4, p.timestamp);
      s.bind(base + 5, p.value);
    };
    for (; i + kBatch <= points.size(); i += kBatch) {
      for (size_t k = 0; k < kBatch; ++k) bind(many, static_cast<int>(k * 5), points[i + k]);
      many.step();
      many.reset();
    }
    for (; i < points.size(); ++i) {
      bind(one, 0, points[i]);
      one.step();
      one.reset();
    }
    Stmt up(db_,
            "INSERT INTO metric_last(job_id, name_id, step, time, value) VALUES(?,?,?,?,?) "
            "ON CONFLICT(job_id, name_id) DO UPDATE SET step=excluded.step, time=excluded.time, value=excluded.value");
    for (const auto& [name_id, p] : last) {
      up.bind(1, job_id).bind(2, name_id).bind(3, p->step).bind(4, p->timestamp).bind(5, p->value);
      up.step();
      up.reset();
    }
  });
}

std::vector<metrics::MetricPoint> SqliteStore::metrics(int64_t job_id, const std::string& name) {
  std::string sql =
      "SELECT n.name, m.value, m.step, m.time FROM metrics m JOIN metric_names n ON n.id = m.name_id "
      "WHERE m.job_id=? ";
  sql += name.empty() ? "ORDER BY n.name, m.step, m.rowid" : "AND n.name=? ORDER BY m.step, m.rowid";
  Stmt s(db_, sql.c_str());
  s.bind(1, job_id);
  if (!name.empty()) s.bind(2, name);
  std::vector<metrics::MetricPoint> out;
  while (s.step()) out.push_back({s.text(0), s.f64(1), s.i64(2), s.f64(3)});
  return out;
}

std::vector<metrics::MetricPoint> SqliteStore::lastMetrics(int64_t job_id) {
  Stmt s(db_,
         "SELECT n.name, m.value, m.step, m.time FROM metric_last m JOIN metric_names n ON n.id = m.name_id "
         "WHERE m.job_id=? ORDER BY n.name");
  s.bind(1, job_id);
  std::vector<metrics::MetricPoint> out;
  while (s.step()) out.push_back({s.text(0), s.f64(1), s.i64(2), s.f64(3)});
  return out;
}

void SqliteStore::createExperiment(ExperimentRecord& e) {
  e.uid = newUid();
  Stmt s(db_, "INSERT INTO experiments(uid, name, spec, phase, created_at, owner) VALUES(?,?,?,?,?,?)");
  s.bind(1, e.uid).bind(2, e.name).bind(3, nlohmann::json(e.spec).dump()).bind(4, e.phase).bind(5, e.created_at);
  s.bind(6, e.owner);
  try {
    s.step();
  } catch (const NameConflict&) {
    throw NameConflict(fmt::format("an experiment named \"{}\" already exists", e.name));
  }
  e.id = sqlite3_last_insert_rowid(db_);
}

std::vector<ExperimentRecord> SqliteStore::queryExperiments(const std::string& where,
                                                            const std::function<void(Stmt&)>& bind) {
  Stmt s(db_, ("SELECT id, uid, name, spec, phase, reason, message, created_at, finished_at, owner, cancel_requested "
               "FROM experiments " + where).c_str());
  bind(s);
  std::vector<ExperimentRecord> out;
  while (s.step()) {
    ExperimentRecord e;
    e.id = s.i64(0);
    e.uid = s.text(1);
    e.name = s.text(2);
    e.spec = nlohmann::json::parse(s.text(3)).get<spec::ExperimentSpec>();
    e.phase = s.text(4);
    e.reason = s.text(5);
    e.message = s.text(6);
    e.created_at = s.f64(7);
    e.finished_at = s.f64(8);
    e.owner = s.text(9);
    e.cancel_requested = s.i64(10) != 0;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<ExperimentRecord> SqliteStore::getExperiment(const std::string& name) {
  auto v = queryExperiments("WHERE name = ?", [&](Stmt& s) { s.bind(1, name); });
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}

std::optional<ExperimentRecord> SqliteStore::getExperimentById(int64_t id) {
  auto v = queryExperiments("WHERE id = ?", [&](Stmt& s) { s.bind(1, id); });
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}

std::vector<ExperimentRecord> SqliteStore::listExperiments() {
  return queryExperiments("ORDER BY id", [](Stmt&) {});
}

void SqliteStore::updateExperimentStatus(const ExperimentRecord& e) {
  Stmt s(db_, "UPDATE experiments SET phase=?, reason=?, message=?, finished_at=?, owner=?, cancel_requested=? WHERE id=?");
  s.bind(1, e.phase).bind(2, e.reason).bind(3, e.message).bind(4, e.finished_at).bind(5, e.owner);
  s.bind(6, e.cancel_requested ? 1 : 0).bind(7, e.id);
  s.step();
}

void SqliteStore::requestExperimentCancel(int64_t id) {
  Stmt(db_, "UPDATE experiments SET cancel_requested=1 WHERE id=?").bind(1, id).step();
}

void SqliteStore::upsertTrial(const TrialRecord& t) {
  Stmt s(db_,
         "INSERT INTO trials(experiment_id, number, params, point, state, job_name, runs, objective, metrics, rung, "
         "stop_requested, meta, reason, message, created_at, finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
         "ON CONFLICT(experiment_id, number) DO UPDATE SET params=excluded.params, point=excluded.point, "
         "state=excluded.state, job_name=excluded.job_name, runs=excluded.runs, objective=excluded.objective, "
         "metrics=excluded.metrics, rung=excluded.rung, stop_requested=excluded.stop_requested, meta=excluded.meta, "
         "reason=excluded.reason, message=excluded.message, finished_at=excluded.finished_at");
  s.bind(1, t.experiment_id).bind(2, t.number).bind(3, nlohmann::json(t.params).dump());
  s.bind(4, nlohmann::json(t.point).dump()).bind(5, t.state).bind(6, t.job_name).bind(7, t.runs);
  s.bind(8, nlohmann::json(t.objective).dump()).bind(9, nlohmann::json(t.metrics).dump()).bind(10, t.rung);
  s.bind(11, t.stop_requested ? 1 : 0).bind(12, t.meta).bind(13, t.reason).bind(14, t.message);
  s.bind(15, t.created_at).bind(16, t.finished_at);
  s.step();
}

std::vector<TrialRecord> SqliteStore::trials(int64_t experiment_id) {
  Stmt s(db_,
         "SELECT number, params, point, state, job_name, runs, objective, metrics, rung, stop_requested, meta, reason, "
         "message, created_at, finished_at FROM trials WHERE experiment_id=? ORDER BY number");
  s.bind(1, experiment_id);
  std::vector<TrialRecord> out;
  while (s.step()) {
    TrialRecord t;
    t.experiment_id = experiment_id;
    t.number = static_cast<int>(s.i64(0));
    t.params = nlohmann::json::parse(s.text(1)).get<std::map<std::string, std::string>>();
    t.point = nlohmann::json::parse(s.text(2)).get<std::vector<double>>();
    t.state = s.text(3);
    t.job_name = s.text(4);
    t.runs = static_cast<int>(s.i64(5));
    t.objective = nlohmann::json::parse(s.text(6)).get<std::vector<double>>();
    t.metrics = nlohmann::json::parse(s.text(7)).get<std::map<std::string, double>>();
    t.rung = static_cast<int>(s.i64(8));
    t.stop_requested = s.i64(9) != 0;
    t.meta = s.text(10);
    t.reason = s.text(11);
    t.message = s.text(12);
    t.created_at = s.f64(13);
    t.finished_at = s.f64(14);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace trainyard::store
