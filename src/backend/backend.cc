#include "backend/backend.h"

#include <cstdlib>

#include "backend/local_backend.h"

namespace trainyard::backend {

LocalBackendOptions localBackendOptionsFromEnv() {
  LocalBackendOptions o;
  const char* quota = std::getenv("TRAINYARD_CPU_QUOTA");
  o.cpu_quota = quota && std::string(quota) == "1";
  return o;
}

std::unique_ptr<Backend> makeLocalBackend(const LocalBackendOptions& opts) {
  return std::make_unique<LocalBackend>(opts);
}

}  // namespace trainyard::backend
