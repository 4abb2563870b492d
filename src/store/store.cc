#include "store/store.h"

#include <chrono>
#include <filesystem>

#include "store/sql_store.h"
#include "util/plugin.h"

namespace trainyard::store {

bool isTerminal(const std::string& phase) { return phase == kSucceeded || phase == kFailed || phase == kStopped; }

double nowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::unique_ptr<SqlDb> openPostgresDb(const std::string& url) {
  auto open = reinterpret_cast<SqlDb* (*)(const char*)>(
      util::pluginSymbol("libtrainyard_pg.so", "trainyard_open_postgres", "the PostgreSQL driver (libpq)"));
  return std::unique_ptr<SqlDb>(open(url.c_str()));
}

namespace {
bool isPostgres(const std::string& location) {
  return location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0;
}
std::string sqliteFile(const std::string& dir) { return (std::filesystem::path(dir) / "trainyard.db").string(); }
}  // namespace

std::unique_ptr<Store> openStore(const std::string& location) {
  if (isPostgres(location)) return std::make_unique<SqlStore>(openPostgresDb(location));
  std::filesystem::create_directories(location);
  return std::make_unique<SqlStore>(openSqliteDb(sqliteFile(location)));
}

std::vector<std::string> storeFiles(const std::string& location) {
  if (isPostgres(location)) return {};
  std::string db = sqliteFile(location);
  return {db, db + "-wal", db + "-shm"};
}

}  // namespace trainyard::store
