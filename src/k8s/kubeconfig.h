// Where a Kubernetes API server is and who we are to it: a kubeconfig file
// (kubectl's format: the current or a named context -> cluster + user), or
// the in-cluster service account of a pod. Only what a client needs; exec
// and auth-provider plugins are not supported (a clear error names them).
#pragma once
#include <optional>
#include <string>

namespace trainyard::k8s {

struct KubeConfig {
  std::string server;     // https://host:port
  std::string ca_pem;     // the CA that signs the server's certificate ("" = the system's)
  bool insecure = false;  // insecure-skip-tls-verify
  std::string token;      // bearer token (token or tokenFile)
  std::string client_cert_pem, client_key_pem;  // client certificate auth
  std::string ns = "default";                   // the context's namespace
  std::string source;                           // the file it came from, for errors
};

// Reads `path` (KUBECONFIG's first file when empty, then ~/.kube/config).
// `context` "" = current-context. Throws std::runtime_error naming the file
// and the field on anything missing or malformed.
KubeConfig loadKubeConfig(const std::string& path = "", const std::string& context = "");

// The service account mounted into a pod (KUBERNETES_SERVICE_HOST and
// /var/run/secrets/kubernetes.io/serviceaccount), or nullopt outside one.
std::optional<KubeConfig> inClusterConfig();

// What a Trainyard command uses: `path` when given; else the pod's service
// account when running in one; else KUBECONFIG or ~/.kube/config.
KubeConfig resolveKubeConfig(const std::string& path, const std::string& context);

}  // namespace trainyard::k8s
