#include "backend/container/podman.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "spec/trainjob.h"

namespace trainyard::backend::podman {

std::string findPodman() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    size_t colon = dirs.find(':', at);
    std::string dir = dirs.substr(at, colon == std::string::npos ? std::string::npos : colon - at);
    std::string candidate = (dir.empty() ? "." : dir) + "/podman";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  return "";
}

Options optionsForThisMachine(const std::string& podman) {
  Options o;
  o.podman = podman;
  for (const char* runc : {"/usr/sbin/runc", "/usr/bin/runc"})
    if (access(runc, X_OK) == 0) {
      o.runtime = "runc";
      break;
    }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_max != RLIM_INFINITY) o.nofile = static_cast<long>(lim.rlim_max);
  long pid_max = 0;
  std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
  if (getrlimit(RLIMIT_NPROC, &lim) == 0) {
    long hard = lim.rlim_max == RLIM_INFINITY ? 0 : static_cast<long>(lim.rlim_max);
    o.nproc = hard > 0 && pid_max > 0 ? std::min(hard, pid_max) : std::max(hard, pid_max);
  }
  return o;
}

std::string containerName(const std::string& uid, const std::string& replica, int attempt) {
  return fmt::format("trainyard-{}-{}-{}", uid, replica, attempt);
}

std::string pullPolicy(const std::string& p) {
  if (p == "Never") return "never";
  if (p == "Always") return "always";
  return "missing";  // IfNotPresent, Kubernetes' default for a tagged image
}

std::vector<std::string> runArgs(const Options& o, const ContainerRun& run) {
  const ReplicaLaunch& r = *run.replica;
  std::vector<std::string> a = {o.podman, "run"};
  if (!o.runtime.empty()) a.push_back("--runtime=" + o.runtime);
  a.insert(a.end(), {"--rm", "--name=" + containerName(run.uid, r.name, run.attempt),
                     "--label=trainyard.dev/job-uid=" + run.uid,
                     "--label=trainyard.dev/replica=" + r.name,
                     fmt::format("--label=trainyard.dev/attempt={}", run.attempt),
                     "--pull=" + pullPolicy(r.image_pull_policy),
                     "--init",             // PID 1 that forwards signals and reaps
                     "--network=host",     // peers reach each other at this machine's addresses, as processes do
                     "--log-driver=none"});  // the output is the replica's log already (attached)
  if (o.nofile > 0) a.push_back(fmt::format("--ulimit=nofile={}:{}", o.nofile, o.nofile));
  if (o.nproc > 0) a.push_back(fmt::format("--ulimit=nproc={}:{}", o.nproc, o.nproc));
  if (o.run_uid >= 0) {
    a.push_back(fmt::format("--user={}:{}", o.run_uid, o.run_gid));
    for (unsigned g : o.run_groups) a.push_back(fmt::format("--group-add={}", g));
    a.insert(a.end(), {"--cap-drop=all", "--security-opt=no-new-privileges"});
  }
  auto mount = [&](const std::string& host, const std::string& inside, bool ro) {
    a.push_back(fmt::format("--volume={}:{}{}", host, inside, ro ? ":ro" : ""));
  };
  if (!r.working_dir.empty()) {
    mount(r.working_dir, r.working_dir, false);
    a.push_back("--workdir=" + r.working_dir);
  }
  for (const auto& m : run.mounts) mount(m.host_path, m.mount_path, m.read_only);
  for (const auto& m : r.mounts) mount(m.host_path, m.mount_path, m.read_only);
  for (const auto& n : run.env_names) a.push_back("--env=" + n);
  if (r.resources.cpu_millis > 0) a.push_back(fmt::format("--cpus={:.3f}", r.resources.cpu_millis / 1000.0));
  if (r.resources.memory_bytes > 0) {
    a.push_back(fmt::format("--memory={}", r.resources.memory_bytes));
    a.push_back(fmt::format("--memory-swap={}", r.resources.memory_bytes));  // no swap beyond it: OOM is OOM
  }
  for (int g : r.gpu_ids) a.push_back(fmt::format("--device=nvidia.com/gpu={}", g));
  if (!r.image_entrypoint && !r.argv.empty()) a.push_back("--entrypoint=" + r.argv[0]);
  a.push_back(r.image);
  for (size_t i = r.image_entrypoint ? 0 : 1; i < r.argv.size(); ++i) a.push_back(r.argv[i]);
  return a;
}

