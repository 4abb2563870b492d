#include "backend/backend.h"

#include <cstdlib>
#include <stdexcept>

#include "backend/local_backend.h"

namespace trainyard::backend {

std::string latePeerHostVar(size_t replica) { return "TRAINYARD_PEER_HOST_" + std::to_string(replica); }
std::string latePeerHost(size_t replica) { return "$(" + latePeerHostVar(replica) + ")"; }

LocalBackendOptions localBackendOptionsFromEnv() {
  LocalBackendOptions o;
  const char* quota = std::getenv("TRAINYARD_CPU_QUOTA");
  o.cpu_quota = quota && std::string(quota) == "1";
  return o;
}

std::unique_ptr<Backend> makeLocalBackend(const LocalBackendOptions& opts) {
  return std::make_unique<LocalBackend>(opts);
}

BackendFactory backendFactory(const std::string& name, const LocalBackendOptions& local) {
  if (name == "local") return [local] { return makeLocalBackend(local); };
  if (name == "kubernetes" || name == "slurm")
    throw std::invalid_argument("--backend " + name + ": not available in this build yet (the local backend is: --backend local)");
  throw std::invalid_argument("--backend " + name + ": expected local (kubernetes and slurm are coming)");
}

}  // namespace trainyard::backend
