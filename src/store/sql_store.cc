#include "store/sql_store.h"

#include <cmath>
#include <iterator>
#include <map>
#include <random>
#include <span>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "metrics/downsample.h"

namespace trainyard::store {

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
    // 4: the control plane: submitting user, labels for filtering, what a
    // restarted controller needs to re-attach replicas and resume metric
    // collection, and rollups for downsampled series.
    R"sql(
ALTER TABLE jobs ADD COLUMN user TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
UPDATE jobs SET labels = COALESCE(json_extract(spec, '$.labels'), '{}');
ALTER TABLE experiments ADD COLUMN user TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN pid_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN log_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN file_offset INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metric_last ADD COLUMN points INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metric_last ADD COLUMN first_step INTEGER NOT NULL DEFAULT 0;
UPDATE metric_last SET
  points = (SELECT COUNT(*) FROM metrics m WHERE m.job_id = metric_last.job_id AND m.name_id = metric_last.name_id),
  first_step = (SELECT MIN(step) FROM metrics m WHERE m.job_id = metric_last.job_id AND m.name_id = metric_last.name_id);
CREATE TABLE metric_rollup(
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name_id INTEGER NOT NULL,
  level INTEGER NOT NULL,
  bucket INTEGER NOT NULL,
  first_step INTEGER NOT NULL,
  n INTEGER NOT NULL,
  min REAL NOT NULL,
  max REAL NOT NULL,
  last_step INTEGER NOT NULL,
  last_value REAL NOT NULL,
  PRIMARY KEY(job_id, name_id, level, bucket));
INSERT INTO metric_rollup(job_id, name_id, level, bucket, first_step, n, min, max, last_step, last_value)
  SELECT job_id, name_id, 64, step / 64, MIN(step), COUNT(*), MIN(value), MAX(value), MAX(step), value
  FROM metrics WHERE step >= 0 GROUP BY job_id, name_id, step / 64;
INSERT INTO metric_rollup(job_id, name_id, level, bucket, first_step, n, min, max, last_step, last_value)
  SELECT job_id, name_id, 4096, step / 4096, MIN(step), COUNT(*), MIN(value), MAX(value), MAX(step), value
  FROM metrics WHERE step >= 0 GROUP BY job_id, name_id, step / 4096;
)sql",
    // 5: the cluster core. Placements per replica (a gang may span nodes;
    // the old one-node allocation becomes replica "*"), the scheduler's view
    // of a job without its spec, preemption, queues and cohorts, and what an
    // administrator said about nodes.
    R"sql(
CREATE TABLE placements(
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  replica TEXT NOT NULL,
  node TEXT NOT NULL,
  cpu_millis INTEGER NOT NULL DEFAULT 0,
  memory_bytes INTEGER NOT NULL DEFAULT 0,
  gpu INTEGER NOT NULL DEFAULT 0,
  gpu_share INTEGER NOT NULL DEFAULT 0,
  gpu_ids TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY(job_id, replica));
CREATE INDEX placements_node ON placements(node);
INSERT INTO placements(job_id, replica, node, cpu_millis, memory_bytes, gpu, gpu_ids)
  SELECT id, '*', node, COALESCE(json_extract(allocation, '$.cpu_millis'), 0),
         COALESCE(json_extract(allocation, '$.memory_bytes'), 0), COALESCE(json_extract(allocation, '$.gpu'), 0),
         COALESCE(json_extract(allocation, '$.gpu_ids'), '[]')
  FROM jobs WHERE allocation != '' AND json_valid(allocation) AND phase NOT IN ('Succeeded', 'Failed');
UPDATE jobs SET allocation = '';
ALTER TABLE jobs ADD COLUMN request TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN preempt_requested INTEGER NOT NULL DEFAULT 0;
CREATE TABLE queues(
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  user TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  PRIMARY KEY(kind, name));
CREATE TABLE node_states(name TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', time REAL NOT NULL);
CREATE TABLE leases(owner TEXT PRIMARY KEY, expires_at REAL NOT NULL);
ALTER TABLE attempts ADD COLUMN handle TEXT NOT NULL DEFAULT '';
UPDATE attempts SET handle = pid || '@' || pid_start WHERE pid > 0;
)sql",
    // 6: metric collection resumes at the backend's opaque cursors (a
    // byte offset is a local file's notion); the offsets stored so far were
    // the local backend's cursors, so they carry over as they are.
    R"sql(
ALTER TABLE attempts ADD COLUMN log_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN file_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN collect_carry TEXT NOT NULL DEFAULT '';
UPDATE attempts SET log_cursor = CAST(log_offset AS TEXT) WHERE log_offset > 0;
UPDATE attempts SET file_cursor = CAST(file_offset AS TEXT) WHERE file_offset > 0;
)sql",
    // 7: Kubeflow's runPolicy.suspend: desired state, set at submission and
    // by `trainyard suspend/resume`.
    R"sql(
ALTER TABLE jobs ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
)sql",
};

