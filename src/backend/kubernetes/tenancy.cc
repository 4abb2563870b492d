#include "backend/kubernetes/tenancy.h"

#include <fmt/format.h>

namespace trainyard::backend::k8s {

Tenant tenantOf(const std::string& ns, const std::string& name, const std::string& server_ns,
                const std::map<std::string, std::string>& ns_labels) {
  Tenant t;
  auto label = [&](const char* key) {
    auto it = ns_labels.find(key);
    return it == ns_labels.end() ? std::string() : it->second;
  };
  t.queue = label(kQueueLabel);
  if (ns == server_ns) {
    t.job_name = name;
    return t;
  }
  t.user = label(kUserLabel).empty() ? ns : label(kUserLabel);
  // Jobs share one name space in the store: the namespace's prefix keeps
  // tenants' names apart (the job also records where it came from, so a
  // prefix that happens to match another tenant's name is refused, not shared).
  t.job_name = ns + "-" + name;
  if (t.job_name.size() > 63) {
    t.error = fmt::format("namespace and name make the job name {}, longer than 63 characters", t.job_name);
    t.job_name.clear();
  }
  return t;
}

}  // namespace trainyard::backend::k8s
