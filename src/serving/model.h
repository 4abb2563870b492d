// A loaded model version (TF-Serving's "servable"): runs one batch at a
// time, inputs concatenated along the first (batch) dimension. Runtimes
// implement it; the batcher and the HTTP layer only see this.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "serving/model_config.h"
#include "serving/tensor.h"

namespace trainyard::serving {

class Model {
 public:
  virtual ~Model() = default;
  // The signature: from config.yaml, or learnt at warm-up.
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  virtual std::string platform() const = 0;  // "pytorch_torchscript"
  // One batch in, one batch out (same first dimension). Not called
  // concurrently on one Model: each batcher instance has its own.
  virtual std::vector<HostTensor> run(const std::vector<HostTensor>& batch) = 0;
};

// Loads model files into Models (TorchScript through libtorch, loaded on
// first use from the runtime plugin so the rest of trainyard does not link it).
class ModelLoader {
 public:
  virtual ~ModelLoader() = default;
  // Loads and warms up one instance. Throws std::runtime_error with the reason.
  virtual std::unique_ptr<Model> load(const std::string& path, const ModelConfig& config) = 0;
};

// The TorchScript loader (dlopen's libtrainyard_torch.so beside the binary).
// Throws with the reason when the plugin or libtorch cannot be loaded.
std::shared_ptr<ModelLoader> torchScriptLoader();

}  // namespace trainyard::serving
