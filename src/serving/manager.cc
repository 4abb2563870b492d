#include "serving/manager.h"

#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace trainyard::serving {
namespace fs = std::filesystem;

ModelManager::ModelManager(std::string repository, std::shared_ptr<ModelLoader> loader,
                           std::function<void(const std::string&, int64_t, int, int64_t)> on_batch)
    : repo_(std::move(repository)), loader_(std::move(loader)), on_batch_(std::move(on_batch)) {}

ModelManager::~ModelManager() {
  stopping_ = true;
  stop_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void ModelManager::startPolling(std::chrono::milliseconds interval) {
  poller_ = std::thread([this, interval] {
    while (!stopping_) {
      {
        std::unique_lock lk(stop_mu_);
        stop_cv_.wait_for(lk, interval, [&] { return stopping_.load(); });
      }
      if (stopping_) break;
      try {
        for (const auto& change : poll()) spdlog::info("{}", change);
      } catch (const std::exception& e) {
        spdlog::error("model repository {}: {}", repo_, e.what());
      }
    }
  });
}

std::shared_ptr<ServedVersion> ModelManager::loadVersion(const std::string& model, int64_t version,
                                                         const ModelConfig& config, const fs::path& file) {
  std::vector<std::unique_ptr<Model>> instances;
  for (int i = 0; i < config.instances; ++i) instances.push_back(loader_->load(file.string(), config));
  auto v = std::make_shared<ServedVersion>();
  v->model = model;
  v->version = version;
  v->config = config;
  v->inputs = instances[0]->inputs();
  v->outputs = instances[0]->outputs();
  v->platform = instances[0]->platform();
  BatchPolicy bp{config.max_batch_size, config.max_queue_delay_us, config.preferred_batch_sizes};
  v->batcher = std::make_unique<DynamicBatcher>(bp, config.queue_capacity, std::move(instances));
  if (on_batch_) {
    auto cb = on_batch_;
    v->batcher->on_batch = [cb, model, version](int rows, int64_t us) { cb(model, version, rows, us); };
  }
  return v;
}

std::vector<std::string> ModelManager::poll() {
  std::lock_guard poll_lock(poll_mu_);
  std::vector<std::string> changes;
  if (!fs::is_directory(repo_)) throw std::runtime_error(fmt::format("{} is not a directory", repo_));
  std::set<std::string> seen_models;
  for (const auto& md : fs::directory_iterator(repo_)) {
    if (!md.is_directory()) continue;
    std::string model = md.path().filename().string();
    seen_models.insert(model);
    ModelConfig config;
    std::string config_error;
    try {
      config = loadModelConfig((md.path() / "config.yaml").string());
    } catch (const std::exception& e) {
      config_error = e.what();
    }
    std::map<int64_t, fs::path> on_disk;
    for (const auto& vd : fs::directory_iterator(md.path())) {
      std::string n = vd.path().filename().string();
      if (!vd.is_directory() || n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 15) continue;
      if (fs::exists(vd.path() / "model.pt")) on_disk[std::stoll(n)] = vd.path() / "model.pt";
    }
    // Versions known not to load (same file as when they failed) are not
    // candidates: under {latest: 1}, a broken newest version leaves the one
    // before it serving, also on a fresh start.
    std::vector<int64_t> wanted;
    std::map<int64_t, std::shared_ptr<ServedVersion>> loaded;
    std::map<int64_t, std::pair<std::string, fs::file_time_type>> failures;
    for (int round = 0; round < 4; ++round) {
      std::vector<int64_t> candidates;
      {
        std::lock_guard lk(mu_);
        auto& e = models_[model];
        for (const auto& [v, p] : on_disk) {
          std::error_code ec;
          auto f = e.failed.find(v);
          bool bad = (f != e.failed.end() && f->second == fs::last_write_time(p, ec)) || failures.count(v);
          if (!bad) candidates.push_back(v);
        }
      }
      wanted = selectVersions(config.version_policy, candidates);
      bool failed_now = false;
      // Load what is wanted and not live, outside the table's lock.
      for (int64_t v : wanted) {
        std::error_code ec;
        auto mtime = fs::last_write_time(on_disk[v], ec);
        {
          std::lock_guard lk(mu_);
          auto& e = models_[model];
          if (e.live.count(v) || loaded.count(v)) continue;
          e.status[v] = {v, "LOADING", ""};
        }
        try {
          if (!config_error.empty()) throw std::runtime_error(config_error);
          loaded[v] = loadVersion(model, v, config, on_disk[v]);
        } catch (const std::exception& e) {
          failures[v] = {e.what(), mtime};
          failed_now = true;
        }
      }
      if (!failed_now || !config_error.empty()) break;
    }
    std::erase_if(wanted, [&](int64_t v) { return failures.count(v) > 0; });
    // Swap the table in one step: new versions in, unwanted ones out.
    std::vector<std::shared_ptr<ServedVersion>> retired;  // freed after the lock, when their requests end
    {
      std::lock_guard lk(mu_);
      auto& e = models_[model];
      for (auto& [v, sv] : loaded) {
        e.live[v] = sv;
        e.status[v] = {v, "AVAILABLE", ""};
        e.failed.erase(v);
        changes.push_back(fmt::format("model {} version {} is available", model, v));
      }
      for (auto& [v, f] : failures) {
        e.status[v] = {v, "END", f.first};
        e.failed[v] = f.second;
        changes.push_back(fmt::format("model {} version {} failed to load: {}", model, v, f.first));
      }
      // Versions the policy no longer wants go, unless a wanted one failed
      // to load: then the newest of them keep serving in its place.
      auto isWanted = [&](int64_t v) { return std::find(wanted.begin(), wanted.end(), v) != wanted.end(); };
      size_t missing = 0;
      for (int64_t v : wanted) missing += !e.live.count(v);
      std::set<int64_t> keep;
      for (auto it = e.live.rbegin(); it != e.live.rend() && keep.size() < missing; ++it)
        if (!isWanted(it->first)) keep.insert(it->first);
      for (auto it = e.live.begin(); it != e.live.end();) {
        if (!isWanted(it->first) && !keep.count(it->first)) {
          e.status[it->first] = {it->first, "END", ""};
          changes.push_back(fmt::format("model {} version {} is unloaded", model, it->first));
          retired.push_back(std::move(it->second));
          it = e.live.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = e.status.begin(); it != e.status.end();)
        it = on_disk.count(it->first) || e.live.count(it->first) ? std::next(it) : e.status.erase(it);
      e.labels = config.labels;
    }
  }
  {
    std::lock_guard lk(mu_);
    for (auto it = models_.begin(); it != models_.end();) {
      if (seen_models.count(it->first)) {
        ++it;
        continue;
      }
      changes.push_back(fmt::format("model {} is gone from the repository", it->first));
      it = models_.erase(it);
    }
  }
  return changes;
}

std::shared_ptr<ServedVersion> ModelManager::find(const std::string& model, std::optional<int64_t> version,
                                                  const std::optional<std::string>& label) const {
  std::lock_guard lk(mu_);
  auto m = models_.find(model);
  if (m == models_.end()) throw std::out_of_range(fmt::format("model \"{}\" is not served", model));
  const Entry& e = m->second;
  if (label) {
    auto l = e.labels.find(*label);
    if (l == e.labels.end()) throw std::out_of_range(fmt::format("model \"{}\" has no label \"{}\"", model, *label));
    version = l->second;
  }
  if (version) {
    auto v = e.live.find(*version);
    if (v == e.live.end()) {
      auto s = e.status.find(*version);
      std::string why = s != e.status.end() && !s->second.error.empty() ? ": " + s->second.error : "";
      throw std::out_of_range(fmt::format("model \"{}\" version {} is not available{}", model, *version, why));
    }
    return v->second;
  }
  if (e.live.empty()) throw std::out_of_range(fmt::format("model \"{}\" has no available version", model));
  return e.live.rbegin()->second;
}

std::vector<std::string> ModelManager::models() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [m, e] : models_) out.push_back(m);
  return out;
}

std::vector<VersionStatus> ModelManager::status(const std::string& model) const {
  std::lock_guard lk(mu_);
  auto m = models_.find(model);
  if (m == models_.end()) throw std::out_of_range(fmt::format("model \"{}\" is not served", model));
  std::vector<VersionStatus> out;
  for (const auto& [v, s] : m->second.status) out.push_back(s);
  return out;
}

std::vector<int64_t> ModelManager::versions(const std::string& model) const {
  std::lock_guard lk(mu_);
  std::vector<int64_t> out;
  auto m = models_.find(model);
  if (m != models_.end())
    for (const auto& [v, sv] : m->second.live) out.push_back(v);
  return out;
}

bool ModelManager::ready() const {
  std::lock_guard lk(mu_);
  for (const auto& [m, e] : models_)
    if (e.live.empty()) return false;
  return true;
}

}  // namespace trainyard::serving
