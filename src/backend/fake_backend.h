// An in-memory backend for tests and simulations: replicas are scripted,
// not executed, and live in a FakeCluster that outlives the backends
// attached to it (as a Kubernetes API server outlives a controller), so
// re-attaching after a restart, node loss and vanishing replicas can be
// tested exactly. It passes the same conformance suite as every backend
// (tests/unit/backend_conformance_test.cc).
//
// A replica's argv is its script (cursors are "f<offset>", so a caller that
// takes them for byte offsets fails here):
//   fake:exit N          ends with exit code N at the next observation
//   fake:print TEXT N    writes TEXT to its log, then ends with N
//   fake:write PATH TEXT N  writes TEXT to its file PATH (read by readFileAt), then ends with N
//   fake:run             runs until stopped (SIGTERM ends it at once)
//   fake:ignore-term     writes "ready\n", runs until stopped; only the SIGKILL after the grace ends it
//   fake:pending R M     never starts: Pending with reason R and message M (an image that cannot be pulled)
//   anything else        cannot start: Exited, reason StartError, exit code 127
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace trainyard::backend {

class FakeCluster {
 public:
  explicit FakeCluster(std::vector<sched::Node> nodes) : nodes_(std::move(nodes)) {}

  // Test controls. A lost node's replicas end with signal 9, reason NodeLost.
  void loseNode(const std::string& node);
  // The cluster forgets a job (its record deleted behind the controller's back).
  void forget(const std::string& uid);
  // Ends a running replica with `code`.
  void exitReplica(const std::string& uid, const std::string& replica, int code);
  // Logs cannot be read for now (LogChunk::unavailable), as when a node's agent is away.
  void setLogsUnavailable(bool unavailable);
  // The backend says it queues jobs itself (Capabilities::queues_jobs), as a batch system does.
  void setQueuesJobs(bool queues) { queues_jobs_ = queues; }

 private:
  friend class FakeBackend;
  using Clock = std::chrono::steady_clock;
  struct Replica {
    ReplicaStatus status;
    std::vector<std::string> argv;
    std::string node;
    std::optional<Clock::time_point> kill_at;  // stopping: SIGKILL then
  };
  struct Job {
    int attempt = -1;
    std::vector<Replica> replicas;
  };
  void advance(const std::string& uid, Job& j);  // applies scripts and deadlines
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<sched::Node> nodes_;
  std::map<std::string, Job> jobs_;
  std::map<std::string, std::string> logs_;   // "uid/attempt/replica" -> bytes
  std::map<std::string, std::string> files_;  // "uid/attempt/replica/path" -> bytes
  int64_t next_handle_ = 1000;
  bool logs_unavailable_ = false;
  std::atomic<bool> queues_jobs_{false};
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(std::shared_ptr<FakeCluster> cluster) : c_(std::move(cluster)) {}

  std::string name() const override { return "fake"; }
  Capabilities capabilities() const override;
  std::vector<sched::Node> capacity() override;
  std::vector<Endpoint> resolvePeers(const PlacedJob& job) override;
  void launch(const PlacedJob& job) override;
  void stop(const std::string& uid, std::chrono::milliseconds grace) override;
  std::vector<ReplicaStatus> observe(const std::string& uid) override;
  std::map<std::string, std::vector<ReplicaStatus>> observeAll() override;
  LogChunk readFileAt(const std::string& uid, int attempt, const std::string& replica, const std::string& path,
                      const std::string& cursor, size_t max_bytes) override;
  LogChunk readLogAt(const std::string& uid, int attempt, const std::string& replica, const std::string& cursor,
                     size_t max_bytes) override;
  void waitForChange(std::chrono::milliseconds timeout) override;
  std::vector<ReplicaStatus> reattach(const std::string& uid, int attempt,
                                      const std::vector<ReplicaStatus>& recorded) override;
  void release(const std::string& uid) override;
  std::vector<std::string> warnings() const override { return {}; }

 private:
  std::shared_ptr<FakeCluster> c_;
  std::set<std::string> mine_;  // jobs this backend launched or re-attached
};

}  // namespace trainyard::backend
