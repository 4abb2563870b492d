#include "backend/container/podman.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

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
  for (const char* pull : {"image not known", "initializing source", "pull", "manifest unknown", "reading manifest",
                           "unauthorized", "short-name"})
    if (said.find(pull) != std::string::npos) return std::make_pair(std::string("ImagePullFailed"), said);
  return std::make_pair(std::string("ContainerError"), said);
}

}  // namespace trainyard::backend::podman
