#include "backend/fake_backend.h"

#include <csignal>

#include <fmt/format.h>

#include "backend/byte_cursor.h"

namespace trainyard::backend {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void end(ReplicaStatus& s, std::optional<int> code, std::optional<int> signal, const std::string& reason,
         const std::string& message = "") {
  if (s.phase == ReplicaPhase::Exited) return;
  s.phase = ReplicaPhase::Exited;
  s.exit_code = code;
  s.signal = signal;
  s.reason = reason;
  s.message = message;
  s.finished_at = now();
}

std::string logKey(const std::string& uid, int attempt, const std::string& replica) {
  return fmt::format("{}/{}/{}", uid, attempt, replica);
}

}  // namespace

void FakeCluster::loseNode(const std::string& node) {
  std::lock_guard lk(mu_);
  for (auto& [uid, j] : jobs_)
    for (auto& r : j.replicas)
      if (r.node == node) end(r.status, std::nullopt, SIGKILL, "NodeLost", fmt::format("node {} was lost", node));
  changed_.notify_all();
}

void FakeCluster::setLogsUnavailable(bool unavailable) {
  std::lock_guard lk(mu_);
  logs_unavailable_ = unavailable;
  changed_.notify_all();
}

void FakeCluster::forget(const std::string& uid) {
  std::lock_guard lk(mu_);
  jobs_.erase(uid);
  changed_.notify_all();
}

void FakeCluster::exitReplica(const std::string& uid, const std::string& replica, int code) {
  std::lock_guard lk(mu_);
  auto it = jobs_.find(uid);
  if (it == jobs_.end()) return;
  for (auto& r : it->second.replicas)
    if (r.status.name == replica) end(r.status, code, std::nullopt, code == 0 ? "Completed" : "Error");
  changed_.notify_all();
}

void FakeCluster::advance(const std::string& uid, Job& j) {
  for (auto& r : j.replicas) {
    if (r.status.phase == ReplicaPhase::Pending && r.kill_at) end(r.status, std::nullopt, SIGTERM, "Signaled");
    if (r.status.phase != ReplicaPhase::Running) continue;
    const std::string& prog = r.argv.empty() ? "" : r.argv[0];
    if (r.kill_at) {
      if (prog != "fake:ignore-term") end(r.status, std::nullopt, SIGTERM, "Signaled");
      else if (Clock::now() >= *r.kill_at) end(r.status, std::nullopt, SIGKILL, "Signaled");
      continue;
    }
    auto code = [&](size_t i) { return r.argv.size() > i ? std::atoi(r.argv[i].c_str()) : 0; };
    if (prog == "fake:exit") end(r.status, code(1), std::nullopt, code(1) == 0 ? "Completed" : "Error");
    if (prog == "fake:print") {
      logs_[logKey(uid, r.status.attempt, r.status.name)] += r.argv.size() > 1 ? r.argv[1] : "";
      end(r.status, code(2), std::nullopt, code(2) == 0 ? "Completed" : "Error");
    }
    if (prog == "fake:write") {
      files_[logKey(uid, r.status.attempt, r.status.name) + "/" + (r.argv.size() > 1 ? r.argv[1] : "")] +=
          r.argv.size() > 2 ? r.argv[2] : "";
      end(r.status, code(3), std::nullopt, code(3) == 0 ? "Completed" : "Error");
    }
  }
}

Capabilities FakeBackend::capabilities() const {
  Capabilities c;
  c.enforces_memory = true;
  c.runs_images = true;
  c.survives_restart = true;
  c.queues_jobs = c_->queues_jobs_;
  return c;
}

std::vector<sched::Node> FakeBackend::capacity() {
  std::lock_guard lk(c_->mu_);
  return c_->nodes_;
}

std::vector<Endpoint> FakeBackend::resolvePeers(const PlacedJob& job) {
  std::vector<Endpoint> out;
  for (size_t i = 0; i < job.replicas.size(); ++i)
    out.push_back({job.replicas[i].node.empty() ? "fake-node" : job.replicas[i].node, static_cast<int>(20000 + i)});
  return out;
}

