#include <mutex>

#include "serving/model.h"
#include "util/plugin.h"

namespace trainyard::serving {

std::shared_ptr<ModelLoader> torchScriptLoader() {
  static std::mutex mu;
  static std::shared_ptr<ModelLoader> loader;
  std::lock_guard lk(mu);
  if (!loader) {
    auto make = reinterpret_cast<ModelLoader* (*)()>(
        util::pluginSymbol("libtrainyard_torch.so", "trainyard_torch_loader", "the TorchScript runtime (libtorch)"));
    loader.reset(make());
  }
  return loader;
}

}  // namespace trainyard::serving
