#include "backend/local_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include "backend/byte_cursor.h"
#include "backend/container/podman.h"
#include "backend/node_probe.h"
#include "backend/supervisor.h"
#include "util/command.h"
#include "util/proc.h"
#include "util/env.h"
#include "util/files.h"

extern char** environ;

namespace trainyard::backend {
namespace {

double wallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// What a failed child reports back through the exec pipe before _exit(127).
struct ExecFailure {
  int stage;  // 0 = chdir, 1 = exec, 2 = log file, 3 = user switch, 4 = private mount
  int err;
};

// What a process replica (no container) sees at paths of its own: its
// private directories, and volumes mounted somewhere else than where they
// are (a PBT trial's checkpoint directory). Same-path volumes are the node's
// file system as it is.
std::vector<Mount> processMounts(const ReplicaLaunch& r) {
  std::vector<Mount> out = r.private_mounts;
  for (const auto& m : r.mounts)
    if (m.host_path != m.mount_path) out.push_back(m);
  return out;
}

std::vector<std::string> mergedEnv(const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto key = kv.substr(0, kv.find('='));
    bool overridden = std::any_of(extra.begin(), extra.end(), [&](const auto& p) { return p.first == key; });
    if (!overridden) out.emplace_back(kv);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

// Limits that cannot be enforced are reported per job by spawn(), when a
// job actually asks for one.
LocalBackend::LocalBackend(const LocalBackendOptions& opts) : opts_(opts) {
  std::error_code ec;
  self_exe_ = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (!opts_.podman.empty()) {
    podman_ = podman::optionsForThisMachine(opts_.podman);
    podman_.run_uid = opts_.run_uid, podman_.run_gid = opts_.run_gid, podman_.run_groups = opts_.run_groups;
  }
}

LocalBackend::~LocalBackend() {
  // Replicas never outlive a backend that was told to tie them to this process.
  if (opts_.tie_to_parent)
    for (auto& [uid, job] : jobs_)
      for (auto& p : job.procs)
        if (p.status.phase != ReplicaPhase::Exited) {
          killGroup(p, SIGKILL);
          reap(p, true);
        }
  // Killed processes leave their cgroup within milliseconds; give them a few.
  for (int i = 0; i < 50 && !to_remove_.empty(); ++i) {
    std::erase_if(to_remove_, [&](const Cgroups::Group& g) { return cgroups_.remove(g); });
    if (!to_remove_.empty()) usleep(2000);
  }
}

std::vector<sched::Node> LocalBackend::capacity() { return virtualNodes(probeLocalNode(), opts_.nodes); }

namespace {
// The kernel's ephemeral range: ports it hands to outgoing connections and to
// bind(0). A port chosen there could be taken by some client socket before
// the replica binds it, so peers get ports from below that range.
std::pair<int, int> ephemeralRange() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 32768, hi = 60999;
  in >> lo >> hi;
  return {lo, hi};
}

bool bindable(int port, int& fd_out) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return false;
  }
  fd_out = fd;
  return true;
}
}  // namespace

std::vector<Endpoint> LocalBackend::resolvePeers(const PlacedJob& job) {
  auto [eph_lo, eph_hi] = ephemeralRange();
  int lo = 10000, hi = std::max(lo + 1000, eph_lo) - 1;
  std::mt19937 rng(std::random_device{}());
  std::vector<Endpoint> out;
  std::vector<int> held;  // keep each port bound until all are chosen, so they differ
  for (size_t i = 0; i < job.replicas.size(); ++i) {
    int fd = -1, port = 0;
    for (int tries = 0; tries < 200 && fd < 0; ++tries) {
      port = std::uniform_int_distribution<int>(lo, hi)(rng);
      bindable(port, fd);
    }
    if (fd < 0) {
      for (int h : held) close(h);
      throw BackendError(fmt::format("cannot find a free port on 127.0.0.1 in [{}, {}]", lo, hi), true);
    }
    held.push_back(fd);
    out.push_back({"127.0.0.1", port});
  }
  for (int h : held) close(h);
  return out;
}