// PostgreSQL: the same schema, created in one step (no PostgreSQL store
// shipped before it); later changes append here as for SQLite.
const char* const kPgMigrations[] = {
    R"sql(
CREATE TABLE jobs(
  id BIGSERIAL PRIMARY KEY,
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
  created_at DOUBLE PRECISION NOT NULL,
  started_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  finished_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  node TEXT NOT NULL DEFAULT '',
  allocation TEXT NOT NULL DEFAULT '',
  owner TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  outputs_dir TEXT NOT NULL DEFAULT '',
  log_dir TEXT NOT NULL DEFAULT '',
  "user" TEXT NOT NULL DEFAULT '',
  labels TEXT NOT NULL DEFAULT '{}');
CREATE INDEX jobs_phase ON jobs(phase);
CREATE TABLE attempts(
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  replica TEXT NOT NULL,
  state TEXT NOT NULL,
  pid BIGINT NOT NULL DEFAULT 0,
  started_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  finished_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  exit_code INTEGER,
  signal INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  log_path TEXT NOT NULL DEFAULT '',
  pid_start BIGINT NOT NULL DEFAULT 0,
  log_offset BIGINT NOT NULL DEFAULT 0,
  file_offset BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY(job_id, attempt, replica));
CREATE TABLE conditions(
  id BIGSERIAL PRIMARY KEY,
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  type TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL,
  time DOUBLE PRECISION NOT NULL);
CREATE INDEX conditions_job ON conditions(job_id);
CREATE TABLE events(
  id BIGSERIAL PRIMARY KEY,
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  time DOUBLE PRECISION NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX events_job ON events(job_id);
CREATE TABLE metric_names(id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE metrics(
  seq BIGSERIAL,
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name_id BIGINT NOT NULL,
  step BIGINT NOT NULL,
  time DOUBLE PRECISION NOT NULL,
  value DOUBLE PRECISION NOT NULL);
CREATE INDEX metrics_series ON metrics(job_id, name_id, step);
CREATE TABLE metric_last(
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name_id BIGINT NOT NULL,
  step BIGINT NOT NULL,
  time DOUBLE PRECISION NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  points BIGINT NOT NULL DEFAULT 0,
  first_step BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY(job_id, name_id));
CREATE TABLE metric_rollup(
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  name_id BIGINT NOT NULL,
  level INTEGER NOT NULL,
  bucket BIGINT NOT NULL,
  first_step BIGINT NOT NULL,
  n BIGINT NOT NULL,
  min DOUBLE PRECISION NOT NULL,
  max DOUBLE PRECISION NOT NULL,
  last_step BIGINT NOT NULL,
  last_value DOUBLE PRECISION NOT NULL,
  PRIMARY KEY(job_id, name_id, level, bucket));
CREATE TABLE experiments(
  id BIGSERIAL PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL,
  phase TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL,
  finished_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  owner TEXT NOT NULL DEFAULT '',
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  "user" TEXT NOT NULL DEFAULT '');
CREATE TABLE trials(
  experiment_id BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
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
  created_at DOUBLE PRECISION NOT NULL,
  finished_at DOUBLE PRECISION NOT NULL DEFAULT 0,
  PRIMARY KEY(experiment_id, number));
)sql",
    // 2: no foreign key from metrics to jobs. Its check (an index probe and
    // a row lock on the job per point) made COPY three times slower: 200,000
    // points in 1.2 s against 0.4 s without. deleteJob removes a job's points
    // itself; a point pushed while its job is being deleted can outlive it,
    // orphaned and unreachable (ids are never reused).
    R"sql(
ALTER TABLE metrics DROP CONSTRAINT IF EXISTS metrics_job_id_fkey;
)sql",
    // 3: the cluster core (SQLite's 5).
    R"sql(
CREATE TABLE placements(
  job_id BIGINT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  replica TEXT NOT NULL,
  node TEXT NOT NULL,
  cpu_millis BIGINT NOT NULL DEFAULT 0,
  memory_bytes BIGINT NOT NULL DEFAULT 0,
  gpu INTEGER NOT NULL DEFAULT 0,
  gpu_share INTEGER NOT NULL DEFAULT 0,
  gpu_ids TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY(job_id, replica));
CREATE INDEX placements_node ON placements(node);
INSERT INTO placements(job_id, replica, node, cpu_millis, memory_bytes, gpu, gpu_ids)
  SELECT id, '*', node, COALESCE((allocation::json->>'cpu_millis')::BIGINT, 0),
         COALESCE((allocation::json->>'memory_bytes')::BIGINT, 0), COALESCE((allocation::json->>'gpu')::INTEGER, 0),
         COALESCE(allocation::json->>'gpu_ids', '[]')
  FROM jobs WHERE allocation LIKE '{%' AND phase NOT IN ('Succeeded', 'Failed');
UPDATE jobs SET allocation = '';
ALTER TABLE jobs ADD COLUMN request TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN preemptions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN preempt_requested INTEGER NOT NULL DEFAULT 0;
CREATE TABLE queues(
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  "user" TEXT NOT NULL DEFAULT '',
  created_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY(kind, name));
CREATE TABLE node_states(name TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
  time DOUBLE PRECISION NOT NULL);
CREATE TABLE leases(owner TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL);
ALTER TABLE attempts ADD COLUMN handle TEXT NOT NULL DEFAULT '';
UPDATE attempts SET handle = pid || '@' || pid_start WHERE pid > 0;
)sql",
    // 4: opaque collection cursors (SQLite's 6).
    R"sql(
ALTER TABLE attempts ADD COLUMN log_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN file_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN collect_carry TEXT NOT NULL DEFAULT '';
UPDATE attempts SET log_cursor = CAST(log_offset AS TEXT) WHERE log_offset > 0;
UPDATE attempts SET file_cursor = CAST(file_offset AS TEXT) WHERE file_offset > 0;
)sql",
    // 5: runPolicy.suspend (SQLite's 7).
    R"sql(
ALTER TABLE jobs ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
)sql"
};

std::string newUid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", rng(), rng());
}

// Rollup levels: steps per bucket. A query for ~2,000 buckets over a long
// series reads at most a few thousand rollup rows instead of every point.
constexpr int64_t kRollupLevels[] = {64, 4096};

template <size_t N>
std::span<const char* const> list(const char* const (&a)[N]) {
  return {a, N};
}

std::span<const char* const> migrationsFor(Dialect d) {
  return d == Dialect::SQLite ? list(kMigrations) : list(kPgMigrations);
}

}  // namespace

int SqlStore::latestSchemaVersion(Dialect d) { return static_cast<int>(migrationsFor(d).size()); }

SqlStore::SqlStore(std::unique_ptr<SqlDb> db) : db_(std::move(db)) { migrate(); }

SqlStore::~SqlStore() = default;

void SqlStore::migrate() {
  auto migrations = migrationsFor(db_->dialect());
  const int latest = static_cast<int>(migrations.size());
  // Fast path, read-only: the schema is current (every open but the first).
  if (db_->hasTable("schema_version") && schemaVersion() == latest) return;
  transaction([&] {
    db_->exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)");
    int version = schemaVersion();
    if (version > latest)
      throw std::runtime_error(fmt::format(
          "the store {} has schema version {}, newer than this trainyard knows ({}); upgrade trainyard", db_->where(),
          version, latest));
    for (int v = version; v < latest; ++v) db_->exec(migrations[v]);
    if (version != latest) {
      db_->exec("DELETE FROM schema_version");
      db_->prepare("INSERT INTO schema_version(version) VALUES(?)")->bind(1, latest).step();
    }
  });
}

int SqlStore::schemaVersion() {
  auto s = db_->prepare("SELECT MAX(version) FROM schema_version");
  return s->step() && !s->isNull(0) ? static_cast<int>(s->i64(0)) : 0;
}

void SqlStore::transaction(const std::function<void()>& fn) { runTransaction(fn, true); }

