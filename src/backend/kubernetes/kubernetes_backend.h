// The kubernetes backend: each replica a Pod (and a headless Service for its
// peers) on a real cluster, shaped as backend/kubernetes/pods.h says.
// Trainyard's scheduler places the gang on the cluster's Node objects and
// binds every pod itself (pods/binding), all or none. State comes from one
// pod list per pass (observeAll); a watch on the same pods wakes the loop
// (waitForChange). Logs through the pods/log API.
//
// Built as the plugin libtrainyard_k8s.so (the only part of Trainyard that
// loads OpenSSL), made by makeKubernetesBackend() through util/plugin.h.
#pragma once
#include <memory>

#include "backend/backend.h"
#include "backend/kubernetes/options.h"

namespace trainyard::backend {

// Loads the plugin and connects (reads the kubeconfig; the first request
// happens on first use). Throws std::runtime_error naming what is missing.
std::unique_ptr<Backend> makeKubernetesBackend(const KubernetesOptions& opts);

}  // namespace trainyard::backend
