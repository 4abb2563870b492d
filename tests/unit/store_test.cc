#include "store/store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <libpq-fe.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <sqlite3.h>

#include <fmt/format.h>

#include "store/sql_store.h"
#include "test_util.h"

using namespace trainyard;
using namespace trainyard::store;

namespace {
JobRecord newJob(const std::string& name) {
  JobRecord j;
  j.name = name;
  j.spec.name = name;
  j.spec.roles.push_back({});
  j.spec.roles[0].command = {"true"};
  j.created_at = 1000;
  return j;
}

// A fresh empty database on the test cluster (tests/pg/cluster.sh, started
// by CTest's "pg" fixture); its URL.
std::string freshPostgres() {
  const char* env = std::getenv("TRAINYARD_TEST_PG");  // "socket dir:port"
  if (!env || !std::strchr(env, ':')) return "";
  std::string where = env;
  std::string host = where.substr(0, where.rfind(':')), port = where.substr(where.rfind(':') + 1);
  std::string admin = fmt::format("postgresql://postgres@/postgres?host={}&port={}", host, port);
  PGconn* c = PQconnectdb(admin.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("test PostgreSQL: " + msg);
  }
  std::string db = fmt::format("ty_{:x}", std::random_device{}() ^ (uint64_t(getpid()) << 20));
  PGresult* r = PQexec(c, ("CREATE DATABASE " + db).c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string err = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) throw std::runtime_error("test PostgreSQL: " + err);
  return fmt::format("postgresql://postgres@/{}?host={}&port={}", db, host, port);
}
}  // namespace

// The store suite runs on both SQLite and PostgreSQL.
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  // One location per test, the same on every call (reopen tests).
  std::string location() {
    if (!loc_.empty()) return loc_;
    if (GetParam() == "sqlite") return loc_ = test::freshDir();
    loc_ = freshPostgres();
    if (loc_.empty()) throw std::runtime_error("TRAINYARD_TEST_PG (socket dir:port) not set: run through ctest (fixture pg)");
    return loc_;
  }
  std::string loc_;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

TEST_P(StoreTest, CreatesSchemaAndRejectsDuplicateNames) {
  auto dir = location();
  auto st = openStore(dir);
  EXPECT_EQ(st->schemaVersion(), SqlStore::latestSchemaVersion(GetParam() == "sqlite" ? Dialect::SQLite : Dialect::PostgreSQL));
  auto j = newJob("a");
  st->createJob(j);
  EXPECT_GT(j.id, 0);
  EXPECT_EQ(j.uid.size(), 32u);
  auto dup = newJob("a");
  EXPECT_THROW(st->createJob(dup), NameConflict);
  EXPECT_EQ(st->listJobs().size(), 1u);
}

TEST_P(StoreTest, StatusAttemptsConditionsEventsSurviveReopen) {
  auto dir = location();
  int64_t id;
  {
    auto st = openStore(dir);
    auto j = newJob("a");
    st->createJob(j);
    id = j.id;
    j.phase = kRunning;
    j.restarts = 2;
    j.started_at = 1001;
    j.allocation = "{}";
    st->updateJobStatus(j);
    AttemptRecord a{j.id, 0, "worker-0", "Running", "42@777", 1001, 0, std::nullopt, std::nullopt, "", "/log"};
    st->upsertAttempt(a);
    a.state = "Exited";
    a.exit_code = 3;
    a.reason = "Error";
    st->upsertAttempt(a);  // same key: updated, not duplicated
    st->addCondition(j.id, {"Created", "True", "JobCreated", "m1", 1000});
    st->addCondition(j.id, {"Running", "True", "JobRunning", "m2", 1001});
    st->addEvent(j.id, {1001, "Warning", "Restarting", "exit 3"});
    st->requestCancel(j.id);
  }
  auto st = openStore(dir);
  auto j = st->getJobById(id);
  ASSERT_TRUE(j);
  EXPECT_EQ(j->phase, kRunning);
  EXPECT_EQ(j->restarts, 2);
  EXPECT_TRUE(j->cancel_requested);
  EXPECT_EQ(j->spec.roles[0].command[0], "true");
  auto attempts = st->attempts(id);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].exit_code, 3);
  EXPECT_FALSE(attempts[0].signal);
  EXPECT_EQ(attempts[0].state, "Exited");
  auto conds = st->conditions(id);
  ASSERT_EQ(conds.size(), 2u);
  EXPECT_EQ(conds[1].type, "Running");
  EXPECT_EQ(st->events(id).at(0).reason, "Restarting");
  EXPECT_EQ(st->listJobs(kRunning).size(), 1u);
  EXPECT_EQ(st->listJobs(kSucceeded).size(), 0u);
  EXPECT_EQ(st->listActiveJobs().size(), 1u);
  j->phase = kSucceeded;
  st->updateJobStatus(*j);
  EXPECT_TRUE(st->listActiveJobs().empty());
}