Capabilities LocalBackend::capabilities() const {
  Capabilities c;
  c.enforces_memory = cgroups_.mode() != Cgroups::Mode::None;
  c.survives_restart = !opts_.supervisor.empty();
  return c;
}

void LocalBackend::rememberLogDir(const std::string& uid, const std::string& dir) {
  std::lock_guard lk(log_mu_);
  log_dirs_[uid] = dir;
}

LogChunk LocalBackend::readLogAt(const std::string& uid, int attempt, const std::string& replica,
                                 const std::string& cursor, size_t max_bytes) {
  // Names (uid: hex; replica: role-index) are checked before they reach the file system.
  auto plain = [](const std::string& s) {
    return !s.empty() && s.size() < 128 &&
           std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
  };
  if (!plain(uid) || !plain(replica) || attempt < 0) return {"", cursor};
  std::string dir = logDirOf(uid);
  if (dir.empty()) return {"", cursor};
  return readLocalLog(dir, replica, attempt, cursor, max_bytes);
}

std::string LocalBackend::logDirOf(const std::string& uid) {
  std::lock_guard lk(log_mu_);
  auto it = log_dirs_.find(uid);
  if (it != log_dirs_.end()) return it->second;
  if (!opts_.log_root.empty() && uid.find('/') == std::string::npos && uid.find("..") == std::string::npos)
    return (std::filesystem::path(opts_.log_root) / uid).string();
  return "";
}

