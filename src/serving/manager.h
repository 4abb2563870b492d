// Source -> manager -> servable, after TF Serving: the repository on disk
// (DIR/<model>/<version>/model.pt, optional DIR/<model>/config.yaml) is the
// source of truth; poll() compares it with what is loaded and acts. A new
// version is loaded and warmed up before it takes traffic; an old one is
// removed from the table at once and freed when its last request is done
// (requests hold a shared_ptr). A version that fails to load is reported
// and leaves the serving ones untouched.
#pragma once
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "serving/batcher.h"
#include "serving/model.h"
#include "serving/model_config.h"

namespace trainyard::serving {

struct ServedVersion {
  std::string model;
  int64_t version = 0;
  ModelConfig config;
  std::vector<TensorSpec> inputs, outputs;  // the signature
  std::string platform;
  std::unique_ptr<DynamicBatcher> batcher;
};

// TF Serving's version states.
struct VersionStatus {
  int64_t version = 0;
  std::string state;  // LOADING, AVAILABLE, END (failed or unloaded)
  std::string error;  // why it is not available ("" when it is)
};

class ModelManager {
 public:
  // `on_batch(model, version, rows, compute_us)` feeds metrics.
  ModelManager(std::string repository, std::shared_ptr<ModelLoader> loader,
               std::function<void(const std::string&, int64_t, int, int64_t)> on_batch = {});
  ~ModelManager();

  // One pass over the repository. Returns what changed, for the log.
  std::vector<std::string> poll();
  // poll() every `interval` in a thread until destroyed.
  void startPolling(std::chrono::milliseconds interval);

  // The version to serve: explicit, by label, or the latest available.
  // Throws std::out_of_range with a message naming what is missing.
  std::shared_ptr<ServedVersion> find(const std::string& model, std::optional<int64_t> version,
                                      const std::optional<std::string>& label) const;
  std::vector<std::string> models() const;
  std::vector<VersionStatus> status(const std::string& model) const;  // throws std::out_of_range
  std::vector<int64_t> versions(const std::string& model) const;      // available, ascending
  bool ready() const;  // every model has an available version

 private:
  struct Entry {
    std::map<int64_t, std::shared_ptr<ServedVersion>> live;
    std::map<int64_t, VersionStatus> status;
    std::map<int64_t, std::filesystem::file_time_type> failed;  // not retried until the file changes
    std::map<std::string, int64_t> labels;
  };
  std::shared_ptr<ServedVersion> loadVersion(const std::string& model, int64_t version, const ModelConfig& config,
                                             const std::filesystem::path& file);

  std::string repo_;
  std::shared_ptr<ModelLoader> loader_;
  std::function<void(const std::string&, int64_t, int, int64_t)> on_batch_;
  mutable std::mutex mu_;  // guards models_ (the table), never held while loading
  std::map<std::string, Entry> models_;
  std::mutex poll_mu_;     // one poll at a time
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::condition_variable stop_cv_;
  std::mutex stop_mu_;
};

}  // namespace trainyard::serving