TEST_P(StoreTest, MetricsSeriesAndLastValues) {
  auto st = openStore(location());
  auto a = newJob("a"), b = newJob("b");
  st->createJob(a);
  st->createJob(b);
  st->appendMetrics(a.id, {{"loss", 0.9, 0, 1}, {"loss", 0.5, 1, 2}, {"acc", 0.7, 1, 2}});
  st->appendMetrics(b.id, {{"loss", 7, 0, 1}});
  auto series = st->metrics(a.id, "loss");
  ASSERT_EQ(series.size(), 2u);
  EXPECT_DOUBLE_EQ(series[1].value, 0.5);
  EXPECT_EQ(st->metrics(a.id).size(), 3u);
  auto last = st->lastMetrics(a.id);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].name, "acc");
  EXPECT_DOUBLE_EQ(last[1].value, 0.5);
  EXPECT_DOUBLE_EQ(st->lastMetrics(b.id).at(0).value, 7);
  EXPECT_TRUE(st->deleteJob(a.id));
  EXPECT_TRUE(st->metrics(a.id).empty());  // cascades
  // A batch large enough for PostgreSQL's COPY path: every value, also non-finite ones, round-trips.
  std::vector<metrics::MetricPoint> batch;
  for (int i = 0; i < 100; ++i) batch.push_back({"big", i == 7 ? std::numeric_limits<double>::infinity() : i * 0.25, i + 1, 1000.5 + i});
  st->appendMetrics(b.id, batch);
  auto big = st->metrics(b.id, "big");
  ASSERT_EQ(big.size(), 100u);
  EXPECT_EQ(big[99].step, 100);
  EXPECT_DOUBLE_EQ(big[99].value, 99 * 0.25);
  EXPECT_DOUBLE_EQ(big[99].timestamp, 1099.5);
  EXPECT_TRUE(std::isinf(big[7].value));
  EXPECT_TRUE(st->deleteJob(b.id));
  EXPECT_TRUE(st->metrics(b.id, "big").empty());  // deleted with the job, foreign key or not
}

