// PostgreSQL driver over libpq. Parameters travel as text; PostgreSQL infers
// their types from the statement. Exclusive transactions take one advisory
// lock, the PostgreSQL counterpart of SQLite's BEGIN IMMEDIATE.
#include <libpq-fe.h>

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "store/sql.h"
#include "store/store.h"

namespace trainyard::store {
namespace {

constexpr int64_t kWriterLock = 0x7472796172640001;  // "tryard" + 1

// '?' -> $1, $2, ... outside quoted strings.
std::string numberPlaceholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  bool quoted = false;
  for (char c : sql) {
    if (c == '\'') quoted = !quoted;
    if (c == '?' && !quoted) {
      out += fmt::format("${}", ++n);
      continue;
    }
    out += c;
  }
  return out;
}

class PgStmt final : public SqlStmt {
 public:
  PgStmt(PGconn* conn, const std::string& sql) : conn_(conn), sql_(numberPlaceholders(sql)) {}
  ~PgStmt() override { clear(); }
  SqlStmt& bind(int i, int64_t v) override { return set(i, std::to_string(v)); }
  SqlStmt& bind(int i, double v) override {
    if (std::isnan(v)) return set(i, "NaN");
    if (std::isinf(v)) return set(i, v > 0 ? "Infinity" : "-Infinity");
    return set(i, fmt::format("{}", v));
  }
  SqlStmt& bind(int i, const std::string& v) override { return set(i, v); }
  SqlStmt& bindNull(int i) override {
    grow(i);
    params_[i - 1].reset();
    return *this;
  }
  bool step() override {
    if (!res_) run();
    ++row_;
    return row_ < PQntuples(res_);
  }
  void reset() override {
    clear();
    params_.clear();
  }
  int64_t i64(int c) override { return std::strtoll(PQgetvalue(res_, row_, c), nullptr, 10); }
  double f64(int c) override { return std::strtod(PQgetvalue(res_, row_, c), nullptr); }
  bool isNull(int c) override { return PQgetisnull(res_, row_, c) != 0; }
  std::string text(int c) override { return std::string(PQgetvalue(res_, row_, c), PQgetlength(res_, row_, c)); }

 private:
  void grow(int i) {
    if (static_cast<int>(params_.size()) < i) params_.resize(i);
  }
  SqlStmt& set(int i, std::string v) {
    grow(i);
    params_[i - 1] = std::move(v);
    return *this;
  }
  void clear() {
    if (res_) PQclear(res_);
    res_ = nullptr;
    row_ = -1;
  }
  void run() {
    std::vector<const char*> values;
    for (const auto& p : params_) values.push_back(p ? p->c_str() : nullptr);
    res_ = PQexecParams(conn_, sql_.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                        nullptr, 0);
    auto st = PQresultStatus(res_);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    const char* state = PQresultErrorField(res_, PG_DIAG_SQLSTATE);
    std::string msg = PQresultErrorMessage(res_);
    bool unique = state && std::string(state) == "23505";
    clear();
    if (unique) throw NameConflict(msg);
    throw std::runtime_error(fmt::format("postgresql: {} in: {}", msg, sql_));
  }

  PGconn* conn_;
  std::string sql_;
  std::vector<std::optional<std::string>> params_;
  PGresult* res_ = nullptr;
  int row_ = -1;
};

class PostgresDb final : public SqlDb {
 public:
  explicit PostgresDb(const std::string& url) {
    conn_ = PQconnectdb(url.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn_);
      PQfinish(conn_);
      throw std::runtime_error(fmt::format("cannot connect to the PostgreSQL store: {}", msg));
    }
    where_ = fmt::format("postgresql://{}@{}:{}/{}", PQuser(conn_), PQhost(conn_), PQport(conn_), PQdb(conn_));
    exec("SET client_min_messages = warning");
  }
  ~PostgresDb() override { PQfinish(conn_); }

  // COPY ... FROM STDIN: one round trip and no per-row statement work, the
  // fastest way PostgreSQL takes rows.
  void copyIn(const std::string& target, const std::string& rows) override {
    PGresult* r = PQexec(conn_, ("COPY " + target + " FROM STDIN").c_str());
    bool ready = PQresultStatus(r) == PGRES_COPY_IN;
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    if (!ready) throw std::runtime_error(fmt::format("{}: COPY {}: {}", where_, target, msg));
    if (PQputCopyData(conn_, rows.data(), static_cast<int>(rows.size())) != 1 || PQputCopyEnd(conn_, nullptr) != 1)
      throw std::runtime_error(fmt::format("{}: COPY {}: {}", where_, target, PQerrorMessage(conn_)));
    std::string error;
    while ((r = PQgetResult(conn_))) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQresultErrorMessage(r);
      PQclear(r);
    }
    if (!error.empty()) throw std::runtime_error(fmt::format("{}: COPY {}: {}", where_, target, error));
  }
  Dialect dialect() const override { return Dialect::PostgreSQL; }
  std::unique_ptr<SqlStmt> prepare(const std::string& sql) override { return std::make_unique<PgStmt>(conn_, sql); }
  void exec(const std::string& sql) override {
    PGresult* r = PQexec(conn_, sql.c_str());
    auto st = PQresultStatus(r);
    std::string msg = PQresultErrorMessage(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      throw std::runtime_error(fmt::format("postgresql: {} ({})", msg, where_));
  }
  void begin() override { exec(fmt::format("BEGIN; SELECT pg_advisory_xact_lock({})", kWriterLock)); }
  void beginShared() override { exec("BEGIN"); }
  void commit() override { exec("COMMIT"); }
  void rollback() override {
    PGresult* r = PQexec(conn_, "ROLLBACK");
    PQclear(r);
  }
  bool hasTable(const std::string& name) override {
    auto s = prepare("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name=?");
    s->bind(1, name);
    return s->step();
  }
  std::string where() const override { return where_; }

 private:
  PGconn* conn_ = nullptr;
  std::string where_;
};

}  // namespace

}  // namespace trainyard::store

// The plugin's entry point (libtrainyard_pg.so; see util/plugin.h). Errors
// are thrown as std::runtime_error, as from any driver.
extern "C" __attribute__((visibility("default"))) trainyard::store::SqlDb* trainyard_open_postgres(const char* url) {
  return new trainyard::store::PostgresDb(url);
}
