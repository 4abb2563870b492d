// Pushing a model into a repository as its next version (the layout the
// serving manager polls: MODELS/<name>/<version>/model.pt). Copied beside,
// then renamed, so a polling server never sees half a file. Used by
// `trainyard models push` on a data directory and by the server's
// POST /api/v1/models for a remote user.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace trainyard::serving {

struct PushError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Pushed {
  int64_t version = 0;
  std::string path;  // the new version's model.pt
};

// Copies `model_file` into `models_dir`/`name` as the next version. Throws
// PushError for a name that is not a DNS-1123 label or a file that is not
// there.
Pushed pushModel(const std::string& models_dir, const std::string& name, const std::string& model_file);

}  // namespace trainyard::serving