// A restarted program's steps replace the earlier ones: the raw points, the
// last point and the rollups (the downsampled view) are all cut, and the
// series continues from there with no step twice.
TEST_P(StoreTest, TruncatedSeriesAreCutEverywhere) {
  auto st = openStore(location());
  auto j = newJob("restarted");
  st->createJob(j);
  std::vector<metrics::MetricPoint> first;
  for (int i = 1; i <= 10000; ++i) first.push_back({"loss", 1.0 / i, i, 1.0 * i});
  st->appendMetrics(j.id, first);
  st->truncateSeries(j.id, "loss", 5000);
  st->truncateSeries(j.id, "nope", 1);  // no such series: nothing happens
  auto left = st->metrics(j.id, "loss");
  ASSERT_EQ(left.size(), 4999u);
  EXPECT_EQ(left.back().step, 4999);
  auto info = st->seriesInfo(j.id);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].points, 4999);
  EXPECT_EQ(info[0].last_step, 4999);
  // The downsampled view ends where the series now ends, every bucket counted once.
  auto v = st->seriesView(j.id, "loss", 0, 20000, 100);
  EXPECT_TRUE(v.downsampled);
  EXPECT_EQ(v.total_points, 4999);
  ASSERT_FALSE(v.step.empty());
  EXPECT_LE(v.step.back(), 4999);
  std::vector<metrics::MetricPoint> again;
  for (int i = 5000; i <= 6000; ++i) again.push_back({"loss", 2.0, i, 20000.0 + i});
  st->appendMetrics(j.id, again);
  auto all = st->metrics(j.id, "loss");
  ASSERT_EQ(all.size(), 6000u);
  for (size_t k = 0; k < all.size(); ++k) ASSERT_EQ(all[k].step, static_cast<int64_t>(k + 1));
  EXPECT_DOUBLE_EQ(st->seriesView(j.id, "loss", 5500, 5500, 100).last.at(0), 2.0);
  EXPECT_EQ(st->seriesView(j.id, "loss", 0, 20000, 100).total_points, 6000);
  st->truncateSeries(j.id, "loss", -5);
  EXPECT_TRUE(st->metrics(j.id, "loss").empty());
  EXPECT_TRUE(st->seriesInfo(j.id).empty());
}

TEST_P(StoreTest, TransactionRollsBackOnError) {
  auto st = openStore(location());
  EXPECT_THROW(st->transaction([&] {
    auto j = newJob("x");
    st->createJob(j);
    throw std::runtime_error("boom");
  }), std::runtime_error);
  EXPECT_FALSE(st->getJob("x"));
}

TEST_P(StoreTest, AttemptKeepsHandleAndCollectOffsets) {
  auto st = openStore(location());
  auto j = newJob("a");
  st->createJob(j);
  AttemptRecord a{j.id, 0, "worker-0", "Running", "42@123456789012", 1001, 0, std::nullopt, std::nullopt, "", "/log"};
  st->upsertAttempt(a);
  st->saveCollectCursors(j.id, 0, "worker-0", "4096", "f17", "hex:6162");
  a.state = "Exited";
  a.exit_code = 0;
  st->upsertAttempt(a);  // an exit record keeps the offsets
  auto got = st->attempts(j.id).at(0);
  EXPECT_EQ(got.handle, "42@123456789012");
  EXPECT_EQ(got.log_cursor, "4096");
  EXPECT_EQ(got.file_cursor, "f17");
  EXPECT_EQ(got.collect_carry, "hex:6162");
  EXPECT_EQ(got.state, "Exited");
}

TEST_P(StoreTest, QueryJobsFiltersAndPages) {
  auto st = openStore(location());
  for (int i = 0; i < 25; ++i) {
    auto j = newJob(fmt::format("job-{:02}", i));
    j.user = i % 2 ? "alice" : "bob";
    if (i % 5 == 0) j.spec.labels["team"] = "vision";
    if (i == 4) j.spec.labels[kSharedLabel] = "true";
    if (i >= 20) j.spec.labels[kExperimentLabel] = "sweep";
    st->createJob(j);
    if (i < 3) {
      j.phase = kSucceeded;
      st->updateJobStatus(j);
    }
  }
  JobQuery q;
  q.limit = 10;
  auto p = st->queryJobs(q);
  EXPECT_EQ(p.total, 25);
  ASSERT_EQ(p.items.size(), 10u);
  EXPECT_EQ(p.items[0].name, "job-00");
  q.offset = 20;
  EXPECT_EQ(st->queryJobs(q).items.size(), 5u);
  q = {};
  q.phase = kSucceeded;
  EXPECT_EQ(st->queryJobs(q).total, 3);
  q.phase = "active";
  EXPECT_EQ(st->queryJobs(q).total, 22);
  q = {};
  q.label_key = "team";
  q.label_value = "vision";
  EXPECT_EQ(st->queryJobs(q).total, 5);
  q.label_value = "visio";  // exact values only
  EXPECT_EQ(st->queryJobs(q).total, 0);
  q = {};
  q.viewer = "alice";  // her 12 jobs plus bob's shared one
  EXPECT_EQ(st->queryJobs(q).total, 13);
  q = {};
  q.include_trials = false;
  EXPECT_EQ(st->queryJobs(q).total, 20);
  q = {};
  q.newest_first = true;
  q.limit = 1;
  EXPECT_EQ(st->queryJobs(q).items.at(0).name, "job-24");
  EXPECT_EQ(st->queryJobs(q).items.at(0).user, "bob");  // even numbers are bob's
}

