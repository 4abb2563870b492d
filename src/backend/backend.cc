#include "backend/backend.h"

#include "backend/local_backend.h"

namespace trainyard::backend {

std::unique_ptr<Backend> makeLocalBackend(const LocalBackendOptions& opts) {
  return std::make_unique<LocalBackend>(opts);
}

}  // namespace trainyard::backend