std::optional<std::pair<std::string, std::string>> startFailure(int exit_code, const std::string& log_tail) {
  // podman's own failures: 125 (podman), 126 (the runtime could not start
  // it). 127 stays the command's: "command not found" in the image.
  if (exit_code != 125 && exit_code != 126) return std::nullopt;
  std::string said;
  for (size_t at = log_tail.rfind("Error: "); at != std::string::npos;) {
    said = log_tail.substr(at + 7, log_tail.find('\n', at) - at - 7);
    break;
  }
  if (said.empty()) return std::nullopt;  // not podman's words: the command's own exit code
  if (said.starts_with("building the image failed")) return std::make_pair(std::string("ImageBuildFailed"), said);
  for (const char* pull : {"image not known", "initializing source", "pull", "manifest unknown", "reading manifest",
                           "unauthorized", "short-name"})
    if (said.find(pull) != std::string::npos) return std::make_pair(std::string("ImagePullFailed"), said);
  return std::make_pair(std::string("ContainerError"), said);
}

namespace {

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<const unsigned char*>(p)[i]) * 1099511628211ull;
  }
  void add(const std::string& s) { add(s.data(), s.size() + 1); }  // with its terminator: "ab","c" != "a","bc"
};

}  // namespace

std::string contextHash(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) throw std::runtime_error(fmt::format("build context {}: {}", dir, ec.message()));
  for (; it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error(fmt::format("build context {}: {}", dir, ec.message()));
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink() || it->is_regular_file()) files.push_back(it->path());
    if (files.size() > 50000) throw std::runtime_error(fmt::format("build context {} has more than 50,000 files", dir));
  }
  std::sort(files.begin(), files.end());
  Fnv a, b;
  b.h ^= 0x9e3779b97f4a7c15ull;  // two streams: 128 bits against accidental equality
  uint64_t total = 0;
  std::vector<char> buf(1 << 16);
  for (const auto& f : files) {
    std::string rel = fs::relative(f, dir).string();
    struct stat st {};
    lstat(f.c_str(), &st);
    std::string head = fmt::format("{}\n{:o}\n", rel, st.st_mode & 07777);
    if (S_ISLNK(st.st_mode)) head += fs::read_symlink(f, ec).string();
    a.add(head), b.add(head);
    if (S_ISLNK(st.st_mode)) continue;
    int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(fmt::format("build context: cannot read {}: {}", f.string(), std::strerror(errno)));
    ssize_t n;
    while ((n = read(fd, buf.data(), buf.size())) > 0) {
      a.add(buf.data(), static_cast<size_t>(n)), b.add(buf.data(), static_cast<size_t>(n));
      total += static_cast<uint64_t>(n);
      if (total > (uint64_t{8} << 30)) {
        close(fd);
        throw std::runtime_error(fmt::format("build context {} holds more than 8 GiB (mount data as a volume)", dir));
      }
    }
    close(fd);
  }
  return fmt::format("{:016x}", a.h ^ (b.h << 1)).substr(0, 16);
}

std::string builtImage(const std::string& image, const std::string& hash) { return spec::imageRepository(image) + ":" + hash; }

int runBuildStep(int argc, char** argv) {
  if (argc < 7 || std::strcmp(argv[5], "--") != 0) {
    std::fprintf(stderr, "usage: trainyard __container-build IMAGE CONTEXT FILE -- PODMAN RUN...\n");
    return 2;
  }
  std::string image = argv[2], context = argv[3], file = argv[4];
  char** run = argv + 6;
  std::string podman = run[0];
  auto exists = [&] {
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1), dup2(null, 2);
      execlp(podman.c_str(), podman.c_str(), "image", "exists", image.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  };
  if (!exists()) {
    // One build of an image at a time: the job's other replicas wait for it.
    Fnv h;
    h.add(image);
    std::string lock = fmt::format("/tmp/trainyard-build-{:016x}-{}.lock", h.h, getuid());
    int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
      while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {
      }
    if (!exists()) {
      if (file.empty()) file = std::filesystem::exists(std::filesystem::path(context) / "Containerfile") ? "Containerfile" : "Dockerfile";
      std::string path = (std::filesystem::path(context) / file).string();
      std::fprintf(stderr, "trainyard: building %s from %s (%s)\n", image.c_str(), context.c_str(), file.c_str());
      pid_t pid = fork();
      if (pid == 0) {
        execlp(podman.c_str(), podman.c_str(), "build", "--layers", "-t", image.c_str(), "-f", path.c_str(), context.c_str(),
               static_cast<char*>(nullptr));
        _exit(127);
      }
      int st = 0;
      while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        std::fprintf(stderr, "Error: building the image failed: podman build of %s exited %d\n", path.c_str(),
                     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return 125;
      }
    }
    if (fd >= 0) close(fd);  // the lock goes with it
  }
  execvp(run[0], run);
  std::fprintf(stderr, "Error: cannot execute %s: %s\n", run[0], std::strerror(errno));
  return 125;
}

}  // namespace trainyard::backend::podman
