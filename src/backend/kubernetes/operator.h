// Operator mode: `trainyard server --backend kubernetes` serves TrainJob
// custom resources (trainjobs.trainyard.dev, deploy/crds/) when their CRD
// is installed. A TrainJob applied with kubectl is submitted as a job of
// the same name; its phase, reason, message and restarts are written back
// to the resource's status subresource (so `kubectl get trainjobs` shows
// them); deleting the resource cancels the job.
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

struct JobState {
  std::string phase, reason, message;
  int restarts = 0;
};

struct OperatorHooks {
  // Submits the resource (its JSON, which the spec parser reads as YAML);
  // returns "" or why it was refused (written to the status as Invalid).
  std::function<std::string(const std::string& name, const std::string& spec_json)> submit;
  // The job's state, or nullopt when there is no job of that name.
  std::function<std::optional<JobState>(const std::string& name)> state;
  // The resource is gone: cancel the job.
  std::function<void(const std::string& name)> cancel;
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