void SqlStore::runTransaction(const std::function<void()>& fn, bool exclusive) {
  if (tx_depth_ > 0) {
    fn();
    return;
  }
  if (exclusive) db_->begin();
  else db_->beginShared();
  ++tx_depth_;
  try {
    fn();
  } catch (...) {
    --tx_depth_;
    db_->rollback();
    throw;
  }
  --tx_depth_;
  db_->commit();
}

void SqlStore::createJob(JobRecord& job) {
  job.uid = newUid();
  auto s = db_->prepare(
      "INSERT INTO jobs(uid, name, kind, spec, phase, reason, message, priority, queue, created_at, owner, "
      "outputs_dir, log_dir, \"user\", labels, request, suspended) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id");
  s->bind(1, job.uid).bind(2, job.name).bind(3, job.kind).bind(4, nlohmann::json(job.spec).dump());
  s->bind(5, job.phase).bind(6, job.reason).bind(7, job.message).bind(8, job.spec.priority);
  s->bind(9, job.spec.queue).bind(10, job.created_at).bind(11, job.owner).bind(12, job.outputs_dir);
  s->bind(13, job.log_dir).bind(14, job.user).bind(15, nlohmann::json(job.spec.labels).dump()).bind(16, job.request);
  s->bind(17, job.suspended ? 1 : 0);
  try {
    s->step();
  } catch (const NameConflict&) {
    throw NameConflict(fmt::format("a job named \"{}\" already exists", job.name));
  }
  job.id = s->i64(0);
}

static constexpr const char* kJobColumns =
    "SELECT id, uid, name, kind, spec, phase, reason, message, restarts, created_at, started_at, finished_at, "
    "node, allocation, owner, cancel_requested, outputs_dir, log_dir, \"user\", request, preemptions, preempt_requested, "
    "suspended FROM jobs ";

std::vector<JobRecord> SqlStore::selectJobs(const std::string& where, const std::function<void(SqlStmt&)>& bind) {
  auto s = db_->prepare(kJobColumns + where);
  bind(*s);
  std::vector<JobRecord> out;
  while (s->step()) {
    JobRecord j;
    j.id = s->i64(0);
    j.uid = s->text(1);
    j.name = s->text(2);
    j.kind = s->text(3);
    j.spec = nlohmann::json::parse(s->text(4)).get<spec::TrainJobSpec>();
    j.phase = s->text(5);
    j.reason = s->text(6);
    j.message = s->text(7);
    j.restarts = static_cast<int>(s->i64(8));
    j.created_at = s->f64(9);
    j.started_at = s->f64(10);
    j.finished_at = s->f64(11);
    j.node = s->text(12);
    j.allocation = s->text(13);
    j.owner = s->text(14);
    j.cancel_requested = s->i64(15) != 0;
    j.stop_early = s->i64(15) == 2;
    j.outputs_dir = s->text(16);
    j.log_dir = s->text(17);
    j.user = s->text(18);
    j.request = s->text(19);
    j.preemptions = static_cast<int>(s->i64(20));
    j.preempt_requested = s->i64(21) != 0;
    j.suspended = s->i64(22) != 0;
    out.push_back(std::move(j));
  }
  return out;
}

namespace {
template <typename T>
std::optional<T> firstOf(std::vector<T> v) {
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}
}  // namespace

std::optional<JobRecord> SqlStore::getJob(const std::string& name) {
  return firstOf(selectJobs("WHERE name = ?", [&](SqlStmt& s) { s.bind(1, name); }));
}

std::optional<JobRecord> SqlStore::getJobById(int64_t id) {
  return firstOf(selectJobs("WHERE id = ?", [&](SqlStmt& s) { s.bind(1, id); }));
}

std::vector<JobRecord> SqlStore::listJobs(const std::string& phase) {
  if (phase.empty()) return selectJobs("ORDER BY id", [](SqlStmt&) {});
  return selectJobs("WHERE phase = ? ORDER BY id", [&](SqlStmt& s) { s.bind(1, phase); });
}

std::vector<JobRecord> SqlStore::listActiveJobs() {
  return selectJobs("WHERE phase NOT IN ('Succeeded', 'Failed', 'Stopped') ORDER BY id", [](SqlStmt&) {});
}

namespace {
// A LIKE pattern matching `"key":"value"` inside the labels JSON. LIKE's
// own wildcards are escaped; the JSON encoding of the label is exact.
// An empty value matches any value of the key.
std::string labelPattern(const std::string& key, const std::string& value) {
  std::string frag = nlohmann::json(key).dump() + ":" + (value.empty() ? "" : nlohmann::json(value).dump());
  std::string out = "%";
  for (char c : frag) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}
}  // namespace

JobPage SqlStore::queryJobs(const JobQuery& q) {
  std::string where = "WHERE 1=1";
  std::vector<std::string> args;
  if (q.phase == "active") {
    where += " AND phase NOT IN ('Succeeded', 'Failed', 'Stopped')";
  } else if (!q.phase.empty()) {
    where += " AND phase = ?";
    args.push_back(q.phase);
  }
  if (!q.label_key.empty()) {
    where += " AND labels LIKE ? ESCAPE '\\'";
    args.push_back(labelPattern(q.label_key, q.label_value));
  }
  if (!q.include_trials) {
    where += " AND labels NOT LIKE ? ESCAPE '\\'";
    args.push_back("%" + nlohmann::json(std::string(kExperimentLabel)).dump() + ":%");
  }
  if (q.viewer) {
    where += " AND (\"user\" = ? OR labels LIKE ? ESCAPE '\\')";
    args.push_back(*q.viewer);
    args.push_back(labelPattern(kSharedLabel, "true"));
  }
  auto bindAll = [&](SqlStmt& s) {
    for (size_t i = 0; i < args.size(); ++i) s.bind(static_cast<int>(i + 1), args[i]);
  };
  JobPage page;
  auto c = db_->prepare("SELECT COUNT(*) FROM jobs " + where);
  bindAll(*c);
  if (c->step()) page.total = c->i64(0);
  page.items = selectJobs(where + fmt::format(" ORDER BY id {} LIMIT {} OFFSET {}", q.newest_first ? "DESC" : "ASC",
                                              std::max<int64_t>(q.limit, 0), std::max<int64_t>(q.offset, 0)),
                          bindAll);
  return page;
}

