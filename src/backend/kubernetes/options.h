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
  // Who places the pods. "trainyard": its scheduler places each gang on
  // the nodes and binds every pod (pods/binding), all or none. "default":
  // kube-scheduler (or the scheduler a pod template names) places them;
  // Trainyard admits gangs by queue and node fit as before, and a gang not
  // all started within its startTimeoutSeconds (an affinity Trainyard does
  // not model, a node taken meanwhile) is torn down and queued again,
  // without counting against backoffLimit.
  std::string gang = "trainyard";
  // With gang "default": a PodGroup per attempt for Volcano ("volcano",
  // scheduling.volcano.sh/v1beta1) or the scheduler-plugins coscheduling
  // plugin ("coscheduling", scheduling.x-k8s.io/v1alpha1); "" = none.
  std::string pod_group;
  // Operator mode: the namespaces whose resources are served; empty = `ns`
  // only, {"*"} = every namespace (needs a ClusterRole, deploy/multi-tenant/).
  std::vector<std::string> watch_namespaces;
};

}  // namespace trainyard::backend