// The downsampled view equals min/max/last per bucket computed from the
// raw points, whichever rollup level answers.
TEST_P(StoreTest, SeriesViewMatchesRawPointsPerBucket) {
  auto st = openStore(location());
  auto j = newJob("long");
  st->createJob(j);
  std::mt19937 rng(7);
  std::normal_distribution<double> noise;
  std::vector<metrics::MetricPoint> pts;
  const int n = 50000;
  for (int i = 0; i < n; ++i) pts.push_back({"loss", std::exp(-i / 10000.0) + 0.1 * noise(rng), i, 1.0 * i});
  for (size_t k = 0; k < pts.size(); k += 7000)  // several appends: rollups merge across batches
    st->appendMetrics(j.id, std::vector<metrics::MetricPoint>(pts.begin() + k, pts.begin() + std::min(pts.size(), k + 7000)));
  auto info = st->seriesInfo(j.id);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].points, n);
  EXPECT_EQ(info[0].first_step, 0);
  EXPECT_EQ(info[0].last_step, n - 1);

  for (auto [from, to, max_points] : std::vector<std::tuple<int64_t, int64_t, int>>{
           {0, n - 1, 2000}, {0, n - 1, 10}, {1234, 5678, 100}, {100, 40000, 500}, {5, 50, 2000}}) {
    SCOPED_TRACE(fmt::format("[{}, {}] in {}", from, to, max_points));
    auto v = st->seriesView(j.id, "loss", from, to, max_points);
    int64_t in_range = std::min<int64_t>(to, n - 1) - from + 1;
    EXPECT_EQ(v.total_points, in_range);
    if (in_range <= max_points) {
      EXPECT_FALSE(v.downsampled);
      ASSERT_EQ(v.step.size(), static_cast<size_t>(in_range));
      EXPECT_DOUBLE_EQ(v.last[0], pts[from].value);
      continue;
    }
    ASSERT_TRUE(v.downsampled);
    EXPECT_LE(v.step.size(), static_cast<size_t>(max_points));
    // Recompute each bucket from the raw points.
    size_t b = 0;
    for (int64_t s = from; s <= to;) {
      int64_t bucket_end = (s / v.width + 1) * v.width - 1;
      int64_t e = std::min(bucket_end, to);
      double lo = pts[s].value, hi = pts[s].value;
      for (int64_t k = s; k <= e; ++k) lo = std::min(lo, pts[k].value), hi = std::max(hi, pts[k].value);
      ASSERT_LT(b, v.step.size());
      EXPECT_EQ(v.step[b], e);
      EXPECT_DOUBLE_EQ(v.min[b], lo);
      EXPECT_DOUBLE_EQ(v.max[b], hi);
      EXPECT_DOUBLE_EQ(v.last[b], pts[e].value);
      ++b;
      s = e + 1;
    }
    EXPECT_EQ(b, v.step.size());
  }
  EXPECT_TRUE(st->seriesView(j.id, "nope", 0, 10, 100).step.empty());
}

TEST_P(StoreTest, ConcurrentTransactionsAreExclusive) {
  auto loc = location();
  { openStore(loc); }
  auto one = openStore(loc), two = openStore(loc);
  auto j = newJob("counter");
  one->createJob(j);
  // Read-modify-write in two connections, interleaved from two threads: no
  // increment is lost when transactions exclude each other.
  auto bump = [&](Store& st) {
    for (int i = 0; i < 50; ++i)
      st.transaction([&] {
        auto cur = st.getJobById(j.id);
        cur->restarts += 1;
        st.updateJobStatus(*cur);
      });
  };
  std::thread t1([&] { bump(*one); }), t2([&] { bump(*two); });
  t1.join();
  t2.join();
  EXPECT_EQ(one->getJobById(j.id)->restarts, 100);
}