std::vector<StateRow> SqlStore::jobStates(int64_t recent) {
  auto s = db_->prepare(
      "SELECT id, name, phase, reason, restarts, \"user\", CASE WHEN labels LIKE ? ESCAPE '\\' THEN 1 ELSE 0 END FROM jobs "
      "WHERE phase NOT IN ('Succeeded', 'Failed', 'Stopped') OR id IN (SELECT id FROM jobs ORDER BY id DESC LIMIT ?) ORDER BY id");
  s->bind(1, labelPattern(kSharedLabel, "true")).bind(2, std::max<int64_t>(recent, 0));
  std::vector<StateRow> out;
  while (s->step())
    out.push_back({s->i64(0), s->text(1), s->text(2), s->text(3), s->text(5), static_cast<int>(s->i64(4)), s->i64(6) != 0});
  return out;
}

std::vector<StateRow> SqlStore::activeExperimentStates() {
  auto s = db_->prepare("SELECT id, name, phase, reason, \"user\" FROM experiments WHERE phase NOT IN ('Succeeded', 'Failed', 'Stopped') ORDER BY id");
  std::vector<StateRow> out;
  while (s->step()) out.push_back({s->i64(0), s->text(1), s->text(2), s->text(3), s->text(4), 0, false});
  return out;
}

void SqlStore::updateJobStatus(const JobRecord& j) {
  auto s = db_->prepare(
      "UPDATE jobs SET phase=?, reason=?, message=?, restarts=?, started_at=?, finished_at=?, node=?, "
      "allocation=?, owner=?, outputs_dir=?, log_dir=?, preemptions=?, preempt_requested=? WHERE id=?");
  s->bind(1, j.phase).bind(2, j.reason).bind(3, j.message).bind(4, j.restarts).bind(5, j.started_at);
  s->bind(6, j.finished_at).bind(7, j.node).bind(8, j.allocation).bind(9, j.owner).bind(10, j.outputs_dir);
  s->bind(11, j.log_dir).bind(12, j.preemptions).bind(13, j.preempt_requested ? 1 : 0).bind(14, j.id);
  s->step();
}

void SqlStore::setSuspended(int64_t job_id, bool suspended) {
  db_->prepare("UPDATE jobs SET suspended=? WHERE id=?")->bind(1, suspended ? 1 : 0).bind(2, job_id).step();
}

void SqlStore::requestEarlyStop(int64_t job_id) {
  // cancel_requested 2: a cancel that ends the job Stopped (a user's cancel, 1, wins over it).
  db_->prepare("UPDATE jobs SET cancel_requested=2 WHERE id=? AND cancel_requested=0")->bind(1, job_id).step();
}

void SqlStore::requestCancel(int64_t job_id) {
  db_->prepare("UPDATE jobs SET cancel_requested=1 WHERE id=?")->bind(1, job_id).step();
}

bool SqlStore::deleteJob(int64_t job_id) {
  bool deleted = false;
  transaction([&] {
    // Points first: on PostgreSQL no foreign key cascades to them (migration 2).
    db_->prepare("DELETE FROM metrics WHERE job_id=?")->bind(1, job_id).step();
    auto s = db_->prepare("DELETE FROM jobs WHERE id=? RETURNING id");
    s->bind(1, job_id);
    deleted = s->step();
  });
  return deleted;
}

void SqlStore::upsertAttempt(const AttemptRecord& a) {
  auto s = db_->prepare(
      "INSERT INTO attempts(job_id, attempt, replica, state, handle, started_at, finished_at, exit_code, signal, "
      "reason, log_path, log_cursor, file_cursor, collect_carry) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(job_id, attempt, replica) DO UPDATE SET "
      "state=excluded.state, handle=excluded.handle, started_at=excluded.started_at, finished_at=excluded.finished_at, "
      "exit_code=excluded.exit_code, signal=excluded.signal, reason=excluded.reason, log_path=excluded.log_path");
  s->bind(1, a.job_id).bind(2, a.attempt).bind(3, a.replica).bind(4, a.state).bind(5, a.handle);
  s->bind(6, a.started_at).bind(7, a.finished_at).bindOpt(8, a.exit_code).bindOpt(9, a.signal);
  s->bind(10, a.reason).bind(11, a.log_path);
  s->bind(12, a.log_cursor).bind(13, a.file_cursor).bind(14, a.collect_carry);
  s->step();
}

std::vector<AttemptRecord> SqlStore::attempts(int64_t job_id) {
  auto s = db_->prepare(
      "SELECT attempt, replica, state, handle, started_at, finished_at, exit_code, signal, reason, log_path, "
      "log_cursor, file_cursor, collect_carry FROM attempts WHERE job_id=? ORDER BY attempt, replica");
  s->bind(1, job_id);
  std::vector<AttemptRecord> out;
  while (s->step()) {
    AttemptRecord a;
    a.job_id = job_id;
    a.attempt = static_cast<int>(s->i64(0));
    a.replica = s->text(1);
    a.state = s->text(2);
    a.handle = s->text(3);
    a.started_at = s->f64(4);
    a.finished_at = s->f64(5);
    if (!s->isNull(6)) a.exit_code = static_cast<int>(s->i64(6));
    if (!s->isNull(7)) a.signal = static_cast<int>(s->i64(7));
    a.reason = s->text(8);
    a.log_path = s->text(9);
    a.log_cursor = s->text(10);
    a.file_cursor = s->text(11);
    a.collect_carry = s->text(12);
    out.push_back(std::move(a));
  }
  return out;
}

void SqlStore::saveCollectCursors(int64_t job_id, int attempt, const std::string& replica, const std::string& log_cursor,
                                  const std::string& file_cursor, const std::string& carry) {
  auto s = db_->prepare(
      "UPDATE attempts SET log_cursor=?, file_cursor=?, collect_carry=? WHERE job_id=? AND attempt=? AND replica=?");
  s->bind(1, log_cursor).bind(2, file_cursor).bind(3, carry).bind(4, job_id);
  s->bind(5, attempt).bind(6, replica);
  s->step();
}

void SqlStore::addCondition(int64_t job_id, const Condition& c) {
  auto s = db_->prepare("INSERT INTO conditions(job_id, type, status, reason, message, time) VALUES(?,?,?,?,?,?)");
  s->bind(1, job_id).bind(2, c.type).bind(3, c.status).bind(4, c.reason).bind(5, c.message).bind(6, c.time);
  s->step();
}

