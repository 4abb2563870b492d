#include "store/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sqlite3.h>

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
}  // namespace

TEST(SqliteStore, CreatesSchemaAndRejectsDuplicateNames) {
  auto dir = test::freshDir();
  auto st = openStore(dir);
  EXPECT_EQ(st->schemaVersion(), 3);
  auto j = newJob("a");
  st->createJob(j);
  EXPECT_GT(j.id, 0);
  EXPECT_EQ(j.uid.size(), 32u);
  auto dup = newJob("a");
  EXPECT_THROW(st->createJob(dup), NameConflict);
  EXPECT_EQ(st->listJobs().size(), 1u);
}

TEST(SqliteStore, StatusAttemptsConditionsEventsSurviveReopen) {
  auto dir = test::freshDir();
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
    AttemptRecord a{j.id, 0, "worker-0", "Running", 42, 1001, 0, std::nullopt, std::nullopt, "", "/log"};
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

TEST(SqliteStore, MetricsSeriesAndLastValues) {
  auto st = openStore(test::freshDir());
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
}

TEST(SqliteStore, TransactionRollsBackOnError) {
  auto st = openStore(test::freshDir());
  EXPECT_THROW(st->transaction([&] {
    auto j = newJob("x");
    st->createJob(j);
    throw std::runtime_error("boom");
  }), std::runtime_error);
  EXPECT_FALSE(st->getJob("x"));
}

TEST(SqliteStore, UsesWalAndRefusesNewerSchema) {
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