LogChunk LocalBackend::readFileAt(const std::string& uid, int, const std::string&, const std::string& path,
                                  const std::string& cursor, size_t max_bytes) {
  // Replicas run on this machine and see its file system as it is, but for
  // their own directories (private_mounts), kept under the job's log
  // directory at the path they see: read there when it is there.
  std::string dir = logDirOf(uid);
  if (!dir.empty() && !path.empty() && path[0] == '/' && path.find("..") == std::string::npos) {
    std::filesystem::path own = std::filesystem::path(dir) / "private" / std::filesystem::path(path).relative_path();
    struct stat st {};
    if (lstat(own.parent_path().c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return readReplicaFile(own.string(), cursor, max_bytes);
  }
  return readReplicaFile(path, cursor, max_bytes);
}

std::vector<std::string> LocalBackend::listEventFilesAt(const std::string& uid, int, const std::string&, const std::string& dir,
                                                       size_t max) {
  // As readFileAt: a replica's own directory (private_mounts) is under the
  // job's log directory; the paths returned are as the replica sees them.
  std::string log_dir = logDirOf(uid);
  if (!log_dir.empty() && !dir.empty() && dir[0] == '/' && dir.find("..") == std::string::npos) {
    std::filesystem::path own = std::filesystem::path(log_dir) / "private" / std::filesystem::path(dir).relative_path();
    struct stat st {};
    if (lstat(own.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      std::vector<std::string> out;
      for (const auto& f : listEventFiles(own.string(), max))
        out.push_back((std::filesystem::path(dir) / std::filesystem::path(f).lexically_relative(own)).lexically_normal().string());
      return out;
    }
  }
  return listEventFiles(dir, max);
}

std::map<std::string, std::vector<ReplicaStatus>> LocalBackend::observeAll() {
  std::map<std::string, std::vector<ReplicaStatus>> out;
  std::vector<std::string> uids;
  for (const auto& [uid, j] : jobs_) uids.push_back(uid);
  for (const auto& uid : uids) out[uid] = observe(uid);
  return out;
}

void LocalBackend::launch(const PlacedJob& job) {
  for (const auto& r : job.replicas)
    if (r.run && r.image_entrypoint && (r.image.empty() || opts_.podman.empty()))
      throw BackendError(fmt::format("replica {}: no command, and the image's entrypoint runs only in a container "
                                     "(--containers podman; Podman installed): give the spec a command",
                                     r.name),
                         false);
  Job& j = jobs_[job.uid];
  if (j.attempt == job.attempt) return;  // idempotent
  // spec.build: the image is tagged by its context's content, hashed now
  // (the build itself runs in the replica's own process: it may take minutes).
  std::map<std::string, std::string> built;
  for (const auto& r : job.replicas) {
    if (r.build_context.empty() || !r.run || built.count(r.build_context)) continue;
    if (opts_.podman.empty())
      throw BackendError(fmt::format("replica {}: spec.build needs Podman (--containers podman, and podman installed)", r.name),
                         false);
    try {
      built[r.build_context] = podman::contextHash(r.build_context);
    } catch (const std::exception& e) {
      throw BackendError(e.what(), false);
    }
  }
  rememberLogDir(job.uid, job.log_dir);
  for (auto& p : j.procs)
    if (p.status.phase != ReplicaPhase::Exited) {
      killGroup(p, SIGKILL);
      reap(p, true);
    }
  j = Job{};
  j.attempt = job.attempt;
  std::filesystem::create_directories(job.log_dir);
  // The job's user reaches its config files inside, without listing it.
  if (opts_.run_uid >= 0) chmod(job.log_dir.c_str(), 0711);
  // A replica's own directories (private_mounts): made now, the job's user's.
  for (const auto& r : job.replicas)
    for (const auto& m : r.private_mounts) {
      std::error_code ec;
      std::filesystem::create_directories(m.host_path, ec);
      if (ec) throw BackendError(fmt::format("cannot create {}: {}", m.host_path, ec.message()), false);
      if (opts_.run_uid >= 0) {
        // Every level below the log directory, so the user can write where it sees m.mount_path.
        for (std::filesystem::path p = m.host_path; p.string().size() > job.log_dir.size(); p = p.parent_path())
          if (chown(p.c_str(), opts_.run_uid, opts_.run_gid) != 0) break;
      }
      if (!r.image.empty() && !opts_.podman.empty()) continue;  // a container's volume: no mount point on the host
      if (m.mount_path == "/" || m.mount_path.empty())
        throw BackendError(fmt::format("replica {}: a file directly under / cannot have a directory of its own "
                                       "(give the metrics file a directory, e.g. /katib/metrics.json)",
                                       r.name),
                           false);
      std::filesystem::create_directories(m.mount_path, ec);  // the mount point on this machine (empty)
    }
  for (const auto& r : job.replicas) {
    if (!r.image.empty() && !opts_.podman.empty()) continue;
    for (const auto& m : r.mounts)
      if (m.host_path != m.mount_path) {
        std::error_code ec;
        if (!std::filesystem::exists(m.host_path, ec))
          throw BackendError(fmt::format("replica {}: volume {} does not exist", r.name, m.host_path), false);
        std::filesystem::create_directories(m.mount_path, ec);  // the mount point on this machine
      }
  }
  std::string config_dir;
  if (!job.files.empty()) {
    config_dir = (std::filesystem::path(job.log_dir) / fmt::format("config.attempt-{}", job.attempt)).string();
    std::filesystem::create_directories(config_dir);
    if (opts_.run_uid >= 0 && chown(config_dir.c_str(), opts_.run_uid, opts_.run_gid) != 0)
      throw BackendError(fmt::format("cannot hand {} to user {}: {}", config_dir, opts_.run_user, std::strerror(errno)), false);
    for (const auto& f : job.files) {
      std::ofstream out(std::filesystem::path(config_dir) / f.name, std::ios::trunc);
      out << f.content;
      if (!out) throw BackendError(fmt::format("cannot write {}/{}", config_dir, f.name), true);
    }
  }
  for (const auto& r : job.replicas) {
    if (!r.run) continue;
    j.procs.emplace_back();
    if (r.build_context.empty()) {
      spawn(job, r, config_dir, j.procs.back());
    } else {
      ReplicaLaunch b = r;
      b.image = podman::builtImage(r.image, built.at(r.build_context));
      spawn(job, b, config_dir, j.procs.back());
    }
  }
  // Gang semantics: if one replica could not start, the others must not run alone.
  // (A replica adopted from an earlier start may have ended well meanwhile.)
  bool failed = std::any_of(j.procs.begin(), j.procs.end(), [](const Proc& p) { return p.status.reason == "StartError"; });
  if (failed)
    for (auto& p : j.procs)
      if (p.status.phase != ReplicaPhase::Exited) killGroup(p, SIGKILL);
}

void LocalBackend::spawn(const PlacedJob& job, const ReplicaLaunch& r, const std::string& config_dir, Proc& p) {
  p.status.name = r.name;
  p.status.attempt = job.attempt;
  p.program = r.argv.empty() ? "" : r.argv[0];
  p.status.log_ref = (std::filesystem::path(job.log_dir) / logFileName(r.name, job.attempt)).string();

  // In a container, Podman enforces the limits on the container; the
  // cgroup here holds only `podman run`.
  bool contained = !r.image.empty() && !opts_.podman.empty();
  if (contained) p.container = podman::containerName(job.uid, r.name, job.attempt);
  // A controller that died between starting this replica and recording it
  // must not get it twice (two processes, one log, every metric twice).
  if (adoptStarted(p)) return;
  if (!r.image.empty() && !contained) {
    std::string w = fmt::format("replicas run on this machine, not in their images ({}): --containers host, or no podman "
                                "installed",
                                r.image);
    if (std::find(warnings_.begin(), warnings_.end(), w) == warnings_.end()) warnings_.push_back(w);
  }
  std::string warning;
  p.cgroup = cgroups_.create(fmt::format("{}-{}-{}", job.uid, r.name, job.attempt), contained ? 0 : r.resources.memory_bytes,
                             opts_.cpu_quota && !contained ? r.resources.cpu_millis : 0, warning);
  if (!warning.empty() && std::find(warnings_.begin(), warnings_.end(), warning) == warnings_.end())
    warnings_.push_back(warning);

  // Everything the child needs is built before fork: after it only
  // async-signal-safe calls are allowed.
  auto extra = r.env;
  if (!config_dir.empty()) extra.emplace_back("TRAINYARD_CONFIG_DIR", config_dir);
  if (opts_.run_uid >= 0)
    for (const auto& kv : {std::pair<std::string, std::string>{"HOME", opts_.run_home}, {"USER", opts_.run_user}, {"LOGNAME", opts_.run_user}})
      if (std::none_of(extra.begin(), extra.end(), [&](const auto& e) { return e.first == kv.first; })) extra.push_back(kv);
  for (auto& kv : extra) kv.second = util::expandVars(kv.second, extra);
  std::vector<std::string> env = mergedEnv(extra);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = r.argv;
  for (auto& a : args) a = util::expandVars(a, extra);
  if (contained) {
    ReplicaLaunch bound = r;
    bound.argv = args;
    podman::ContainerRun run{job.uid, job.attempt, &bound, {}, {}};
    for (const auto& [k, v] : extra) {
      run.env_names.push_back(k);  // the value from podman's own environment
      if (k == "TRAINYARD_OUTPUT_DIR" && !v.empty()) run.mounts.push_back({v, v, false});
      if (k == "TRAINYARD_CONFIG_DIR" && !v.empty()) run.mounts.push_back({v, v, true});
    }
    for (const auto& m : r.private_mounts) run.mounts.push_back(m);  // its own, as a pod's
    args = podman::runArgs(podman_, run);
    if (!r.build_context.empty()) {  // built first, by this replica's own process (podman.h)
      std::vector<std::string> step = {self_exe_, "__container-build", r.image, r.build_context, r.build_file, "--"};
      args.insert(args.begin(), step.begin(), step.end());
    }
    p.memory_limit = r.resources.memory_bytes;
  }
  if (!opts_.supervisor.empty()) {
    p.status_file = exitStatusFile(p.status.log_ref);
    std::filesystem::remove(p.status_file);
    std::vector<std::string> sup{opts_.supervisor, "__supervise", p.status_file};
    if (opts_.run_uid >= 0 && !contained) {  // the supervisor stays privileged to write the status; its child switches
      // (a container's podman runs privileged and starts the container as the user: podman::runArgs)
      std::string groups;
      for (auto g : opts_.run_groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
      sup.insert(sup.end(), {"--uid", std::to_string(opts_.run_uid), "--gid", std::to_string(opts_.run_gid), "--groups", groups});
    }
    sup.push_back("--");
    args.insert(args.begin(), sup.begin(), sup.end());
  }
  // Without a supervisor the child switches user itself.
  int switch_uid = opts_.supervisor.empty() && !contained ? opts_.run_uid : -1, switch_gid = opts_.run_gid;
  std::vector<gid_t> groups(opts_.run_groups.begin(), opts_.run_groups.end());
  int child_umask = opts_.child_umask;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log_path = p.status.log_ref;
  std::string lock_path = log_path + ".lock";
  std::string wd = r.working_dir;
  std::vector<std::string> procs = p.cgroup.procs_files;
  pid_t parent = getpid();
  bool tie = opts_.tie_to_parent;
  cpu_set_t pin;
  CPU_ZERO(&pin);
  bool pinned = false;
  if (opts_.pin_cpus)
    for (int c : virtualNodeCpus(r.node, opts_.nodes)) CPU_SET(c, &pin), pinned = true;

  // A process's own directories: bind mounts in a mount namespace of its
  // own, made in the child before it drops privileges (root only).
  std::vector<std::pair<std::string, std::string>> own_mounts;
  if (!contained)
    for (const auto& m : processMounts(r)) own_mounts.emplace_back(m.host_path, m.mount_path);

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    throw std::runtime_error(fmt::format("fork: {}", std::strerror(err)));
  }
  if (pid == 0) {
    close(pipefd[0]);
    setpgid(0, 0);
    if (tie) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
    }
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD, SIGHUP, SIGQUIT}) signal(s, SIG_DFL);
    for (const auto& f : procs) {
      int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        (void)!write(fd, "0", 1);
        close(fd);
      }
    }
    auto fail = [&](int stage) {
      ExecFailure e{stage, errno};
      (void)!write(pipefd[1], &e, sizeof e);
      _exit(127);
    };
    if (pinned) sched_setaffinity(0, sizeof pin, &pin);
    if (!own_mounts.empty()) {
      if (unshare(CLONE_NEWNS) != 0) fail(4);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(4);
      for (const auto& [host, at] : own_mounts)
        if (mount(host.c_str(), at.c_str(), nullptr, MS_BIND, nullptr) != 0) fail(4);
    }
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) fail(2);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    // Nothing else of the server's goes with the replica: not its listening
    // socket (a job would hold the server's port across a restart), not its
    // store, not its clients' connections.
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0)
      for (int fd = 3; fd < 65536; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    // This attempt's lock, held across exec by the supervisor (or the
    // program) for as long as it lives: adoptStarted() finds it there. A
    // POSIX lock is not inherited by fork, so the program does not hold it.
    int lock = open(lock_path.c_str(), O_RDONLY | O_CREAT, 0644);
    struct flock fl {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    if (lock < 0 || fcntl(lock, F_SETLK, &fl) != 0) fail(5);
    if (child_umask >= 0) umask(static_cast<mode_t>(child_umask));
    if (switch_uid >= 0) {
      errno = 0;
      if (setgroups(groups.size(), groups.data()) != 0 || setgid(switch_gid) != 0 || setuid(switch_uid) != 0) fail(3);
    }
    if (!wd.empty() && chdir(wd.c_str()) != 0) fail(0);
    environ = envp.data();
    execvp(argv[0], argv.data());
    fail(1);
  }
  close(pipefd[1]);
  // Also set the group from the parent: whichever runs first wins the race,
  // so a stop() right after launch always finds the group.
  setpgid(pid, pid);
  p.pid = pid;
  p.status.started_at = wallNow();
  p.status.phase = ReplicaPhase::Running;
  ExecFailure failure{};
  ssize_t n;
  do n = read(pipefd[0], &failure, sizeof failure);
  while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    std::string what = failure.stage == 0   ? fmt::format("cannot change to the working directory {}", wd)
                       : failure.stage == 1 ? fmt::format("cannot execute {}", args.empty() ? "" : args[0])
                       : failure.stage == 3 ? fmt::format("cannot switch to user {}", opts_.run_user)
                       : failure.stage == 5 ? fmt::format("cannot lock {} (another start of this attempt holds it)", lock_path)
                       : failure.stage == 4 ? fmt::format("cannot give it a directory of its own at {} (a mount namespace: "
                                                          "root only; or run it in a container, --containers podman)",
                                                          own_mounts.empty() ? "" : own_mounts[0].second)
                                            : fmt::format("cannot open the log file {}", log_path);
    reap(p, true);
    p.status.reason = "StartError";
    p.status.message = fmt::format("{}: {}", what, std::strerror(failure.err));
    // Leave the reason where `trainyard logs` will show it too.
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::string line = "trainyard: " + p.status.message + "\n";
      (void)!write(fd, line.data(), line.size());
      close(fd);
    }
    return;
  }
  p.pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  p.status.handle = fmt::format("{}@{}", pid, util::processStartTime(pid).value_or(0));
  if (!p.container.empty()) p.status.handle += "/" + p.container;
}