std::vector<Condition> SqlStore::conditions(int64_t job_id) {
  auto s = db_->prepare("SELECT type, status, reason, message, time FROM conditions WHERE job_id=? ORDER BY id");
  s->bind(1, job_id);
  std::vector<Condition> out;
  while (s->step()) out.push_back({s->text(0), s->text(1), s->text(2), s->text(3), s->f64(4)});
  return out;
}

void SqlStore::addEvent(int64_t job_id, const Event& e) {
  auto s = db_->prepare("INSERT INTO events(job_id, time, type, reason, message) VALUES(?,?,?,?,?)");
  s->bind(1, job_id).bind(2, e.time).bind(3, e.type).bind(4, e.reason).bind(5, e.message);
  s->step();
}

void SqlStore::addEvents(const std::vector<std::pair<int64_t, Event>>& events) {
  constexpr size_t kChunk = 100;
  for (size_t from = 0; from < events.size(); from += kChunk) {
    size_t n = std::min(kChunk, events.size() - from);
    std::string values;
    for (size_t i = 0; i < n; ++i) values += i ? ", (?,?,?,?,?)" : "(?,?,?,?,?)";
    auto s = db_->prepare("INSERT INTO events(job_id, time, type, reason, message) VALUES " + values);
    for (size_t i = 0; i < n; ++i) {
      const auto& [id, e] = events[from + i];
      int c = static_cast<int>(5 * i);
      s->bind(c + 1, id).bind(c + 2, e.time).bind(c + 3, e.type).bind(c + 4, e.reason).bind(c + 5, e.message);
    }
    s->step();
  }
}

std::vector<Event> SqlStore::events(int64_t job_id) {
  auto s = db_->prepare("SELECT time, type, reason, message FROM events WHERE job_id=? ORDER BY id");
  s->bind(1, job_id);
  std::vector<Event> out;
  while (s->step()) out.push_back({s->f64(0), s->text(1), s->text(2), s->text(3)});
  return out;
}

std::optional<int64_t> SqlStore::findMetricNameId(const std::string& name) {
  auto it = name_ids_.find(name);
  if (it != name_ids_.end()) return it->second;
  auto q = db_->prepare("SELECT id FROM metric_names WHERE name=?");
  q->bind(1, name);
  if (!q->step()) return std::nullopt;
  int64_t id = q->i64(0);
  name_ids_.emplace(name, id);
  return id;
}

int64_t SqlStore::metricNameId(const std::string& name) {
  if (auto id = findMetricNameId(name)) return *id;
  db_->prepare("INSERT INTO metric_names(name) VALUES(?) ON CONFLICT DO NOTHING")->bind(1, name).step();
  return *findMetricNameId(name);
}

void SqlStore::appendMetrics(int64_t job_id, const std::vector<metrics::MetricPoint>& points) {
  if (points.empty()) return;
  // Multi-row INSERTs: one statement step per kBatch points instead of per
  // point roughly halves the cost of ingesting a long series on SQLite; on
  // PostgreSQL each statement is a round trip, so batches are larger.
  const size_t kBatch = db_->dialect() == Dialect::SQLite ? 64 : 1000;
  auto batchSql = [](size_t n) {
    std::string sql = "INSERT INTO metrics(job_id, name_id, step, time, value) VALUES ";
    for (size_t i = 0; i < n; ++i) sql += i ? ",(?,?,?,?,?)" : "(?,?,?,?,?)";
    return sql;
  };
  static const std::string sqlite_batch = batchSql(64), pg_batch = batchSql(1000);
  const std::string& batch_sql = kBatch == 64 ? sqlite_batch : pg_batch;
  // Appends need not exclude other writers (the scheduler's exclusive
  // transactions); upserts go in key order, so concurrent appends to the
  // same series cannot deadlock.
  runTransaction([&] {
    struct Seen {
      const metrics::MetricPoint* last = nullptr;
      int64_t count = 0;
      int64_t first_step = 0;
    };
    std::map<int64_t, Seen> seen;
    auto many = db_->prepare(batch_sql);
    auto one = db_->prepare("INSERT INTO metrics(job_id, name_id, step, time, value) VALUES(?,?,?,?,?)");
    size_t i = 0;
    auto bind = [&](SqlStmt& s, int base, const metrics::MetricPoint& p) {
      int64_t name_id = metricNameId(p.name);
      Seen& k = seen[name_id];
      if (k.count == 0 || p.step < k.first_step) k.first_step = p.step;
      k.count++;
      k.last = &p;
      s.bind(base + 1, job_id).bind(base + 2, name_id).bind(base + 3, p.step).bind(base + 4, p.timestamp);
      s.bind(base + 5, p.value);
    };
    if (db_->dialect() == Dialect::PostgreSQL && points.size() >= 64) {
      // COPY: measured 2-3x the multi-row INSERTs on PostgreSQL.
      std::string rows;
      rows.reserve(points.size() * 48);
      auto num = [&](double v) {
        if (std::isnan(v)) rows += "NaN";
        else if (std::isinf(v)) rows += v > 0 ? "Infinity" : "-Infinity";
        else fmt::format_to(std::back_inserter(rows), "{}", v);
      };
      for (const auto& p : points) {
        int64_t name_id = metricNameId(p.name);
        Seen& k = seen[name_id];
        if (k.count == 0 || p.step < k.first_step) k.first_step = p.step;
        k.count++;
        k.last = &p;
        fmt::format_to(std::back_inserter(rows), "{}\t{}\t{}\t", job_id, name_id, p.step);
        num(p.timestamp);
        rows += '\t';
        num(p.value);
        rows += '\n';
      }
      db_->copyIn("metrics(job_id, name_id, step, time, value)", rows);
      i = points.size();
    }
    for (; i + kBatch <= points.size(); i += kBatch) {
      for (size_t k = 0; k < kBatch; ++k) bind(*many, static_cast<int>(k * 5), points[i + k]);
      many->step();
      many->reset();
    }
    for (; i < points.size(); ++i) {
      bind(*one, 0, points[i]);
      one->step();
      one->reset();
    }
    auto up = db_->prepare(
        "INSERT INTO metric_last(job_id, name_id, step, time, value, points, first_step) VALUES(?,?,?,?,?,?,?) "
        "ON CONFLICT(job_id, name_id) DO UPDATE SET step=excluded.step, time=excluded.time, value=excluded.value, "
        "points=metric_last.points + excluded.points, first_step=CASE WHEN excluded.first_step < "
        "metric_last.first_step THEN excluded.first_step ELSE metric_last.first_step END");
    for (const auto& [name_id, k] : seen) {
      up->bind(1, job_id).bind(2, name_id).bind(3, k.last->step).bind(4, k.last->timestamp).bind(5, k.last->value);
      up->bind(6, k.count).bind(7, k.first_step);
      up->step();
      up->reset();
    }
    updateRollups(job_id, points);
  }, false);
}

