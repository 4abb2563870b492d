// Multi-tenancy of operator mode: a namespace is a tenant. A resource in
// namespace NS becomes the job "NS-<name>" (just "<name>" in the server's
// own namespace, which is the administrator's), owned by the namespace's
// user (its label trainyard.dev/user, else the namespace's name) and run in
// the namespace's queue (its label trainyard.dev/queue, else the spec's).
// Kubernetes RBAC decides who may create resources in a namespace; this
// decides what they become. Pure: no I/O.
#pragma once
#include <map>
#include <string>

namespace trainyard::backend::k8s {

inline constexpr const char* kUserLabel = "trainyard.dev/user";
inline constexpr const char* kQueueLabel = "trainyard.dev/queue";

struct Tenant {
  std::string job_name;  // empty when it cannot be named (error says why)
  std::string user;      // empty: the administrator (the server's own namespace)
  std::string queue;     // empty: the spec's own
  std::string error;
};

Tenant tenantOf(const std::string& ns, const std::string& name, const std::string& server_ns,
                const std::map<std::string, std::string>& ns_labels);

}  // namespace trainyard::backend::k8s