TEST_P(StoreTest, ExperimentsAndTrials) {
  auto st = openStore(location());
  ExperimentRecord a, b;
  a.name = "a";
  a.spec.name = "a";
  a.user = "alice";
  a.created_at = 1;
  b = a;
  b.name = b.spec.name = "b";
  st->createExperiment(a);
  st->createExperiment(b);
  ExperimentRecord dup = a;
  EXPECT_THROW(st->createExperiment(dup), NameConflict);
  b.phase = kSucceeded;
  st->updateExperimentStatus(b);
  EXPECT_EQ(st->listExperiments().size(), 2u);
  auto active = st->listActiveExperiments();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].name, "a");
  EXPECT_EQ(active[0].user, "alice");
  TrialRecord t;
  t.experiment_id = a.id;
  t.number = 0;
  t.params = {{"lr", "0.1"}};
  t.point = {0.5};
  t.objective = {0.25};
  t.metrics = {{"acc", 0.9}};
  t.created_at = 2;
  st->upsertTrial(t);
  t.state = kTrialSucceeded;
  st->upsertTrial(t);  // same number: updated
  auto trials = st->trials(a.id);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, kTrialSucceeded);
  EXPECT_EQ(trials[0].params.at("lr"), "0.1");
  EXPECT_DOUBLE_EQ(trials[0].objective.at(0), 0.25);
  EXPECT_DOUBLE_EQ(trials[0].metrics.at("acc"), 0.9);
  t.number = 1;
  t.state = kTrialRunning;
  st->upsertTrial(t);
  EXPECT_EQ(st->trialCounts(a.id), (std::map<std::string, int64_t>{{kTrialRunning, 1}, {kTrialSucceeded, 1}}));
  EXPECT_TRUE(st->trialCounts(b.id).empty());
}

TEST(SqliteStoreOnly, UsesWalAndRefusesNewerSchema) {
  auto dir = test::freshDir();
  { openStore(dir); }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open((dir + "/trainyard.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    openStore(dir);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

TEST_P(StoreTest, PlacementsQueuesNodeStatesAndSchedulingRows) {
  auto st = openStore(location());
  auto a = newJob("gang"), b = newJob("waiting");
  a.request = R"({"replicas":[["worker-0",1000,0,0,0]]})";
  b.spec.queue = "team-a";
  b.spec.priority = 5;
  st->createJob(a);
  st->createJob(b);
  st->setPlacements(a.id, {{"master-0", "node-1", {1000, 1LL << 30, 1, 0}, {3}},
                           {"worker-0", "node-2", {500, 0, 0, 250}, {0}}});
  auto p = st->placements(a.id);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].replica, "master-0");
  EXPECT_EQ(p[0].gpu_ids, std::vector<int>{3});
  EXPECT_EQ(p[1].held.gpu_share, 250);
  EXPECT_EQ(st->allPlacements().at(a.id).size(), 2u);
  st->setPlacements(a.id, {});
  EXPECT_TRUE(st->allPlacements().empty());

  st->setJobMessages({{a.id, "first"}, {b.id, "0/4 nodes available: 4 insufficient cpu"}});
  auto rows = st->schedulingRows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].request, a.request);
  EXPECT_EQ(rows[0].message, "first");
  EXPECT_EQ(rows[1].queue, "team-a");
  EXPECT_EQ(rows[1].priority, 5);
  EXPECT_EQ(rows[1].message, "0/4 nodes available: 4 insufficient cpu");
  st->addEvents({{a.id, {1, "Normal", "Queued", "one"}}, {b.id, {2, "Normal", "Queued", "two"}}, {a.id, {3, "Warning", "X", "three"}}});
  ASSERT_EQ(st->events(a.id).size(), 2u);
  EXPECT_EQ(st->events(a.id)[1].message, "three");
  EXPECT_EQ(st->events(b.id).at(0).reason, "Queued");
  st->requestPreemption(b.id);
  EXPECT_TRUE(st->getJobById(b.id)->preempt_requested);

  spec::QueueDef q{.name = "team-a", .cohort = "research", .weight = 2};
  q.quota.cpu_millis = 8000;
  st->putQueue(q, "admin");
  q.weight = 3;
  st->putQueue(q, "admin");  // replaces
  st->putQueue(spec::QueueDef{.kind = "Cohort", .name = "research"}, "admin");
  auto defs = st->queueDefs();
  ASSERT_EQ(defs.size(), 2u);
  EXPECT_EQ(defs[1].name, "team-a");
  EXPECT_EQ(defs[1].weight, 3);
  EXPECT_EQ(defs[1].quota.cpu_millis, 8000);
  EXPECT_FALSE(defs[1].quota.gpu_milli.has_value());
  EXPECT_TRUE(st->deleteQueue("Cohort", "research"));
  EXPECT_FALSE(st->deleteQueue("Cohort", "research"));

  st->setNodeState({"node-2", "Down", "disk failed", 5});
  ASSERT_EQ(st->nodeStates().size(), 1u);
  EXPECT_EQ(st->nodeStates()[0].reason, "disk failed");
  st->setNodeState({"node-2", "Ready", "", 6});
  EXPECT_TRUE(st->nodeStates().empty());
}