void SqlStore::truncateSeries(int64_t job_id, const std::string& name, int64_t from_step) {
  auto name_id = findMetricNameId(name);
  if (!name_id) return;
  runTransaction([&] {
    db_->prepare("DELETE FROM metrics WHERE job_id=? AND name_id=? AND step>=?")->bind(1, job_id).bind(2, *name_id).bind(3, from_step).step();
    // Every rollup bucket from the start of the widest one that held
    // from_step is made again from the raw points kept there (< 4096).
    int64_t widest = kRollupLevels[std::size(kRollupLevels) - 1];
    int64_t lo = metrics::bucketOf(from_step, widest) * widest;
    for (int64_t level : kRollupLevels)
      db_->prepare("DELETE FROM metric_rollup WHERE job_id=? AND name_id=? AND level=? AND bucket>=?")
          ->bind(1, job_id).bind(2, *name_id).bind(3, level).bind(4, metrics::bucketOf(lo, level)).step();
    std::vector<metrics::MetricPoint> kept;
    auto q = db_->prepare("SELECT step, time, value FROM metrics WHERE job_id=? AND name_id=? AND step>=? ORDER BY step");
    q->bind(1, job_id).bind(2, *name_id).bind(3, lo);
    while (q->step()) kept.push_back({name, q->f64(2), q->i64(0), q->f64(1)});
    updateRollups(job_id, kept);
    // The last point: the highest step left (the newest appended is gone).
    auto left = db_->prepare("SELECT COUNT(*), MIN(step) FROM metrics WHERE job_id=? AND name_id=?");
    left->bind(1, job_id).bind(2, *name_id);
    left->step();
    int64_t n = left->i64(0), first = n ? left->i64(1) : 0;
    if (n == 0) {
      db_->prepare("DELETE FROM metric_last WHERE job_id=? AND name_id=?")->bind(1, job_id).bind(2, *name_id).step();
      return;
    }
    auto top = db_->prepare("SELECT step, time, value FROM metrics WHERE job_id=? AND name_id=? ORDER BY step DESC LIMIT 1");
    top->bind(1, job_id).bind(2, *name_id);
    top->step();
    db_->prepare("UPDATE metric_last SET step=?, time=?, value=?, points=?, first_step=? WHERE job_id=? AND name_id=?")
        ->bind(1, top->i64(0)).bind(2, top->f64(1)).bind(3, top->f64(2)).bind(4, n).bind(5, first).bind(6, job_id).bind(7, *name_id)
        .step();
  }, false);
}

void SqlStore::updateRollups(int64_t job_id, const std::vector<metrics::MetricPoint>& points) {
  if (points.empty()) return;
  // Aggregate the batch per (series, level, bucket) first: one upsert per
  // bucket touched, not per point.
  struct Agg {
    int64_t first_step, n;
    double min, max;
    int64_t last_step;
    double last;
  };
  std::map<std::tuple<int64_t, int64_t, int64_t>, Agg> aggs;
  for (const auto& p : points) {
    int64_t name_id = metricNameId(p.name);
    for (int64_t level : kRollupLevels) {
      auto key = std::make_tuple(name_id, level, metrics::bucketOf(p.step, level));
      auto [it, fresh] = aggs.try_emplace(key, Agg{p.step, 1, p.value, p.value, p.step, p.value});
      if (fresh) continue;
      Agg& a = it->second;
      a.first_step = std::min(a.first_step, p.step);
      a.n++;
      a.min = std::min(a.min, p.value);
      a.max = std::max(a.max, p.value);
      if (p.step >= a.last_step) {
        a.last_step = p.step;
        a.last = p.value;
      }
    }
  }
  const bool pg = db_->dialect() == Dialect::PostgreSQL;
  const char* lo = pg ? "LEAST" : "MIN";
  const char* hi = pg ? "GREATEST" : "MAX";
  // On PostgreSQL every statement is a round trip: the buckets go in
  // multi-row upserts (keys are distinct within one, as ON CONFLICT needs).
  const size_t per = pg ? std::min<size_t>(aggs.size(), 500) : 1;
  std::string values = "(?,?,?,?,?,?,?,?,?,?)";
  for (size_t k = 1; k < per; ++k) values += ",(?,?,?,?,?,?,?,?,?,?)";
  auto upsert = [&](const std::string& vals) {
    return db_->prepare(fmt::format(
      "INSERT INTO metric_rollup(job_id, name_id, level, bucket, first_step, n, min, max, last_step, last_value) "
      "VALUES{2} ON CONFLICT(job_id, name_id, level, bucket) DO UPDATE SET "
      "first_step={0}(metric_rollup.first_step, excluded.first_step), n=metric_rollup.n + excluded.n, "
      "min={0}(metric_rollup.min, excluded.min), max={1}(metric_rollup.max, excluded.max), "
      "last_value=CASE WHEN excluded.last_step >= metric_rollup.last_step THEN excluded.last_value "
      "ELSE metric_rollup.last_value END, "
      "last_step={1}(metric_rollup.last_step, excluded.last_step)",
      lo, hi, vals));
  };
  auto up = upsert(values);
  std::vector<std::pair<const std::tuple<int64_t, int64_t, int64_t>, Agg>*> rows;
  for (auto& kv : aggs) rows.push_back(&kv);
  size_t i = 0;
  auto bindRow = [&](SqlStmt& s, int base, const std::pair<const std::tuple<int64_t, int64_t, int64_t>, Agg>& kv) {
    auto [name_id, level, bucket] = kv.first;
    const Agg& a = kv.second;
    s.bind(base + 1, job_id).bind(base + 2, name_id).bind(base + 3, level).bind(base + 4, bucket).bind(base + 5, a.first_step);
    s.bind(base + 6, a.n).bind(base + 7, a.min).bind(base + 8, a.max).bind(base + 9, a.last_step).bind(base + 10, a.last);
  };
  for (; i + per <= rows.size(); i += per) {
    for (size_t k = 0; k < per; ++k) bindRow(*up, static_cast<int>(k * 10), *rows[i + k]);
    up->step();
    up->reset();
  }
  if (i < rows.size()) {
    std::string rest = "(?,?,?,?,?,?,?,?,?,?)";
    for (size_t k = i + 1; k < rows.size(); ++k) rest += ",(?,?,?,?,?,?,?,?,?,?)";
    auto tail = upsert(rest);
    for (size_t k = i; k < rows.size(); ++k) bindRow(*tail, static_cast<int>((k - i) * 10), *rows[k]);
    tail->step();
  }
}

