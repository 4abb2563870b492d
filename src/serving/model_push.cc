#include "serving/model_push.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "spec/parser.h"

namespace trainyard::serving {
namespace fs = std::filesystem;

Pushed pushModel(const std::string& models_dir, const std::string& name, const std::string& model_file) {
  if (!spec::isValidName(name))
    throw PushError(fmt::format("model name \"{}\": expected lower-case letters, digits and '-' (a DNS-1123 label)", name));
  std::error_code ec;
  if (!fs::is_regular_file(fs::symlink_status(model_file, ec)))
    throw PushError(fmt::format("{} does not exist (write TorchScript to $TRAINYARD_OUTPUT_DIR/model.pt)", model_file));
  fs::path model_dir = fs::path(models_dir) / name;
  fs::create_directories(model_dir);
  int64_t next = 1;
  for (const auto& d : fs::directory_iterator(model_dir)) {
    std::string n = d.path().filename().string();
    if (d.is_directory() && !n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 16)
      next = std::max<int64_t>(next, std::stoll(n) + 1);
  }
  fs::path tmp = model_dir / fmt::format(".push-{}-{}", getpid(), next);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy_file(model_file, tmp / "model.pt");
  fs::path dst = model_dir / std::to_string(next);
  fs::rename(tmp, dst, ec);
  if (ec) {  // another push took that version a moment ago
    fs::remove_all(tmp);
    throw PushError(fmt::format("version {} of {} was taken while copying; push again", next, name));
  }
  return {next, (dst / "model.pt").string()};
}

}  // namespace trainyard::serving
