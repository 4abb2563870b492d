// Operator mode: `trainyard server --backend kubernetes` serves TrainJob
// and Experiment custom resources (trainjobs/experiments.trainyard.dev,
// deploy/crds/) whose CRDs are installed. A resource applied with kubectl
// is submitted under the same name; its status (phase, reason, message,
// restarts; trials and the best trial for experiments) is written back to
// the status subresource, so `kubectl get` shows it; deleting the resource
// cancels what it started: the resource keeps the finalizer
// trainyard.dev/cancel until its job has stopped, so a deletion while the
// server is down is not missed, and `kubectl delete` returns when the pods
// are gone. Namespaces are tenants (tenancy.h): the server serves its own
// namespace, or those of --watch-namespaces ("*": all).
//
// Reconciled like a Kubernetes controller: each pass lists the resources
// and compares them with the jobs (desired state stored, observed state
// acted on), so a restart loses nothing. Runs in its own thread in the
// plugin; the server supplies what it does through OperatorHooks.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backend/kubernetes/options.h"

namespace trainyard::backend {

// The label on a job or experiment the operator submitted: the namespace of
// the resource that started it (a job of the same name from another
// namespace is not that resource's).
inline constexpr const char* kFromNamespaceLabel = "trainyard.dev/from-namespace";

// A resource the operator serves, and what it becomes.
struct ServedResource {
  std::string category;  // "TrainJob", "Experiment" or "Queue": what the server makes of it
  std::string api_version, kind, ns, name;
  std::string job_name;  // the job or experiment it is (tenancy.h)
  std::string user;      // its owner; "" = the administrator
  std::string queue;     // the namespace's queue; "" = the spec's
};

// What the server does for the operator. A job another resource started
// (same job name, other namespace) is not this resource's: status() says
// nullopt and submit() refuses.
struct OperatorHooks {
  // Submits the resource (its JSON, which the spec parser reads as YAML);
  // returns "" or why it was refused (written to the status as Invalid).
  std::function<std::string(const ServedResource& r, const std::string& spec_json)> submit;
  // The status to write back (a JSON object with at least "phase"), or
  // nullopt when the resource started nothing (yet).
  std::function<std::optional<std::string>(const ServedResource& r)> status;
  // The resource is being deleted: cancel what it started. True once
  // nothing of it runs any more (its finalizer may go).
  std::function<bool(const ServedResource& r)> cancel;
};

class Operator {
 public:
  virtual ~Operator() = default;  // stops the loop
  // Whether the CRD is installed (else the operator idles and says so once).
  virtual bool serving() const = 0;
};

// Loads the plugin and starts the loop (a pass a second, and on changes).
std::unique_ptr<Operator> startOperator(const KubernetesOptions& opts, OperatorHooks hooks);

}  // namespace trainyard::backend