std::vector<metrics::MetricPoint> SqlStore::metrics(int64_t job_id, const std::string& name) {
  // Points of one step keep their arrival order.
  const char* arrival = db_->dialect() == Dialect::SQLite ? "m.rowid" : "m.seq";
  std::string sql =
      "SELECT n.name, m.value, m.step, m.time FROM metrics m JOIN metric_names n ON n.id = m.name_id "
      "WHERE m.job_id=? ";
  sql += name.empty() ? fmt::format("ORDER BY n.name, m.step, {}", arrival)
                      : fmt::format("AND n.name=? ORDER BY m.step, {}", arrival);
  auto s = db_->prepare(sql);
  s->bind(1, job_id);
  if (!name.empty()) s->bind(2, name);
  std::vector<metrics::MetricPoint> out;
  while (s->step()) out.push_back({s->text(0), s->f64(1), s->i64(2), s->f64(3)});
  return out;
}

std::vector<metrics::MetricPoint> SqlStore::lastMetrics(int64_t job_id) {
  auto s = db_->prepare(
      "SELECT n.name, m.value, m.step, m.time FROM metric_last m JOIN metric_names n ON n.id = m.name_id "
      "WHERE m.job_id=? ORDER BY n.name");
  s->bind(1, job_id);
  std::vector<metrics::MetricPoint> out;
  while (s->step()) out.push_back({s->text(0), s->f64(1), s->i64(2), s->f64(3)});
  return out;
}

std::vector<SeriesInfo> SqlStore::seriesInfo(int64_t job_id) {
  auto s = db_->prepare(
      "SELECT n.name, m.points, m.first_step, m.step, m.value FROM metric_last m JOIN metric_names n ON "
      "n.id = m.name_id WHERE m.job_id=? ORDER BY n.name");
  s->bind(1, job_id);
  std::vector<SeriesInfo> out;
  while (s->step()) out.push_back({s->text(0), s->i64(1), s->i64(2), s->i64(3), s->f64(4)});
  return out;
}

SeriesView SqlStore::seriesView(int64_t job_id, const std::string& name, int64_t from, int64_t to, int max_points) {
  SeriesView v;
  v.name = name;
  auto name_id = findMetricNameId(name);
  if (!name_id) return v;
  auto info = db_->prepare("SELECT points, first_step, step FROM metric_last WHERE job_id=? AND name_id=?");
  info->bind(1, job_id).bind(2, *name_id);
  if (!info->step()) return v;
  int64_t points = info->i64(0);
  // The newest point is not always the highest step; the rollups know the end.
  int64_t first = info->i64(1), last = info->i64(2);
  {
    auto end = db_->prepare("SELECT MAX(last_step) FROM metric_rollup WHERE job_id=? AND name_id=? AND level=?");
    end->bind(1, job_id).bind(2, *name_id).bind(3, kRollupLevels[1]);
    if (end->step() && !end->isNull(0)) last = std::max(last, end->i64(0));
  }
  from = std::max(from, first);
  to = std::min(to, last);
  if (to < from) return v;
  const bool whole = from == first && to == last;
  max_points = std::max(max_points, 1);

  auto raw = [&](int64_t width) {
    auto s = db_->prepare(
        "SELECT step, value, time FROM metrics WHERE job_id=? AND name_id=? AND step BETWEEN ? AND ? ORDER BY step");
    s->bind(1, job_id).bind(2, *name_id).bind(3, from).bind(4, to);
    metrics::Downsampler d(width);
    int64_t n = 0;
    while (s->step()) {
      ++n;
      if (width == 1 && !v.downsampled) {
        v.step.push_back(s->i64(0));
        double x = s->f64(1);
        v.min.push_back(x);
        v.max.push_back(x);
        v.last.push_back(x);
        v.time.push_back(s->f64(2));
      } else {
        d.add(s->i64(0), s->f64(1));
      }
    }
    v.total_points = n;
    return d;
  };
  auto emit = [&](const metrics::Downsampler& d) {
    v.downsampled = true;
    v.time.clear();
    v.width = d.width();
    for (const auto& b : d.buckets()) {
      v.step.push_back(b.step);
      v.min.push_back(b.min);
      v.max.push_back(b.max);
      v.last.push_back(b.last);
    }
  };
  if (whole && points <= max_points) {
    raw(1);
    return v;
  }
  int64_t width = metrics::bucketWidth(from, to, max_points);
  int64_t level = 0;
  for (int64_t l : kRollupLevels)
    if (width >= l) level = l;
  if (level == 0) {
    // Short range: read its points and bucket them here.
    auto d = raw(width);
    if (v.total_points > max_points) {
      emit(d);
    } else {  // few points after all: give them as they are
      v = SeriesView{};
      v.name = name;
      raw(1);
    }
    return v;
  }
  width = metrics::bucketWidth(from, to, max_points, level);
  // Whole rollup buckets inside the range, raw points at the two partial ends.
  int64_t b_lo = metrics::bucketOf(from, level), b_hi = metrics::bucketOf(to, level);
  if (b_lo * level < from) ++b_lo;
  if ((b_hi + 1) * level - 1 > to) --b_hi;
  metrics::Downsampler d(width);
  int64_t total = 0;
  auto rawRange = [&](int64_t a, int64_t b) {
    if (b < a) return;
    auto s = db_->prepare(
        "SELECT step, value FROM metrics WHERE job_id=? AND name_id=? AND step BETWEEN ? AND ? ORDER BY step");
    s->bind(1, job_id).bind(2, *name_id).bind(3, a).bind(4, b);
    while (s->step()) {
      d.add(s->i64(0), s->f64(1));
      ++total;
    }
  };
  if (b_lo > b_hi) {
    rawRange(from, to);
  } else {
    rawRange(from, b_lo * level - 1);
    auto s = db_->prepare(
        "SELECT first_step, n, min, max, last_step, last_value FROM metric_rollup WHERE job_id=? AND name_id=? AND "
        "level=? AND bucket BETWEEN ? AND ? ORDER BY bucket");
    s->bind(1, job_id).bind(2, *name_id).bind(3, level).bind(4, b_lo).bind(5, b_hi);
    while (s->step()) {
      d.addAggregate(s->i64(0), s->i64(1), s->f64(2), s->f64(3), s->i64(4), s->f64(5));
      total += s->i64(1);
    }
    rawRange((b_hi + 1) * level, to);
  }
  v.total_points = total;
  emit(d);
  return v;
}