// A store written before schema 5 keeps working (and through schema 6's cursors): a running job's one-node
// allocation becomes a "*" placement holding the same resources.
TEST(SqliteStoreOnly, OneNodeAllocationsMigrateToPlacements) {
  auto dir = test::freshDir();
  int64_t id = 0;
  {
    auto st = openStore(dir);
    auto j = newJob("old");
    st->createJob(j);
    id = j.id;
  }
  sqlite3* db;
  ASSERT_EQ(sqlite3_open((dir + "/trainyard.db").c_str(), &db), SQLITE_OK);
  // Back to schema 4 as an old release left it.
  for (const char* sql : {"DROP TABLE placements", "DROP TABLE queues", "DROP TABLE node_states", "DROP TABLE leases", "ALTER TABLE attempts DROP COLUMN handle",
                          "ALTER TABLE attempts DROP COLUMN log_cursor", "ALTER TABLE attempts DROP COLUMN file_cursor",
                          "ALTER TABLE attempts DROP COLUMN collect_carry",
                          "INSERT INTO attempts(job_id, attempt, replica, state, pid, pid_start, log_offset, file_offset) "
                          "VALUES(1, 0, 'worker-0', 'Running', 77, 88, 123, 0)",
                          "ALTER TABLE jobs DROP COLUMN request", "ALTER TABLE jobs DROP COLUMN preemptions",
                          "ALTER TABLE jobs DROP COLUMN preempt_requested", "ALTER TABLE jobs DROP COLUMN suspended",
                          "UPDATE schema_version SET version = 4",
                          "UPDATE jobs SET phase = 'Running', node = 'host-a', "
                          "allocation = '{\"cpu_millis\":2000,\"memory_bytes\":1024,\"gpu\":2,\"gpu_ids\":[0,1]}'"})
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql << ": " << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto st = openStore(dir);
  EXPECT_EQ(st->schemaVersion(), SqlStore::latestSchemaVersion(Dialect::SQLite));
  auto p = st->placements(id);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].replica, "*");
  EXPECT_EQ(p[0].node, "host-a");
  EXPECT_EQ(p[0].held.cpu_millis, 2000);
  EXPECT_EQ(p[0].held.gpu, 2);
  EXPECT_EQ(p[0].gpu_ids, (std::vector<int>{0, 1}));
  EXPECT_EQ(st->getJobById(id)->phase, "Running");
  EXPECT_EQ(st->attempts(id).at(0).handle, "77@88");  // pid and start time become the local handle
  EXPECT_EQ(st->attempts(id).at(0).log_cursor, "123");  // a byte offset was the local backend's cursor
  EXPECT_EQ(st->attempts(id).at(0).file_cursor, "");
}
