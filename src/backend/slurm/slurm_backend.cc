#include "backend/slurm/slurm_backend.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <fmt/format.h>

#include "backend/byte_cursor.h"
#include "backend/slurm/batch.h"
#include "backend/slurm/slurm_state.h"
#include "backend/supervisor.h"
#include "util/command.h"
#include "util/files.h"

namespace trainyard::backend {
namespace {
namespace fs = std::filesystem;
using slurm::SlurmJob;
using Clock = std::chrono::steady_clock;

std::string firstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "(no message)" : line;
}

// Errors that a later try may not meet: the controller busy or away.
bool transientError(const std::string& err) {
  for (const char* s : {"Socket timed out", "Unable to contact", "Resource temporarily unavailable", "try again",
                        "Zero Bytes were transmitted", "Connection refused", "no answer within"})
    if (err.find(s) != std::string::npos) return true;
  return false;
}

// The last line of a small text file (at most its last 4 KiB), "" when none.
std::string lastLine(const std::string& path) {
  std::string text = util::readTail(path, 4096);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.substr(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
}

class SlurmBackend final : public Backend {
 public:
  explicit SlurmBackend(const SlurmOptions& o) : o_(o) {
    if (o_.log_root.empty()) throw std::runtime_error("the slurm backend needs a log directory the nodes share");
    if (std::string why = refresh(); !why.empty()) throw std::runtime_error(why);
  }

  std::string name() const override { return "slurm"; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.places_replicas = true;       // Slurm picks the nodes
    c.peers_before_launch = false;  // so peers' addresses are bound on the node
    c.queues_jobs = true;           // pending in Slurm's queue is waiting, however long
    c.survives_restart = true;      // jobs are Slurm's; a restarted server finds them by name
    return c;
  }

  std::vector<sched::Node> capacity() override {
    auto r = util::runCommand({"sinfo", "--json"}, std::chrono::seconds(30));
    try {
      if (r.ok()) nodes_ = slurm::parseSinfo(r.out, o_.partition);
    } catch (const std::exception&) {
      // Not sinfo's JSON: the nodes as last seen.
    }
    return nodes_;
  }

  std::vector<Endpoint> resolvePeers(const PlacedJob& job) override {
    std::vector<Endpoint> out;
    for (size_t i = 0; i < job.replicas.size(); ++i) out.push_back({latePeerHost(i), fixedPeerPort(job.uid, i)});
    return out;
  }

  void launch(const PlacedJob& placed) override {
    auto it = jobs_.find(placed.uid);
    if (it != jobs_.end() && it->second.attempt == placed.attempt && !it->second.id.empty()) return;  // launched already
    // Slurm runs processes on the nodes, which see the shared file system
    // as it is: a directory of a replica's own at some path (a trial's
    // private metrics path, a PBT checkpoint directory) cannot be given, and
    // must never be silently shared between trials.
    for (const auto& r : placed.replicas) {
      std::string at = !r.private_mounts.empty() ? r.private_mounts[0].mount_path : "";
      for (const auto& m : r.mounts)
        if (at.empty() && m.host_path != m.mount_path) at = m.mount_path;
      if (!at.empty())
        throw BackendError(fmt::format("replica {}: a directory of its own at {} needs a mount, which Slurm's processes do not "
                                       "get; use a path inside the working directory or outputs (TRAINYARD_OUTPUT_DIR), or "
                                       "the local or Kubernetes backend",
                                       r.name, at),
                           false);
    }
    std::string log_dir = (fs::path(o_.log_root) / placed.uid).string();
    Tracked t;
    t.attempt = placed.attempt;
    t.log_dir = log_dir;
    for (const auto& r : placed.replicas) {
      if (!r.run) continue;  // an MPI worker: slots of the allocation, not a process
      t.replicas.push_back(r.name);
      t.programs.push_back(r.argv.empty() ? "" : r.argv[0]);
    }
    // Submitted already by a process that died before it could say so (in
    // Slurm's queue since before this process started, so in the last
    // squeue: not asked again for every launch).
    if (auto* found = queued(slurm::slurmJobName(placed.uid, placed.attempt))) {
      t.id = found->id;
      jobs_[placed.uid] = t;
      return;
    }
    PlacedJob job = placed;
    std::error_code ec;
    fs::create_directories(log_dir, ec);
    if (ec) throw BackendError(fmt::format("cannot create {}: {}", log_dir, ec.message()), false);
    // The job's user writes its logs and exit records there (on the nodes,
    // the whole job runs as that user): its own directory, reached through
    // a log root it may traverse but not list.
    if (o_.run_uid >= 0) {
      fs::permissions(o_.log_root, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec, ec);
      if (chown(log_dir.c_str(), static_cast<uid_t>(o_.run_uid), static_cast<gid_t>(o_.run_gid)) != 0)
        throw BackendError(fmt::format("cannot hand {} to the job's user: {}", log_dir, std::strerror(errno)), false);
    }
    if (!job.files.empty()) {
      std::string config = fmt::format("{}/config-{}", log_dir, job.attempt);
      fs::create_directories(config, ec);
      for (const auto& f : job.files) std::ofstream(fs::path(config) / f.name, std::ios::trunc) << f.content;
      for (auto& r : job.replicas) r.env.insert(r.env.begin(), {"TRAINYARD_CONFIG_DIR", config});
    }
    std::string plan = slurm::planFile(log_dir, job.attempt), script = slurm::scriptFile(log_dir, job.attempt);
    std::ofstream(plan, std::ios::trunc) << slurm::planFor(job, log_dir, o_.trainyard).dump(2) << "\n";
    std::ofstream(script, std::ios::trunc) << slurm::batchScript(o_.trainyard, plan);
    for (const auto& r : job.replicas) {  // a new attempt starts with no record of an old one
      if (!r.run) continue;
      std::string log = fmt::format("{}/{}", log_dir, logFileName(r.name, job.attempt));
      fs::remove(exitStatusFile(log), ec);
      fs::remove(slurm::startedFile(log), ec);
    }
    std::vector<std::string> argv = {"sbatch"};
    for (auto& a : slurm::sbatchArgs(job, o_, log_dir, script)) argv.push_back(std::move(a));
    auto r = util::runCommand(argv, std::chrono::seconds(60));
    if (!r.ok()) {
      std::string err = r.err.empty() ? r.out : r.err;
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      throw BackendError("sbatch: " + (err.empty() ? "failed" : err), transientError(err));
    }
    t.id = firstLine(r.out).substr(0, firstLine(r.out).find(';'));  // "1234" or "1234;cluster"
    jobs_[placed.uid] = t;
  }

  void stop(const std::string& uid, std::chrono::milliseconds grace) override {
    auto it = jobs_.find(uid);
    if (it == jobs_.end() || it->second.id.empty()) return;
    Tracked& t = it->second;
    const std::string name = slurm::slurmJobName(uid, t.attempt);
    // Pending at the last pass: its state now (a job started since gets its grace).
    if (!queued(name) || queued(name)->state == "PENDING") refresh();
    const SlurmJob* job = queued(name);
    bool running = job && job->state != "PENDING";
    if (grace.count() <= 0 || !running) {
      scancel(t, {});  // nothing runs yet, or no grace: Slurm's own TERM, then KILL after its KillWait
      t.kill_at = Clock::now();
      t.killed = true;
    } else {
      // The replicas' processes get SIGTERM (their supervisors ignore it and
      // record how the command ended); SIGKILL once the grace is over.
      scancel(t, {"--signal=TERM"});
      t.kill_at = Clock::now() + grace;
    }
    t.stopping = true;
  }

  std::vector<ReplicaStatus> observe(const std::string& uid) override {
    auto all = observeAll();
    auto it = all.find(uid);
    return it == all.end() ? std::vector<ReplicaStatus>{} : it->second;
  }

  std::map<std::string, std::vector<ReplicaStatus>> observeAll() override {
    if (!refresh().empty()) return last_;  // the controller away for a moment: nothing changed as far as we know
    std::map<std::string, std::vector<ReplicaStatus>> out;
    for (auto& [uid, t] : jobs_) {
      const SlurmJob* job = queued(slurm::slurmJobName(uid, t.attempt));
      if (job && t.id.empty()) t.id = job->id;
      if (t.stopping && !t.killed && Clock::now() >= t.kill_at && job && slurm::isActive(job->state)) {
        scancel(t, {"--signal=KILL"});
        scancel(t, {});
        t.killed = true;
      }
      out[uid] = statuses(t, job);
      // A member that could not start: the others must not run alone.
      bool start_error = std::any_of(out[uid].begin(), out[uid].end(), [](const auto& r) { return r.reason == "StartError"; });
      if (start_error && !t.stopping) stop(uid, std::chrono::milliseconds(0));
    }
    last_ = out;
    return out;
  }

  LogChunk readLogAt(const std::string& uid, int attempt, const std::string& replica, const std::string& cursor,
                     size_t max_bytes) override {
    if (uid.find('/') != std::string::npos || uid.find("..") != std::string::npos) return {"", cursor};
    return readLocalLog(o_.log_root + "/" + uid, replica, attempt, cursor, max_bytes);
  }

  LogChunk readFileAt(const std::string&, int, const std::string&, const std::string& path, const std::string& cursor,
                      size_t max_bytes) override {
    return readReplicaFile(path, cursor, max_bytes);  // the filesystem the nodes share with this machine
  }

  std::vector<std::string> listEventFilesAt(const std::string&, int, const std::string&, const std::string& dir,
                                            size_t max) override {
    return listEventFiles(dir, max);
  }

  void waitForChange(std::chrono::milliseconds timeout) override {
    // squeue has no watch: a pass every quarter second at most (squeue
    // --json costs ~7 ms here; slurmctld answers it from memory).
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(timeout, std::chrono::milliseconds(250)));
  }

  std::vector<ReplicaStatus> reattach(const std::string& uid, int attempt, const std::vector<ReplicaStatus>& recorded) override {
    Tracked t;
    t.attempt = attempt;
    t.log_dir = (fs::path(o_.log_root) / uid).string();
    // The replicas in task order, from the plan the attempt was submitted with.
    try {
      for (const auto& task : slurm::planReplicas(slurm::readPlan(slurm::planFile(t.log_dir, attempt)))) {
        t.replicas.push_back(task.value("name", ""));
        const auto& argv = task.value("argv", nlohmann::json::array());
        t.programs.push_back(argv.empty() || !argv[0].is_string() ? "" : argv[0].get<std::string>());
      }
    } catch (const std::exception&) {
      // No plan (lost with its directory): the replicas as recorded.
    }
    if (t.replicas.empty())
      for (const auto& r : recorded) t.replicas.push_back(r.name);
    jobs_[uid] = t;
    return observe(uid);
  }

  // Nothing of a released job may go on running: a Slurm job still active
  // (released without a stop, or its stop not yet through) is cancelled.
  void release(const std::string& uid) override {
    auto it = jobs_.find(uid);
    if (it == jobs_.end()) return;
    const SlurmJob* job = queued(slurm::slurmJobName(uid, it->second.attempt));
    if (!it->second.id.empty() && (!job || slurm::isActive(job->state))) scancel(it->second, {});
    jobs_.erase(it);
  }

  std::vector<std::string> warnings() const override { return {}; }

 private:
  struct Tracked {
    int attempt = 0;
    std::string id;  // Slurm's job id
    std::string log_dir;
    std::vector<std::string> replicas;  // task order
    std::vector<std::string> programs;  // each replica's command, for messages
    bool stopping = false, killed = false;
    Clock::time_point kill_at;
  };

  // One squeue for every job; "" or why it could not be had (the last one
  // is kept then).
  std::string refresh() {
    auto r = util::runCommand(slurm::squeueCommand(), std::chrono::seconds(30));
    if (!r.ok()) return "squeue: " + firstLine(r.err);
    std::map<std::string, SlurmJob> now;
    try {
      for (auto& j : slurm::parseSqueue(r.out)) {
        auto& slot = now[j.name];
        // The same name twice (an attempt submitted again by hand): the newest.
        if (slot.id.empty() || std::stoll(j.id) > std::stoll(slot.id)) slot = std::move(j);  // ids: digits first
      }
    } catch (const std::exception& e) {
      return e.what();
    }
    queue_ = std::move(now);
    return "";
  }
  const SlurmJob* queued(const std::string& name) const {
    auto it = queue_.find(name);
    return it == queue_.end() ? nullptr : &it->second;
  }

  void scancel(const Tracked& t, std::vector<std::string> args) {
    args.insert(args.begin(), "scancel");
    args.push_back(t.id);
    util::runCommand(args, std::chrono::seconds(30));  // a job already gone is not an error
  }

  std::vector<ReplicaStatus> statuses(const Tracked& t, const SlurmJob* job) const {
    std::vector<ReplicaStatus> out;
    for (size_t i = 0; i < t.replicas.size(); ++i) {
      ReplicaStatus s;
      s.name = t.replicas[i];
      s.attempt = t.attempt;
      s.handle = fmt::format("{}/{}", t.id, i);
      s.log_ref = fmt::format("{}/{}", t.log_dir, logFileName(s.name, t.attempt));
      std::string exit_file = exitStatusFile(s.log_ref), started = slurm::startedFile(s.log_ref);
      s.started_at = util::modifiedAt(started);
      if (auto rec = readExitRecord(exit_file)) {
        s.phase = ReplicaPhase::Exited;
        s.finished_at = util::modifiedAt(exit_file);
        applyExitRecord(*rec, i < t.programs.size() ? t.programs[i] : "the command", s);
      } else if (job && slurm::isActive(job->state)) {
        if (s.started_at > 0) {
          s.phase = ReplicaPhase::Running;
        } else {
          s.phase = ReplicaPhase::Pending;
          // Slurm's why-pending (Resources, Priority, QOSMaxCpuPerUserLimit...).
          s.reason = job->state == "PENDING" ? (job->reason == "None" ? "Queued" : job->reason) : "Starting";
          s.message = fmt::format("Slurm job {} is {}", job->id, job->state);
        }
      } else {
        slurm::endedWithoutRecord(job, s);
        // Never started: what the batch step said is why (an srun or exec error).
        if (s.started_at == 0)
          if (std::string said = lastLine(slurm::batchOutputFile(t.log_dir, t.attempt)); !said.empty())
            s.message += ": " + said;
        if (t.stopping && s.reason == "Signaled") s.signal = t.killed ? SIGKILL : SIGTERM;
        s.finished_at = job && job->end > 0 ? job->end : 0;
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  SlurmOptions o_;
  std::map<std::string, Tracked> jobs_;
  std::map<std::string, SlurmJob> queue_;  // this pass's squeue, by job name
  std::map<std::string, std::vector<ReplicaStatus>> last_;
  std::vector<sched::Node> nodes_;
};

}  // namespace

std::unique_ptr<Backend> makeSlurmBackend(const SlurmOptions& opts) { return std::make_unique<SlurmBackend>(opts); }

}  // namespace trainyard::backend
