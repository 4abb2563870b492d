#include "control/checkpoint_handover.h"

#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/pbt_sampler.h"

namespace trainyard::control {

namespace fs = std::filesystem;

std::string trialCheckpointDir(const std::string& data_dir, const store::ExperimentRecord& e, int number) {
  return (fs::path(data_dir) / "checkpoints" / fmt::format("{}-{}", e.name, e.id) / std::to_string(number)).string();
}

void seedCheckpoint(const std::string& data_dir, const store::ExperimentRecord& e, const store::TrialRecord& t,
                    int run_uid, int run_gid) {
  fs::path dir = trialCheckpointDir(data_dir, e, t.number);
  fs::path tmp = dir.string() + ".seeding";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(dir.parent_path(), ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir.parent_path().string(), ec.message()));
  auto parent = tune::pbtParent(t.meta);
  fs::path from = parent ? fs::path(trialCheckpointDir(data_dir, e, *parent)) : fs::path();
  if (parent && fs::is_directory(from, ec)) {
    fs::copy(from, tmp, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot copy trial {}'s checkpoint {}: {}", *parent, from.string(), ec.message()));
  } else {
    fs::create_directories(tmp, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", tmp.string(), ec.message()));
  }
  if (run_uid >= 0) {
    // The trial runs as this user and writes its checkpoint here.
    (void)!chown(tmp.c_str(), run_uid, run_gid);
    for (auto it = fs::recursive_directory_iterator(tmp, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      (void)!lchown(it->path().c_str(), run_uid, run_gid);
  }
  fs::remove_all(dir, ec);
  fs::rename(tmp, dir, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot move {} into place: {}", tmp.string(), ec.message()));
}

void mountCheckpoint(spec::TrainJobSpec& job, const std::string& dir, const std::string& where) {
  std::string at = where;
  while (at.size() > 1 && at.back() == '/') at.pop_back();
  for (auto& role : job.roles) {
    std::erase_if(role.volumes, [&](const auto& v) { return fs::path(v.mount_path).lexically_normal() == fs::path(at).lexically_normal() ||
                                          fs::path(v.mount_path).lexically_normal() == fs::path(at + "/").lexically_normal(); });
    role.volumes.push_back({dir, at, false});
    std::erase_if(role.env, [](const auto& kv) { return kv.first == "TRAINYARD_CHECKPOINT_DIR"; });
    role.env.emplace_back("TRAINYARD_CHECKPOINT_DIR", at);
  }
}

}  // namespace trainyard::control
