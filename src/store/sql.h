// The small SQL surface SqlStore needs, so one store implementation runs on
// SQLite and PostgreSQL. Statements use '?' placeholders (numbered for
// PostgreSQL by the driver) and bind by 1-based position.
//
// Not thread-safe: one SqlDb per thread, as the Store it serves.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace trainyard::store {

class SqlStmt {
 public:
  virtual ~SqlStmt() = default;
  virtual SqlStmt& bind(int i, int64_t v) = 0;
  virtual SqlStmt& bind(int i, double v) = 0;
  virtual SqlStmt& bind(int i, const std::string& v) = 0;
  virtual SqlStmt& bindNull(int i) = 0;
  SqlStmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  SqlStmt& bind(int i, bool v) { return bind(i, static_cast<int64_t>(v ? 1 : 0)); }
  SqlStmt& bind(int i, const char* v) { return bind(i, std::string(v)); }
  SqlStmt& bindOpt(int i, const std::optional<int>& v) { return v ? bind(i, *v) : bindNull(i); }
  // Runs the statement on the first call; true while a row is available.
  // A unique-constraint violation throws NameConflict.
  virtual bool step() = 0;
  // Ready to run again with new bindings.
  virtual void reset() = 0;
  virtual int64_t i64(int col) = 0;
  virtual double f64(int col) = 0;
  virtual bool isNull(int col) = 0;
  virtual std::string text(int col) = 0;
};

enum class Dialect { SQLite, PostgreSQL };

class SqlDb {
 public:
  virtual ~SqlDb() = default;
  virtual Dialect dialect() const = 0;
  virtual std::unique_ptr<SqlStmt> prepare(const std::string& sql) = 0;
  // One or more statements without parameters.
  virtual void exec(const std::string& sql) = 0;
  // An exclusive write transaction: writers in other processes wait.
  virtual void begin() = 0;
  // A transaction that need not exclude other writers (appending metric
  // points: rows of their own, upserts in a fixed order). SQLite has only
  // the one writer; PostgreSQL runs them concurrently.
  virtual void beginShared() { begin(); }
  virtual void commit() = 0;
  virtual void rollback() = 0;
  virtual bool hasTable(const std::string& name) = 0;
  // Bulk load: `rows` in PostgreSQL's COPY text format (tab-separated,
  // newline-terminated) into "table(columns)". PostgreSQL only.
  virtual void copyIn(const std::string& target, const std::string& rows) {
    throw std::runtime_error("bulk load into " + target + " is not supported on " + where());
  }
  // For messages: the file or the server (never the password).
  virtual std::string where() const = 0;
};

std::unique_ptr<SqlDb> openSqliteDb(const std::string& path);
// `url`: postgresql://user@host:port/db?... as libpq takes it. libpq is
// loaded with the driver plugin (libtrainyard_pg.so) on first use.
std::unique_ptr<SqlDb> openPostgresDb(const std::string& url);

}  // namespace trainyard::store
