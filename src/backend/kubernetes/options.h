// Options of the kubernetes backend (header only: no TLS library here; the
// backend itself is the plugin libtrainyard_k8s.so).
#pragma once
#include <string>
#include <vector>

namespace trainyard::backend {

struct KubernetesOptions {
  std::string kubeconfig;  // "" = KUBECONFIG, ~/.kube/config, then the pod's service account
  std::string context;     // "" = current-context
  std::string ns;          // "" = the context's namespace
  // Pods use the node's network (clusters without a pod network, such as
  // the test clusters here). Peers then share the node's ports.
  bool host_network = false;
  // Where a finished job's pod logs are kept (<log_root>/<uid>, the local
  // backend's layout) when its pods are removed: logs outlive pods.
  std::string log_root;
  // How long a pod stays on a node that stopped answering before it is
  // evicted (its NoExecute toleration of not-ready/unreachable). A gang
  // missing a member cannot progress, so much shorter than Kubernetes'
  // default of 300 s for services.
  int eviction_seconds = 30;
  // Operator mode: the namespaces whose resources are served; empty = `ns`
  // only, {"*"} = every namespace (needs a ClusterRole, deploy/multi-tenant/).
  std::vector<std::string> watch_namespaces;
};

}  // namespace trainyard::backend
