#include "store/store.h"

#include <chrono>
#include <filesystem>

#include "store/sqlite_store.h"

namespace trainyard::store {

bool isTerminal(const std::string& phase) { return phase == kSucceeded || phase == kFailed; }

double nowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

std::unique_ptr<Store> openStore(const std::string& location) {
  if (location.rfind("postgresql://", 0) == 0 || location.rfind("postgres://", 0) == 0)
    throw std::runtime_error("the PostgreSQL store is not built into this version yet: " + location);
  std::filesystem::create_directories(location);
  return std::make_unique<SqliteStore>((std::filesystem::path(location) / "trainyard.db").string());
}

}  // namespace trainyard::store
