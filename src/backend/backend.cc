#include "backend/backend.h"

#include <cstdlib>
#include <stdexcept>

#include "backend/kubernetes/kubernetes_backend.h"
#include "backend/slurm/slurm_backend.h"
#include "backend/kubernetes/operator.h"
#include "backend/kubernetes/token_review.h"
#include "backend/local_backend.h"
#include "util/plugin.h"

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

std::unique_ptr<Backend> makeKubernetesBackend(const KubernetesOptions& opts) {
  auto make = reinterpret_cast<Backend* (*)(const KubernetesOptions*)>(
      util::pluginSymbol("libtrainyard_k8s.so", "trainyard_kubernetes_backend", "the kubernetes backend"));
  return std::unique_ptr<Backend>(make(&opts));
}

std::unique_ptr<Operator> startOperator(const KubernetesOptions& opts, OperatorHooks hooks) {
  auto start = reinterpret_cast<Operator* (*)(const KubernetesOptions*, OperatorHooks*)>(
      util::pluginSymbol("libtrainyard_k8s.so", "trainyard_kubernetes_operator", "the kubernetes operator"));
  return std::unique_ptr<Operator>(start(&opts, &hooks));
}

TokenReviewer kubernetesTokenReviewer(const KubernetesOptions& opts) {
  auto make = reinterpret_cast<TokenReviewer* (*)(const KubernetesOptions*)>(
      util::pluginSymbol("libtrainyard_k8s.so", "trainyard_kubernetes_token_reviewer", "Kubernetes authentication"));
  std::unique_ptr<TokenReviewer> r(make(&opts));
  return *r;
}

BackendFactory backendFactory(const std::string& name, const LocalBackendOptions& local, const KubernetesOptions& kube,
                              const SlurmOptions& slurm) {
  if (name == "local") return [local] { return makeLocalBackend(local); };
  if (name == "kubernetes") return [kube] { return makeKubernetesBackend(kube); };
  if (name == "slurm") return [slurm] { return makeSlurmBackend(slurm); };
  throw std::invalid_argument("--backend " + name + ": expected local, kubernetes or slurm");
}

}  // namespace trainyard::backend
