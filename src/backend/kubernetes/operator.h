// Operator mode: `trainyard server --backend kubernetes` serves TrainJob
// and Experiment custom resources (trainjobs/experiments.trainyard.dev,
// deploy/crds/) whose CRDs are installed. A resource applied with kubectl
// is submitted under the same name; its status (phase, reason, message,
// restarts; trials and the best trial for experiments) is written back to
// the status subresource, so `kubectl get` shows it; deleting the resource
// cancels what it started.
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

// What the server does for the operator. `kind` is "TrainJob" or "Experiment".
struct OperatorHooks {
  // Submits the resource (its JSON, which the spec parser reads as YAML);
  // returns "" or why it was refused (written to the status as Invalid).
  std::function<std::string(const std::string& kind, const std::string& name, const std::string& spec_json)> submit;
  // The status to write back (a JSON object with at least "phase"), or
  // nullopt when there is nothing of that name.
  std::function<std::optional<std::string>(const std::string& kind, const std::string& name)> status;
  // The resource is gone: cancel what it started.
  std::function<void(const std::string& kind, const std::string& name)> cancel;
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