void LocalBackend::killGroup(Proc& p, int sig) {
  if (p.pid <= 0) return;
  p.signalled = true;
  ::kill(-p.pid, sig);  // a SIGTERM reaches the container through podman run
  if (sig == SIGKILL) cgroups_.killAll(p.cgroup);
  // Killing podman run does not end its container (conmon keeps it).
  if (sig == SIGKILL && !p.container.empty())
    util::runCommand({opts_.podman, "rm", "--force", "--time=0", "--ignore", p.container}, std::chrono::seconds(60));
}

void LocalBackend::endContainer(Proc& p) {
  if (p.container.empty() || opts_.podman.empty()) return;
  int code = p.status.exit_code.value_or(-1);
  if (code == 137 && !p.signalled && p.memory_limit > 0) {
    // SIGKILLed inside, by no one of ours, under a memory limit: the
    // kernel's OOM killer. (Podman's own OOMKilled flag stays false on
    // cgroup v1 here, and the container's cgroup, which counted the kill,
    // is gone with it.)
    p.status.reason = "OOMKilled";
    p.status.message = fmt::format("killed (SIGKILL) in its container at its memory limit of {} MiB",
                                   p.memory_limit >> 20);
  }
  if (auto why = podman::startFailure(code, util::readTail(p.status.log_ref, 4096))) {
    p.status.reason = why->first;
    p.status.message = why->second;
  }
  // podman run --rm removed a container that ended by itself; one whose
  // podman run was killed, or that podman could not run, may be left.
  if (p.signalled || !p.status.exit_code || code >= 125)
    util::runCommand({opts_.podman, "rm", "--force", "--time=0", "--ignore", p.container}, std::chrono::seconds(60));
}

