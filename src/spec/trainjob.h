// Typed TrainJob spec: what the user asked for, after validation. This is the
// desired state the store keeps and the controller reconciles towards.
// Serialises to/from JSON so the store can hold it without knowing its shape.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "spec/slurm_spec.h"

namespace trainyard::spec {

struct Resources {
  int64_t cpu_millis = 1000;  // default: one core, so a job always holds a slot
  int64_t memory_bytes = 0;   // 0 = no request, no limit
  int gpu = 0;
  int gpu_share = 0;  // `gpu: 0.25`: thousandths of one shared device (needs GPU sharing on)
};

// Kubeflow semantics. ExitCode: 1-127 permanent, 128-255 (signals) retryable.
enum class RestartPolicy { Never, OnFailure, ExitCode };
const char* toString(RestartPolicy p);

struct MetricsCollector {
  enum class Kind { StdOut, File, None, TensorFlowEvent, Custom };
  Kind kind = Kind::StdOut;
  // File: the file; TensorFlowEvent: the directory of event files (read
  // recursively). Relative to workingDir.
  std::string path;
  std::string format;  // File: JSON (default: JSON lines) or TEXT (Katib's name=value lines)
  std::string filter;  // StdOut: custom regex; empty = Katib's default format
  // TensorFlowEvent: the metric names the experiment wants (its objectives),
  // matched to event tags as Katib does (metrics/tf_events.h).
  std::vector<std::string> names;
  // Custom: a command (Katib's customCollector) run beside the primary
  // replica's program, in its environment, told the program's pid
  // (TRAINYARD_MAIN_PID); its output is parsed as StdOut (with `filter`).
  std::vector<std::string> command;
};

// A directory of the node mounted into a replica's container: hostPath
// volumes on Kubernetes, bind mounts for local containers. A process sees
// the node's filesystem anyway, so locally only mount_path != host_path matters.
struct Volume {
  std::string host_path;
  std::string mount_path;  // defaults to host_path
  bool read_only = false;
};

// At most this many volumes per replica (a bound before anything is built).
inline constexpr size_t kMaxVolumes = 64;

// One role of a job (a single-replica TrainJob has one role, "worker").
struct ReplicaRole {
  std::string name = "worker";
  int replicas = 1;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // order kept for $(VAR) expansion
  std::string working_dir;
  std::string image;  // a container image: Kubernetes' pods, Podman locally
  std::string image_pull_policy;  // IfNotPresent (""), Never, Always
  std::vector<Volume> volumes;  // the spec's, then the role's
  Resources resources;
  // Kubeflow's pod template as written (JSON), and which of its containers
  // is the one above: the Kubernetes backend builds the pods from it
  // (volumes, tolerations, affinity, sidecars...); locally it is unused.
  std::string pod_template;
  int main_container = 0;
};

struct TrainJobSpec {
  std::string api_version = "trainyard.dev/v1";
  std::string kind = "TrainJob";
  std::string name;
  std::map<std::string, std::string> labels;
  std::string framework = "none";
  std::vector<ReplicaRole> roles;
  RestartPolicy restart_policy = RestartPolicy::Never;
  int backoff_limit = 6;  // as Kubernetes Jobs
  std::optional<int64_t> active_deadline_seconds;
  // Deleted this long after it finished (its outputs stay): Kubeflow's
  // runPolicy.ttlSecondsAfterFinished. Unset: kept until deleted.
  std::optional<int64_t> ttl_seconds_after_finished;
  // How long a replica may stay Pending in its backend (an image pulled, a
  // node found) before the attempt counts as failed (reason StartTimeout);
  // as Kueue's waitForPodsReady.timeout.
  int64_t start_timeout_seconds = 600;
  int priority = 0;
  // A PriorityClass (spec/queue.h) whose value becomes `priority` when the
  // job is submitted (Kubeflow's schedulingPolicy.priorityClass).
  std::string priority_class;
  std::string queue = "default";
  // Submitted suspended (Kubeflow's runPolicy.suspend): it stays queued
  // until resumed (`trainyard resume`); the store keeps whether it is now.
  bool suspend = false;
  // PyTorchJob's elasticPolicy as torchrun's PET_* settings (PET_NNODES
  // "min:max", PET_RDZV_BACKEND...); the wiring adds PET_RDZV_ENDPOINT.
  std::map<std::string, std::string> elastic_env;
  // Scheduling hints: "pack" (fewest nodes, the default) or "spread"; node
  // labels every replica's node must have; how long the job runs about
  // (lets it start ahead of a reserved gang; activeDeadlineSeconds is used
  // when this is absent).
  std::string placement = "pack";
  std::map<std::string, std::string> node_selector;
  std::optional<int64_t> walltime_seconds;
  SlurmSpec slurm;
  // Build the image before the job runs (Podman, locally): the context
  // directory and its Containerfile (relative to the context). The image is
  // the spec's `image`, or localhost/trainyard-build-<context's name>, tagged
  // by the context's content hash, so an unchanged context is built once.
  struct Build {
    std::string context;        // absolute once parsed; "" = no build
    std::string containerfile;  // "" = Containerfile (else Dockerfile) in the context
  } build;
  MetricsCollector metrics;
  // Default: the job succeeds when its primary replica (master, chief,
  // launcher, else worker-0) succeeds. AllWorkers: when every worker does.
  std::string success_policy = "Default";
  int slots_per_worker = 1;  // MPI: processes per worker in the hostfile
  std::string outputs_dir;  // empty = <data dir>/outputs/<job name>
  std::string source_file;  // where the spec came from, for messages

  // Sum of all replicas' requests; what the scheduler has to find.
  Resources totalRequest() const;
  int totalReplicas() const;
  // The replica whose success decides the job (Default policy) and whose
  // output is parsed for metrics: "master-0", "chief-0", "launcher-0" or "worker-0".
  std::string primaryReplica() const;
  const ReplicaRole* role(const std::string& name) const;
};

// Role names a framework accepts, in rank order ("none": just "worker").
const std::vector<std::string>& rolesOf(const std::string& framework);

// Whether `path` (made absolute, normalised: "a/../..") lies in `root`.
// An image reference without its tag or digest ("reg:5000/a/b:1" ->
// "reg:5000/a/b"): what a digest or another tag is appended to.
std::string imageRepository(const std::string& image);

bool isInside(const std::string& path, const std::string& root);

// The first path `job` would use outside the directory `root` (working
// directories, outputs.dir, a metrics file), as {field path, path}; empty
// when all are inside. Compared lexically after normalisation ("a/../..").
std::pair<std::string, std::string> pathOutside(const TrainJobSpec& job, const std::string& root);
// Replicas that run as processes on the local backend: MPI workers are slots
// for the launcher's mpirun, not processes of their own.
bool launchesProcesses(const std::string& framework, const std::string& role);

void to_json(nlohmann::json& j, const TrainJobSpec& s);
void from_json(const nlohmann::json& j, TrainJobSpec& s);

}  // namespace trainyard::spec
