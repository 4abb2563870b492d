// Replicas with an `image:` run in Podman containers on the local backend.
// Pure where it can be (a replica in, podman's arguments out; podman's exit
// and last words in, a reason out), so it is tested without Podman. The
// local backend runs `podman run` in the foreground under its supervisor, as
// it runs any command: the log is the container's output, the exit record
// its exit code, a SIGTERM reaches the container (podman proxies signals,
// and --init forwards them to the command), a restarted server re-attaches
// to the supervisor as to any replica. `--rm` removes a container that ends
// by itself; one whose podman run was killed is removed by name.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"

namespace trainyard::backend::podman {

struct Options {
  std::string podman = "podman";
  // The OCI runtime (--runtime): runc where crun cannot run (crun fails on
  // hybrid cgroup v1 hosts). Empty: Podman's default.
  std::string runtime;
  // Podman's default ulimits exceed what a process without
  // CAP_SYS_RESOURCE may set: these, within this process's hard limits.
  long nofile = 0, nproc = 0;  // 0: Podman's default
  // A root server's run-as user: the container runs as it, with no
  // capabilities and no way to gain any (setuid binaries in the image).
  int run_uid = -1, run_gid = -1;
  std::vector<unsigned> run_groups;
};

// What this machine allows: runc when it is installed, the ulimits from
// this process's hard limits (nproc also within kernel.pid_max, above which
// runc's setrlimit fails here). `podman` is the binary to use.
Options optionsForThisMachine(const std::string& podman);

// Podman on PATH, or "".
std::string findPodman();

// The container of a replica's attempt: found again by this name.
std::string containerName(const std::string& uid, const std::string& replica, int attempt);

// One container to run: the replica, with its environment already resolved
// (passed by name: values stay out of the command line, which any local
// user can read, and podman reads them from its own environment).
struct ContainerRun {
  std::string uid;
  int attempt = 0;
  const ReplicaLaunch* replica = nullptr;
  std::vector<std::string> env_names;
  std::vector<Mount> mounts;  // more than the replica's own (outputs, config dir)
};

// `podman run ...`: --name and labels, --pull from imagePullPolicy, --init,
// --network host (peers reach each other as processes do), the working
// directory mounted at its own path, the mounts, --env NAME..., --cpus,
// --memory, NVIDIA GPUs through CDI (--device nvidia.com/gpu=N), the
// ulimits and runtime, then the image and the command: a spec's `command`
// replaces the image's entrypoint (Kubernetes' rule), `args` alone are the
// entrypoint's arguments.
std::vector<std::string> runArgs(const Options& o, const ContainerRun& run);

// Why `podman run` failed before the command ran, from its exit code and its
// last "Error: " line (the replica's log): {"ImagePullFailed", message} for
// an image that is not present and could not be pulled, {"ContainerError",
// message} for another failure of podman or the runtime; nothing when the
// exit code is the command's own.
std::optional<std::pair<std::string, std::string>> startFailure(int exit_code, const std::string& log_tail);

// spec.build: the content hash of a build context (each file's path
// relative to it, its mode and its bytes; .git left out), as 16 hex digits.
// Throws std::runtime_error beyond 50,000 files or 8 GiB: a context that
// large is a data directory, which belongs in a volume.
std::string contextHash(const std::string& dir);
// The image a build makes: `image` (its tag replaced) tagged by `hash`.
std::string builtImage(const std::string& image, const std::string& hash);
// `trainyard __container-build IMAGE CONTEXT FILE -- PODMAN RUN...`: builds
// IMAGE from CONTEXT unless Podman has it already (one build of an image at a
// time on this machine), its output in the replica's log, then execs the
// run. A failed build exits 125 with "Error: building the image failed".
int runBuildStep(int argc, char** argv);

// imagePullPolicy (IfNotPresent, Never, Always) as podman's --pull value.
std::string pullPolicy(const std::string& image_pull_policy);

}  // namespace trainyard::backend::podman