void FakeBackend::launch(const PlacedJob& job) {
  std::lock_guard lk(c_->mu_);
  mine_.insert(job.uid);
  auto& j = c_->jobs_[job.uid];
  if (j.attempt == job.attempt) return;  // idempotent
  for (auto& r : j.replicas) end(r.status, std::nullopt, SIGKILL, "Signaled");
  j = FakeCluster::Job{};
  j.attempt = job.attempt;
  bool failed = false;
  for (const auto& rl : job.replicas) {
    if (!rl.run) continue;
    FakeCluster::Replica r;
    r.argv = rl.argv;
    r.node = rl.node;
    r.status.name = rl.name;
    r.status.attempt = job.attempt;
    r.status.phase = ReplicaPhase::Running;
    r.status.handle = fmt::format("fake-{}", c_->next_handle_++);
    r.status.started_at = now();
    r.status.log_ref = fmt::format("fake:{}", logKey(job.uid, job.attempt, rl.name));  // logs live in the cluster
    if (!r.argv.empty() && r.argv[0] == "fake:ignore-term") c_->logs_[logKey(job.uid, job.attempt, rl.name)] += "ready\n";
    if (!r.argv.empty() && r.argv[0] == "fake:pending") {
      r.status.phase = ReplicaPhase::Pending;
      r.status.reason = r.argv.size() > 1 ? r.argv[1] : "Pending";
      r.status.message = r.argv.size() > 2 ? r.argv[2] : "";
    } else if (r.argv.empty() || r.argv[0].rfind("fake:", 0) != 0) {
      end(r.status, 127, std::nullopt, "StartError",
          fmt::format("cannot execute {}: No such file or directory", r.argv.empty() ? "(nothing)" : r.argv[0]));
      failed = true;
    }
    j.replicas.push_back(std::move(r));
  }
  // Gang: none runs alone.
  if (failed)
    for (auto& r : j.replicas) end(r.status, std::nullopt, SIGKILL, "Signaled");
  c_->changed_.notify_all();
}

void FakeBackend::stop(const std::string& uid, std::chrono::milliseconds grace) {
  std::lock_guard lk(c_->mu_);
  auto it = c_->jobs_.find(uid);
  if (it == c_->jobs_.end()) return;
  for (auto& r : it->second.replicas)
    if (!r.kill_at) r.kill_at = FakeCluster::Clock::now() + grace;
  c_->changed_.notify_all();
}

std::vector<ReplicaStatus> FakeBackend::observe(const std::string& uid) {
  std::lock_guard lk(c_->mu_);
  auto it = c_->jobs_.find(uid);
  if (it == c_->jobs_.end()) return {};
  c_->advance(uid, it->second);
  std::vector<ReplicaStatus> out;
  for (const auto& r : it->second.replicas) out.push_back(r.status);
  return out;
}

std::map<std::string, std::vector<ReplicaStatus>> FakeBackend::observeAll() {
  std::map<std::string, std::vector<ReplicaStatus>> out;
  for (const auto& uid : mine_) {
    auto s = observe(uid);
    if (!s.empty()) out[uid] = std::move(s);
  }
  return out;
}

namespace {
LogChunk readAt(const std::map<std::string, std::string>& streams, const std::string& key, const std::string& cursor,
                size_t max_bytes) {
  auto it = streams.find(key);
  size_t size = it == streams.end() ? 0 : it->second.size();
  auto offset = cursorOffset(cursor, size, "f");
  if (!offset) return {"", cursor};
  if (*offset >= size) return {"", offsetCursor(*offset, "f")};
  std::string bytes = it->second.substr(*offset, max_bytes);
  return {bytes, offsetCursor(*offset + bytes.size(), "f")};
}
}  // namespace

LogChunk FakeBackend::readLogAt(const std::string& uid, int attempt, const std::string& replica,
                                const std::string& cursor, size_t max_bytes) {
  std::lock_guard lk(c_->mu_);
  if (c_->logs_unavailable_) return {"", cursor, true};
  return readAt(c_->logs_, logKey(uid, attempt, replica), cursor, max_bytes);
}

LogChunk FakeBackend::readFileAt(const std::string& uid, int attempt, const std::string& replica,
                                 const std::string& path, const std::string& cursor, size_t max_bytes) {
  std::lock_guard lk(c_->mu_);
  return readAt(c_->files_, logKey(uid, attempt, replica) + "/" + path, cursor, max_bytes);
}

void FakeBackend::waitForChange(std::chrono::milliseconds timeout) {
  std::unique_lock lk(c_->mu_);
  c_->changed_.wait_for(lk, std::min(timeout, std::chrono::milliseconds(20)));
}

std::vector<ReplicaStatus> FakeBackend::reattach(const std::string& uid, int attempt,
                                                 const std::vector<ReplicaStatus>& recorded) {
  std::lock_guard lk(c_->mu_);
  mine_.insert(uid);
  auto it = c_->jobs_.find(uid);
  std::vector<ReplicaStatus> out;
  if (it != c_->jobs_.end() && it->second.attempt == attempt) {
    for (const auto& r : it->second.replicas) out.push_back(r.status);
    return out;
  }
  for (auto r : recorded) {  // nothing left of it: lost
    end(r, std::nullopt, SIGKILL, "Lost", "the cluster no longer knows this replica");
    out.push_back(r);
  }
  return out;
}

void FakeBackend::release(const std::string& uid) {
  std::lock_guard lk(c_->mu_);
  mine_.erase(uid);
  c_->jobs_.erase(uid);
}

}  // namespace trainyard::backend
