// How a placed job looks on Kubernetes, shaped like Kubeflow's training
// operator so that its users and tools recognise it: per replica a Pod
// `<job>-<role>-<index>-<attempt>` and a headless Service `<job>-<role>-<index>`
// (the peers' address), labels trainyard.dev/{job-name,job-uid,replica-type,
// replica-index,replica-name,attempt} (job-role=master on rank 0), and the
// job's config files in a ConfigMap mounted at /etc/trainyard. Pods have
// restartPolicy Never: restarts, backoff and deadlines are the
// controller's, and a new attempt is a new set of pods. Pure: JSON out, and
// pod status in as a ReplicaStatus.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/kubernetes/options.h"

namespace trainyard::backend::k8s {

inline constexpr const char* kManagedBy = "trainyard.dev/managed-by";
inline constexpr const char* kJobUid = "trainyard.dev/job-uid";
inline constexpr const char* kReplicaName = "trainyard.dev/replica-name";
inline constexpr const char* kAttempt = "trainyard.dev/attempt";
inline constexpr const char* kConfigDir = "/etc/trainyard";

std::string serviceName(const PlacedJob& job, const ReplicaLaunch& r);
std::string podName(const PlacedJob& job, const ReplicaLaunch& r);
std::string configMapName(const PlacedJob& job);


// The ownerReferences of the objects made for `job` in namespace `ns`: the
// resource it came from (kOwner*Label) when that lives in `ns` (owners
// cannot be in another namespace); an empty array otherwise.
nlohmann::json ownerReferencesFor(const PlacedJob& job, const std::string& ns);

// Throws BackendError (permanent) for what this backend cannot run (no image).
nlohmann::json podFor(const PlacedJob& job, const ReplicaLaunch& r, size_t index, const KubernetesOptions& o);
nlohmann::json serviceFor(const PlacedJob& job, const ReplicaLaunch& r);
nlohmann::json configMapFor(const PlacedJob& job);
// With KubernetesOptions::pod_group: the attempt's PodGroup (minMember =
// the pods of the gang) and where such objects are created.
std::string podGroupName(const PlacedJob& job);
std::string podGroupPath(const std::string& ns, const std::string& kind);
nlohmann::json podGroupFor(const PlacedJob& job, const KubernetesOptions& o);

// A pod as the controller sees a replica: phase, exit, reasons (waiting
// reasons such as ImagePullBackOff and Unschedulable while Pending), the
// pod UID as its handle.
ReplicaStatus statusOf(const nlohmann::json& pod);

}  // namespace trainyard::backend::k8s
