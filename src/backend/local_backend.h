// Local backend: each replica is a process group on this machine, its output
// in a log file, its limits in a cgroup. Stopping signals the whole group
// (then the cgroup), so grandchildren do not survive as orphans. A replica
// with an image runs `podman run` as that process (container/podman.h); its
// container is removed by name when it ends or is killed.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <map>
#include <optional>

#include "backend/backend.h"
#include "backend/cgroup.h"
#include "backend/container/podman.h"
#include "backend/supervisor.h"

namespace trainyard::backend {

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(const LocalBackendOptions& opts);
  ~LocalBackend() override;

  std::string name() const override { return "local"; }
  Capabilities capabilities() const override;
  std::vector<sched::Node> capacity() override;
  std::vector<Endpoint> resolvePeers(const PlacedJob& job) override;
  void launch(const PlacedJob& job) override;
  void stop(const std::string& uid, std::chrono::milliseconds grace) override;
  std::vector<ReplicaStatus> observe(const std::string& uid) override;
  std::map<std::string, std::vector<ReplicaStatus>> observeAll() override;
  LogChunk readLogAt(const std::string& uid, int attempt, const std::string& replica, const std::string& cursor,
                     size_t max_bytes) override;
  LogChunk readFileAt(const std::string& uid, int attempt, const std::string& replica, const std::string& path,
                      const std::string& cursor, size_t max_bytes) override;
  std::vector<std::string> listEventFilesAt(const std::string& uid, int attempt, const std::string& replica,
                                            const std::string& dir, size_t max) override;
  void waitForChange(std::chrono::milliseconds timeout) override;
  std::vector<ReplicaStatus> reattach(const std::string& uid, int attempt,
                                      const std::vector<ReplicaStatus>& recorded) override;
  void release(const std::string& uid) override;
  std::vector<std::string> warnings() const override { return warnings_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Proc {
    ReplicaStatus status;
    pid_t pid = 0;
    int pidfd = -1;
    bool adopted = false;  // not our child: watched through its pidfd, status from the supervisor's file
    std::string status_file;
    std::string program;  // argv[0], for messages
    std::string container;  // its Podman container's name, when it runs in one
    int64_t memory_limit = 0;
    bool signalled = false;  // a stop or kill of ours reached it
    Cgroups::Group cgroup;
  };
  struct Job {
    int attempt = -1;
    std::vector<Proc> procs;
    std::optional<Clock::time_point> kill_at;  // SIGKILL deadline after a stop
  };

  void spawn(const PlacedJob& job, const ReplicaLaunch& r, const std::string& config_dir, Proc& p);
  // A replica recorded (or found) from before: watched through its pidfd
  // when `handle` is still that process, its end read from its supervisor.
  Proc adopt(ReplicaStatus r, int attempt);
  // Launching (uid, attempt) twice does nothing the second time, also in
  // another process: a replica this attempt already started holds a lock
  // on `<log>.lock` for as long as it (its supervisor) lives, and leaves
  // its exit record when it ends. True when `p` is that replica, adopted.
  bool adoptStarted(Proc& p);
  void reap(Proc& p, bool block);
  void reapAdopted(Proc& p, bool block);
  void killGroup(Proc& p, int sig);
  void escalate(Job& job);
  void endContainer(Proc& p);

  LocalBackendOptions opts_;
  podman::Options podman_;
  std::string self_exe_;  // trainyard, for its __container-build step
  Cgroups cgroups_;
  std::map<std::string, Job> jobs_;
  std::vector<std::string> warnings_;
  std::vector<Cgroups::Group> to_remove_;  // groups whose killed processes had not left yet
  // uid -> log directory, for readLogAt from any thread.
  mutable std::mutex log_mu_;
  std::map<std::string, std::string> log_dirs_;
  void rememberLogDir(const std::string& uid, const std::string& dir);
  // The log directory of `uid` (its own, or under log_root); "" when unknown.
  std::string logDirOf(const std::string& uid);
};

}  // namespace trainyard::backend
