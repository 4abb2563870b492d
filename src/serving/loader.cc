#include <dlfcn.h>

#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "serving/model.h"

namespace trainyard::serving {

std::shared_ptr<ModelLoader> torchScriptLoader() {
  static std::mutex mu;
  static std::shared_ptr<ModelLoader> loader;
  std::lock_guard lk(mu);
  if (loader) return loader;
  namespace fs = std::filesystem;
  fs::path exe = fs::read_symlink("/proc/self/exe").parent_path();
  std::vector<fs::path> candidates = {exe / "libtrainyard_torch.so", exe / "../lib/trainyard/libtrainyard_torch.so"};
  if (const char* env = std::getenv("TRAINYARD_TORCH_RUNTIME")) candidates.insert(candidates.begin(), env);
  std::string tried;
  for (const auto& c : candidates) {
    if (!fs::exists(c)) {
      tried += fmt::format("\n  {}: not found", c.string());
      continue;
    }
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      tried += fmt::format("\n  {}: {}", c.string(), dlerror());
      continue;
    }
    auto make = reinterpret_cast<ModelLoader* (*)()>(dlsym(h, "trainyard_torch_loader"));
    if (!make) {
      tried += fmt::format("\n  {}: no trainyard_torch_loader symbol", c.string());
      continue;
    }
    loader.reset(make());
    return loader;
  }
  throw std::runtime_error("cannot load the TorchScript runtime (libtorch):" + tried);
}

}  // namespace trainyard::serving
