// The long-lived reconcile loop of `trainyard server`: one thread owns the
// backend and drives every job and experiment in the store that no other
// live process drives. On start it first takes over what a previous server
// left running (re-attaching live replicas), so a server killed at any
// instant and started again loses and duplicates nothing.
//
// Other threads (HTTP handlers) only write desired state to the store
// (submit, cancel) and call wake(); they read status() for node usage.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "control/job_controller.h"
#include "sched/resources.h"
#include "store/store.h"

namespace trainyard::control {

struct ControlPlaneStatus {
  std::vector<sched::Node> nodes;
  std::map<std::string, sched::Resources> used;  // per node
  std::map<std::string, int> jobs_by_phase;       // active jobs
  int queued = 0;
  std::vector<std::string> warnings;
};

struct ControlPlaneHooks {
  // A job left Queued: seconds it waited (created -> started).
  std::function<void(double)> on_admitted;
  // One reconcile pass took this long (seconds).
  std::function<void(double)> on_pass;
};

class ControlPlane {
 public:
  // `make_backend` runs on the loop's thread, which alone uses the backend.
  ControlPlane(std::string store_location, ControllerOptions opts, backend::BackendFactory make_backend,
               ControlPlaneHooks hooks = {});
  ~ControlPlane();  // stops the loop; replicas keep running (a restart re-attaches them)

  // Takes over the previous server's work, then runs the loop in a thread.
  // Throws when the store cannot be opened.
  void start();
  void stop();
  // Desired state changed: run a pass now.
  void wake();
  ControlPlaneStatus status() const;
  // A replica's log through the backend's log source (backend::Backend::readLogAt),
  // from any thread; nothing while the loop is not running.
  std::optional<backend::LogChunk> readLog(const std::string& uid, int attempt, const std::string& replica,
                                           const std::string& cursor, size_t max_bytes) const;
  const ControllerOptions& options() const { return opts_; }

 private:
  void run(const std::function<void()>& ready);
  std::string location_;
  ControllerOptions opts_;
  backend::BackendFactory make_backend_;
  ControlPlaneHooks hooks_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;
  ControlPlaneStatus status_;
  std::shared_ptr<backend::Backend> backend_;  // the loop's, shared for readLog (guarded by mu_)
};

}  // namespace trainyard::control
