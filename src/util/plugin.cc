#include "util/plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace trainyard::util {

void* pluginSymbol(const std::string& library, const char* symbol, const std::string& what) {
  namespace fs = std::filesystem;
  fs::path exe = fs::read_symlink("/proc/self/exe").parent_path();
  std::vector<fs::path> candidates = {exe / library, exe / "../lib/trainyard" / library};
  if (const char* dir = std::getenv("TRAINYARD_PLUGIN_DIR")) candidates.insert(candidates.begin(), fs::path(dir) / library);
  std::string tried;
  for (const auto& c : candidates) {
    if (!fs::exists(c)) {
      tried += fmt::format("\n  {}: not found", c.string());
      continue;
    }
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);  // dlopen counts references: loading twice is cheap
    if (!h) {
      tried += fmt::format("\n  {}: {}", c.string(), dlerror());
      continue;
    }
    if (void* s = dlsym(h, symbol)) return s;
    tried += fmt::format("\n  {}: no {} symbol", c.string(), symbol);
  }
  throw std::runtime_error(fmt::format("cannot load {}:{}", what, tried));
}

}  // namespace trainyard::util
