// Kubeflow training-operator jobs (kubeflow.org/v1 PyTorchJob, TFJob,
// MPIJob) translated into a TrainJobSpec, so their YAML runs unchanged.
// Fields that cannot apply on this machine (image, volumes, nodeSelector...)
// are reported as warnings, one per field, never dropped silently.
#pragma once
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "spec/trainjob.h"

namespace trainyard::spec {

class Walker;

TrainJobSpec translateKubeflowJob(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                                  std::vector<std::string>& warnings);

// A Kubernetes batch/v1 Job (Katib's usual trialSpec): one replica; failed
// pods are retried up to backoffLimit (default 6), as Kubernetes does.
TrainJobSpec translateBatchJob(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                               std::vector<std::string>& warnings);

}  // namespace trainyard::spec
