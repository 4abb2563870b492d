// A served model's configuration: DIR/<model>/config.yaml, all optional.
//
//   inputs:  [{name: input, datatype: FP32, shape: [-1, 784]}]   # -1: the batch dimension
//   outputs: [{name: logits, datatype: FP32, shape: [-1, 10]}]
//   max_batch_size: 32            # 0 or 1: no batching
//   max_queue_delay_us: 0         # how long a request may wait for others (0: run as
//                                 # soon as an instance is free; batches form under load)
//   preferred_batch_sizes: [8, 16, 32]
//   queue_capacity: 1024          # requests waiting; beyond it: 429 at once
//   instances: 1                  # model replicas running batches in parallel
//   intra_op_threads: 1           # libtorch threads per instance
//   version_policy: {latest: 1} | {specific: [1, 3]} | {all: true}
//   labels: {stable: 1, canary: 2}
//
// Without inputs, the signature comes from the model's first warm-up.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "serving/tensor.h"

namespace trainyard::serving {

struct TensorSpec {
  std::string name;
  DataType dtype = DataType::FP32;
  std::vector<int64_t> shape;  // first dimension -1: batch
};

struct VersionPolicy {
  enum class Kind { Latest, Specific, All };
  Kind kind = Kind::Latest;
  int latest = 1;
  std::vector<int64_t> versions;
};

struct ModelConfig {
  std::vector<TensorSpec> inputs, outputs;
  int max_batch_size = 32;
  int64_t max_queue_delay_us = 0;
  std::vector<int> preferred_batch_sizes;
  int queue_capacity = 1024;
  int instances = 1;
  int intra_op_threads = 1;
  VersionPolicy version_policy;
  std::map<std::string, int64_t> labels;
};

// Throws spec::SpecError (file:line:col, field path) on bad input; a missing
// file gives the defaults.
ModelConfig loadModelConfig(const std::string& path);

// Which of the versions on disk to serve under `policy` (ascending).
std::vector<int64_t> selectVersions(const VersionPolicy& policy, std::vector<int64_t> on_disk);

}  // namespace trainyard::serving