void SqlStore::createExperiment(ExperimentRecord& e) {
  e.uid = newUid();
  auto s = db_->prepare(
      "INSERT INTO experiments(uid, name, spec, phase, created_at, owner, \"user\") VALUES(?,?,?,?,?,?,?) "
      "RETURNING id");
  s->bind(1, e.uid).bind(2, e.name).bind(3, nlohmann::json(e.spec).dump()).bind(4, e.phase).bind(5, e.created_at);
  s->bind(6, e.owner).bind(7, e.user);
  try {
    s->step();
  } catch (const NameConflict&) {
    throw NameConflict(fmt::format("an experiment named \"{}\" already exists", e.name));
  }
  e.id = s->i64(0);
}

std::vector<ExperimentRecord> SqlStore::selectExperiments(const std::string& where,
                                                          const std::function<void(SqlStmt&)>& bind) {
  auto s = db_->prepare(
      "SELECT id, uid, name, spec, phase, reason, message, created_at, finished_at, owner, cancel_requested, "
      "\"user\" FROM experiments " + where);
  bind(*s);
  std::vector<ExperimentRecord> out;
  while (s->step()) {
    ExperimentRecord e;
    e.id = s->i64(0);
    e.uid = s->text(1);
    e.name = s->text(2);
    e.spec = nlohmann::json::parse(s->text(3)).get<spec::ExperimentSpec>();
    e.phase = s->text(4);
    e.reason = s->text(5);
    e.message = s->text(6);
    e.created_at = s->f64(7);
    e.finished_at = s->f64(8);
    e.owner = s->text(9);
    e.cancel_requested = s->i64(10) != 0;
    e.user = s->text(11);
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<ExperimentRecord> SqlStore::getExperiment(const std::string& name) {
  return firstOf(selectExperiments("WHERE name = ?", [&](SqlStmt& s) { s.bind(1, name); }));
}

std::optional<ExperimentRecord> SqlStore::getExperimentById(int64_t id) {
  return firstOf(selectExperiments("WHERE id = ?", [&](SqlStmt& s) { s.bind(1, id); }));
}

std::vector<ExperimentRecord> SqlStore::listExperiments() {
  return selectExperiments("ORDER BY id", [](SqlStmt&) {});
}

std::vector<ExperimentRecord> SqlStore::listActiveExperiments() {
  return selectExperiments("WHERE phase NOT IN ('Succeeded', 'Failed', 'Stopped') ORDER BY id", [](SqlStmt&) {});
}

void SqlStore::updateExperimentStatus(const ExperimentRecord& e) {
  auto s = db_->prepare(
      "UPDATE experiments SET phase=?, reason=?, message=?, finished_at=?, owner=?, cancel_requested=? WHERE id=?");
  s->bind(1, e.phase).bind(2, e.reason).bind(3, e.message).bind(4, e.finished_at).bind(5, e.owner);
  s->bind(6, e.cancel_requested).bind(7, e.id);
  s->step();
}

void SqlStore::requestExperimentCancel(int64_t id) {
  db_->prepare("UPDATE experiments SET cancel_requested=1 WHERE id=?")->bind(1, id).step();
}

void SqlStore::upsertTrial(const TrialRecord& t) {
  auto s = db_->prepare(
      "INSERT INTO trials(experiment_id, number, params, point, state, job_name, runs, objective, metrics, rung, "
      "stop_requested, meta, reason, message, created_at, finished_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(experiment_id, number) DO UPDATE SET params=excluded.params, point=excluded.point, "
      "state=excluded.state, job_name=excluded.job_name, runs=excluded.runs, objective=excluded.objective, "
      "metrics=excluded.metrics, rung=excluded.rung, stop_requested=excluded.stop_requested, meta=excluded.meta, "
      "reason=excluded.reason, message=excluded.message, finished_at=excluded.finished_at");
  s->bind(1, t.experiment_id).bind(2, t.number).bind(3, nlohmann::json(t.params).dump());
  s->bind(4, nlohmann::json(t.point).dump()).bind(5, t.state).bind(6, t.job_name).bind(7, t.runs);
  s->bind(8, nlohmann::json(t.objective).dump()).bind(9, nlohmann::json(t.metrics).dump()).bind(10, t.rung);
  s->bind(11, t.stop_requested).bind(12, t.meta).bind(13, t.reason).bind(14, t.message);
  s->bind(15, t.created_at).bind(16, t.finished_at);
  s->step();
}

std::vector<TrialRecord> SqlStore::trials(int64_t experiment_id) {
  auto s = db_->prepare(
      "SELECT number, params, point, state, job_name, runs, objective, metrics, rung, stop_requested, meta, reason, "
      "message, created_at, finished_at FROM trials WHERE experiment_id=? ORDER BY number");
  s->bind(1, experiment_id);
  std::vector<TrialRecord> out;
  while (s->step()) {
    TrialRecord t;
    t.experiment_id = experiment_id;
    t.number = static_cast<int>(s->i64(0));
    t.params = nlohmann::json::parse(s->text(1)).get<std::map<std::string, std::string>>();
    t.point = nlohmann::json::parse(s->text(2)).get<std::vector<double>>();
    t.state = s->text(3);
    t.job_name = s->text(4);
    t.runs = static_cast<int>(s->i64(5));
    t.objective = nlohmann::json::parse(s->text(6)).get<std::vector<double>>();
    t.metrics = nlohmann::json::parse(s->text(7)).get<std::map<std::string, double>>();
    t.rung = static_cast<int>(s->i64(8));
    t.stop_requested = s->i64(9) != 0;
    t.meta = s->text(10);
    t.reason = s->text(11);
    t.message = s->text(12);
    t.created_at = s->f64(13);
    t.finished_at = s->f64(14);
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, int64_t> SqlStore::trialCounts(int64_t experiment_id) {
  auto s = db_->prepare("SELECT state, COUNT(*) FROM trials WHERE experiment_id=? GROUP BY state");
  s->bind(1, experiment_id);
  std::map<std::string, int64_t> out;
  while (s->step()) out[s->text(0)] = s->i64(1);
  return out;
}

}  // namespace trainyard::store