void LocalBackend::reap(Proc& p, bool block) {
  if (p.adopted) return reapAdopted(p, block);
  if (p.status.phase == ReplicaPhase::Exited || p.pid <= 0) return;
  int st = 0;
  pid_t r;
  do r = waitpid(p.pid, &st, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return;  // still running
  p.status.phase = ReplicaPhase::Exited;
  p.status.finished_at = wallNow();
  if (r > 0 && WIFEXITED(st)) {
    p.status.exit_code = WEXITSTATUS(st);
    p.status.reason = *p.status.exit_code == 0 ? "Completed" : "Error";
  } else if (r > 0 && WIFSIGNALED(st)) {
    p.status.signal = WTERMSIG(st);
    p.status.reason = "Signaled";
  } else {
    p.status.reason = "Unknown";
    p.status.message = "the process could not be waited for";
  }
  // Under a supervisor, its record is the command's own status.
  if (auto rec = p.status_file.empty() ? std::nullopt : readExitRecord(p.status_file)) applyExitRecord(*rec, p.program, p.status);
  // The replica is over: whatever it left behind in its group goes too, as
  // when a container ends.
  ::kill(-p.pid, SIGKILL);
  cgroups_.killAll(p.cgroup);
  // SIGKILL is delivered asynchronously: wait until the group is really gone
  // (bounded, in case PID 1 here does not reap orphans), so that "exited"
  // means no process of the replica is left.
  for (int i = 0; i < 1000 && ::kill(-p.pid, 0) == 0; ++i) usleep(1000);
  if (cgroups_.oomKilled(p.cgroup)) {
    p.status.reason = "OOMKilled";
    p.status.message = "the replica exceeded its memory limit";
  }
  endContainer(p);
  if (!cgroups_.remove(p.cgroup)) to_remove_.push_back(p.cgroup);
  if (p.pidfd >= 0) close(p.pidfd);
  p.pidfd = -1;
}

void LocalBackend::reapAdopted(Proc& p, bool block) {
  if (p.status.phase == ReplicaPhase::Exited) return;
  // Without a pidfd it was already gone when adopted; with one, the pidfd
  // turns readable when the process ends.
  if (p.pidfd >= 0) {
    pollfd fd{p.pidfd, POLLIN, 0};
    int r;
    do r = poll(&fd, 1, block ? -1 : 0);
    while (r < 0 && errno == EINTR);
    if (r == 0) return;  // still running
  }
  p.status.phase = ReplicaPhase::Exited;
  p.status.finished_at = wallNow();
  if (p.pidfd >= 0) ::kill(-p.pid, SIGKILL);  // what it left behind in its group goes too
  if (auto rec = readExitRecord(p.status_file)) {
    applyExitRecord(*rec, p.program, p.status);
  } else {
    p.status.signal = SIGKILL;
    p.status.reason = "Lost";
    p.status.message = "it ended while no controller watched it and left no exit status";
  }
  endContainer(p);
  if (p.pidfd >= 0) close(p.pidfd);
  p.pidfd = -1;
}

std::vector<ReplicaStatus> LocalBackend::reattach(const std::string& uid, int attempt,
                                                  const std::vector<ReplicaStatus>& recorded) {
  Job& j = jobs_[uid];
  j = Job{};
  j.attempt = attempt;
  if (!recorded.empty() && !recorded.front().log_ref.empty())
    rememberLogDir(uid, std::filesystem::path(recorded.front().log_ref).parent_path().string());
  for (const auto& r : recorded) j.procs.push_back(adopt(r, attempt));
  std::vector<ReplicaStatus> out;
  for (const auto& p : j.procs) out.push_back(p.status);
  return out;
}

LocalBackend::Proc LocalBackend::adopt(ReplicaStatus r, int attempt) {
  Proc p;
  p.status = std::move(r);
  p.status.attempt = attempt;
  // The handle is "pid@start time"; anything else is not one of ours.
  long pid = 0;
  unsigned long long started = 0;
  const std::string& h = p.status.handle;
  if (std::sscanf(h.c_str(), "%ld@%llu", &pid, &started) != 2 || pid <= 0 || pid > INT32_MAX) pid = 0, started = 0;
  p.pid = static_cast<pid_t>(pid);
  p.adopted = true;
  p.status_file = exitStatusFile(p.status.log_ref);
  if (size_t slash = h.find('/'); slash != std::string::npos) p.container = h.substr(slash + 1);
  p.status.phase = ReplicaPhase::Running;  // until reapAdopted says how it ended
  // Our replica only if the pid still has the start time we recorded.
  if (pid > 0 && started != 0 && util::processStartTime(pid) == std::optional<uint64_t>(started))
    p.pidfd = static_cast<int>(syscall(SYS_pidfd_open, p.pid, 0));
  reapAdopted(p, false);
  return p;
}

bool LocalBackend::adoptStarted(Proc& p) {
  std::string lock = p.status.log_ref + ".lock";
  int fd = open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // never started
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  bool held = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0;
  close(fd);
  bool ended = !opts_.supervisor.empty() && std::filesystem::exists(exitStatusFile(p.status.log_ref));
  // Started before and gone without a record (killed with a `trainyard
  // run` it was tied to): this launch is its next start.
  if (!held && !ended) return false;
  ReplicaStatus r = p.status;
  r.handle = held ? fmt::format("{}@{}", fl.l_pid, util::processStartTime(fl.l_pid).value_or(0)) : "";
  if (held && !p.container.empty()) r.handle += "/" + p.container;
  r.started_at = wallNow();
  p = adopt(r, r.attempt);
  return true;
}

void LocalBackend::stop(const std::string& uid, std::chrono::milliseconds grace) {
  auto it = jobs_.find(uid);
  if (it == jobs_.end()) return;
  Job& j = it->second;
  if (!j.kill_at) j.kill_at = Clock::now() + grace;
  for (auto& p : j.procs)
    if (p.status.phase != ReplicaPhase::Exited) killGroup(p, grace.count() == 0 ? SIGKILL : SIGTERM);
}

void LocalBackend::escalate(Job& j) {
  if (!j.kill_at || Clock::now() < *j.kill_at) return;
  for (auto& p : j.procs)
    if (p.status.phase != ReplicaPhase::Exited) killGroup(p, SIGKILL);
}

std::vector<ReplicaStatus> LocalBackend::observe(const std::string& uid) {
  auto it = jobs_.find(uid);
  if (it == jobs_.end()) return {};
  escalate(it->second);
  std::vector<ReplicaStatus> out;
  bool start_error = false;
  for (auto& p : it->second.procs) {
    reap(p, false);
    start_error |= p.status.reason == "StartError";
  }
  // A replica that could not start (seen only now under a supervisor):
  // the others must not run alone.
  if (start_error)
    for (auto& p : it->second.procs)
      if (p.status.phase != ReplicaPhase::Exited) {
        killGroup(p, SIGKILL);
        reap(p, true);
      }
  for (auto& p : it->second.procs) out.push_back(p.status);
  return out;
}

void LocalBackend::waitForChange(std::chrono::milliseconds timeout) {
  std::erase_if(to_remove_, [&](const Cgroups::Group& g) { return cgroups_.remove(g); });
  std::vector<pollfd> fds;
  auto deadline = Clock::now() + timeout;
  for (auto& [uid, j] : jobs_) {
    if (j.kill_at) deadline = std::min(deadline, std::max(Clock::now(), *j.kill_at));
    for (auto& p : j.procs)
      if (p.pidfd >= 0 && p.status.phase != ReplicaPhase::Exited) fds.push_back({p.pidfd, POLLIN, 0});
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, ms)));  // EINTR: a signal, return early
}

void LocalBackend::release(const std::string& uid) {
  auto it = jobs_.find(uid);
  if (it == jobs_.end()) return;
  for (auto& p : it->second.procs) {
    if (p.status.phase != ReplicaPhase::Exited) killGroup(p, SIGKILL);
    reap(p, true);
  }
  jobs_.erase(it);
}

}  // namespace trainyard::backend
