// SQLite driver: one file in WAL mode, shared by several processes.
#include <sqlite3.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "store/sql.h"
#include "store/store.h"

namespace trainyard::store {
namespace {

class SqliteStmt final : public SqlStmt {
 public:
  SqliteStmt(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK)
      throw std::runtime_error(fmt::format("sqlite prepare failed: {} in: {}", sqlite3_errmsg(db), sql));
  }
  ~SqliteStmt() override { sqlite3_finalize(s_); }
  SqlStmt& bind(int i, int64_t v) override { sqlite3_bind_int64(s_, i, v); return *this; }
  SqlStmt& bind(int i, double v) override { sqlite3_bind_double(s_, i, v); return *this; }
  SqlStmt& bind(int i, const std::string& v) override {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  SqlStmt& bindNull(int i) override { sqlite3_bind_null(s_, i); return *this; }
  bool step() override {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_reset(s_);
    if (rc == SQLITE_CONSTRAINT) throw NameConflict(msg);
    throw std::runtime_error(fmt::format("sqlite step failed: {}", msg));
  }
  void reset() override {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int c) override { return sqlite3_column_int64(s_, c); }
  double f64(int c) override { return sqlite3_column_double(s_, c); }
  bool isNull(int c) override { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) override {
    auto p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, c)) : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

class SqliteDb final : public SqlDb {
 public:
  explicit SqliteDb(const std::string& path) : path_(path) {
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
    // Switching a new file to WAL needs an exclusive lock and SQLite does not
    // call the busy handler for it: two processes opening a fresh store at
    // once (`trainyard run` and a `describe` polling it) would see "database
    // is locked". Retry for as long as the busy timeout would wait.
    for (int waited_ms = 0;; waited_ms += 5) {
      int rc = sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) break;
      if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || waited_ms >= 30000) exec("PRAGMA journal_mode=WAL");  // throws
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
  }
  ~SqliteDb() override { sqlite3_close(db_); }
  Dialect dialect() const override { return Dialect::SQLite; }
  std::unique_ptr<SqlStmt> prepare(const std::string& sql) override { return std::make_unique<SqliteStmt>(db_, sql); }
  void exec(const std::string& sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error(fmt::format("sqlite: {} ({}; in: {})", msg, path_, sql.substr(0, 60)));
    }
  }
  void begin() override { exec("BEGIN IMMEDIATE"); }
  void commit() override { exec("COMMIT"); }
  void rollback() override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }
  bool hasTable(const std::string& name) override {
    auto s = prepare("SELECT name FROM sqlite_master WHERE type='table' AND name=?");
    s->bind(1, name);
    return s->step();
  }
  std::string where() const override { return path_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace

std::unique_ptr<SqlDb> openSqliteDb(const std::string& path) { return std::make_unique<SqliteDb>(path); }

}  // namespace trainyard::store
