// The Backend contract: where replicas actually run. A backend receives a
// *placed* job (replicas with roles, resources, env and their node) and is
// asynchronous and idempotent by job UID + attempt. The controller never
// assumes a PID or a local file exists: logs come through readLogAt() and a
// replica's files through readFileAt(), both by opaque cursor; states
// through observe()/observeAll(). Local processes today (backend/
// local_backend.h), an in-memory fake for tests (backend/fake_backend.h);
// Kubernetes and Slurm implement the same interface.
//
// Threads: a backend is made and used by one thread (the control loop's),
// except readLogAt() and readFileAt(), which any thread may call at any
// time (the API serves logs while the loop runs).
//
// Errors: launch() throws BackendError; transient() says whether trying the
// same launch again later may succeed (an API server unreachable, a node
// busy) or not (a command that does not exist, an image that cannot be
// pulled). Other calls do not throw for a job they do not know: they report
// nothing, and a replica that was reported and no longer is counts as Lost.
// Every backend passes tests/unit/backend_conformance_test.cc.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sched/resources.h"
#include "spec/slurm_spec.h"

namespace trainyard::backend {

// A node directory mounted into a replica's container (spec `volumes:`).
struct Mount {
  std::string host_path;
  std::string mount_path;
  bool read_only = false;
};

struct ReplicaLaunch {
  std::string name;  // "worker-0": role and index
  std::string node;  // where the scheduler placed it
  std::string role;
  int index = 0;
  std::vector<std::string> argv;  // command then args
  std::vector<std::pair<std::string, std::string>> env;  // added to the backend's base environment
  std::string working_dir;
  std::string image;  // locally: run in a Podman container (backend/container/podman.h)
  std::string image_pull_policy;  // IfNotPresent (default), Never, Always
  // argv holds only arguments for the image's entrypoint (the spec gave
  // args and no command): in a container, the entrypoint stays.
  bool image_entrypoint = false;
  // Build the image first (spec.build): the context directory and its
  // Containerfile; `image` then names what the build makes.
  std::string build_context, build_file;
  // Volumes. A process sees the node's files anyway, so locally only a
  // volume mounted at another path needs a mount (root: a mount namespace).
  std::vector<Mount> mounts;
  // Directories this replica alone sees at a path (a trial's absolute
  // metrics path, e.g. Katib's /katib: each pod has its own on a cluster).
  // Locally: a bind mount in a mount namespace of its own (root), or a
  // volume of its container; reads of files under mount_path go to host_path.
  std::vector<Mount> private_mounts;
  std::map<std::string, std::string> node_selector;  // for a backend whose own scheduler places it
  // Kubeflow's pod template (JSON) and its main container's index: the
  // Kubernetes backend builds the pod from it; others ignore it.
  std::string pod_template;
  int main_container = 0;
  sched::Resources resources;
  std::vector<int> gpu_ids;
  // False for replicas that are only slots (MPI workers: the launcher's
  // mpirun starts the ranks); they are placed and addressed, not started.
  bool run = true;
};

// Where a replica can be reached by its peers.
struct Endpoint {
  std::string host;
  int port = 0;
};

// A small file the replicas need (e.g. an MPI hostfile). The backend puts
// the job's files in one directory and sets TRAINYARD_CONFIG_DIR to it;
// env values and args may refer to it as $(TRAINYARD_CONFIG_DIR), expanded
// like Kubernetes' $(VAR) references.
struct ConfigFile {
  std::string name;
  std::string content;
};

// What a backend does itself, so the layers above neither do it twice nor
// assume it.
struct Capabilities {
  bool places_replicas = false;   // decides nodes itself (Slurm): Trainyard's placement is advisory
  bool peers_before_launch = true;  // resolvePeers() works before launch; else wiring is bound late ($(VAR) on the node)
  bool enforces_memory = false;   // memory limits are enforced (else a warning per job)
  bool runs_images = false;       // `image:` is honoured
  bool survives_restart = false;  // replicas outlive the controller and reattach() finds them
  // Has a queue of its own (a batch system): a replica pending there waits
  // its turn for as long as it takes, and is not failed by startTimeoutSeconds.
  bool queues_jobs = false;
};

// A launch that did not happen. transient(): the same launch may succeed
// later (retried with backoff); otherwise the job fails with the message.
class BackendError : public std::runtime_error {
 public:
  BackendError(const std::string& what, bool transient) : std::runtime_error(what), transient_(transient) {}
  bool transient() const { return transient_; }

 private:
  bool transient_;
};

// For a backend whose peers' addresses are known only once the allocation
// starts (Capabilities::peers_before_launch false, as on Slurm): the host of
// replica `i` as a $(VAR) reference that wiring puts wherever the address
// goes, and the variable the backend sets on every node before the program
// starts (`trainyard __supervise --bind-late` then expands them).
std::string latePeerHostVar(size_t replica);  // TRAINYARD_PEER_HOST_<i>
std::string latePeerHost(size_t replica);     // $(TRAINYARD_PEER_HOST_<i>)

// The port replica `index` of job `uid` listens on, for a backend whose
// replicas share their node's ports (host network; batch nodes) and whose
// peers are wired before they start: fixed, and spread by the uid.
// 20000-31999: below Linux's ephemeral ports (32768 and up), which any
// process's outgoing connection or port-0 listener may hold. Inline: the
// Kubernetes plugin uses it too, and does not link ty_backend.
inline int fixedPeerPort(const std::string& uid, size_t index) {
  return 20000 + static_cast<int>((std::hash<std::string>{}(uid) % 1200) * 10 + index % 10);
}

// A piece of a replica's log and where to continue (an opaque cursor: a
// byte offset locally, a timestamp or a token elsewhere; "" = the start,
// "tail:N" = the last N bytes).
struct LogChunk {
  std::string bytes;
  std::string next;
  // The log could not be read just now (its node's agent unreachable, the
  // API server busy): nothing was skipped, the same cursor is worth trying
  // again. A reader draining a finished replica waits for it.
  bool unavailable = false;
};

// Labels naming the resource a job came from (operator mode: a TrainJob,
// PyTorchJob or Experiment object): "Kind.version.group", namespace, name, uid.
// An experiment's trials carry its owner labels. A backend whose objects
// live beside that resource makes it their owner (Kubernetes
// ownerReferences: the garbage collector removes them with it).
inline constexpr const char* kOwnerLabelPrefix = "trainyard.dev/owner-";
inline constexpr const char* kOwnerKindLabel = "trainyard.dev/owner-kind";
inline constexpr const char* kOwnerNamespaceLabel = "trainyard.dev/owner-namespace";
inline constexpr const char* kOwnerNameLabel = "trainyard.dev/owner-name";
inline constexpr const char* kOwnerUidLabel = "trainyard.dev/owner-uid";

struct PlacedJob {
  std::string uid;
  std::string name;
  // The spec's kind: TrainJob, or PyTorchJob/TFJob/MPIJob for Kubeflow YAML
  // (the Kubernetes backend labels those pods as Kubeflow's operator would).
  std::string kind = "TrainJob";
  std::map<std::string, std::string> labels;  // the spec's metadata.labels
  // For a backend that places replicas itself (Slurm): the spec's wishes.
  spec::SlurmSpec slurm;
  bool spread = false;            // placement: spread (one replica per node)
  int slots_per_worker = 1;       // MPI: processes per worker (a batch system runs them as its tasks)
  int64_t deadline_seconds = 0;   // activeDeadlineSeconds (0: none): a batch system's time limit
  int attempt = 0;
  std::string log_dir;  // where a backend that writes log files keeps them
  std::vector<ReplicaLaunch> replicas;
  std::vector<ConfigFile> files;
};

enum class ReplicaPhase { Pending, Running, Exited };

struct ReplicaStatus {
  std::string name;
  int attempt = 0;
  ReplicaPhase phase = ReplicaPhase::Pending;
  // The backend's own name for this replica, opaque above it: locally the
  // process and its start time ("12345@678", so a recycled pid is not
  // taken for it), a pod UID on Kubernetes, a step id on Slurm. Kept in the
  // store; reattach() gets it back.
  std::string handle;
  double started_at = 0;
  double finished_at = 0;
  std::optional<int> exit_code;  // set when it exited by itself
  std::optional<int> signal;     // set when a signal ended it
  std::string reason;            // Completed, Error, OOMKilled, Signaled, StartError, Lost
  std::string message;           // e.g. the exec error
  std::string log_ref;           // backend-specific log locator, kept in the store for users
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Capabilities capabilities() const = 0;

  // Nodes and their allocatable resources.
  virtual std::vector<sched::Node> capacity() = 0;

  // One address per replica of `job`, in order: loopback and free ports
  // locally, headless-service DNS names on Kubernetes.
  virtual std::vector<Endpoint> resolvePeers(const PlacedJob& job) = 0;

  // Starts every replica of `job` (all of them or, on error, none keep
  // running). Launching a (uid, attempt) twice does nothing the second time.
  virtual void launch(const PlacedJob& job) = 0;

  // Asks every replica of `uid` to stop: SIGTERM-like now, forced after
  // `grace`. Returns at once; observe() reports the exits.
  virtual void stop(const std::string& uid, std::chrono::milliseconds grace) = 0;

  // Current state of each replica of the latest attempt of `uid`.
  virtual std::vector<ReplicaStatus> observe(const std::string& uid) = 0;
  // The same for every job this backend runs, in one call (one API request
  // or one `squeue` for a backend whose state lives elsewhere).
  virtual std::map<std::string, std::vector<ReplicaStatus>> observeAll() = 0;

  // Up to `max_bytes` of the log of `replica` in `attempt` of `uid`, from
  // `cursor`; any attempt this backend launched or reattached, also after
  // it ended. Thread-safe (see above).
  virtual LogChunk readLogAt(const std::string& uid, int attempt, const std::string& replica,
                             const std::string& cursor, size_t max_bytes) = 0;

  // Up to `max_bytes` of a file that `replica` of `uid`'s `attempt` writes,
  // at `path` as the replica sees it (absolute), from `cursor` as for
  // logs: the File metrics collector reads a trial's metrics file this way,
  // wherever the replica runs. Empty (and `next` == `cursor`) while the file
  // does not exist. Thread-safe.
  virtual LogChunk readFileAt(const std::string& uid, int attempt, const std::string& replica, const std::string& path,
                              const std::string& cursor, size_t max_bytes) = 0;

  // The TensorBoard event files (names containing "tfevents") under `dir`,
  // recursively, as the replica sees them, at most `max`: what the
  // TensorFlowEvent collector reads with readFileAt(). Empty while there are
  // none, or where this backend cannot reach the replica's files (pods).
  // Thread-safe.
  virtual std::vector<std::string> listEventFilesAt(const std::string& uid, int attempt, const std::string& replica,
                                                    const std::string& dir, size_t max) {
    (void)uid, (void)attempt, (void)replica, (void)dir, (void)max;
    return {};
  }

  // Blocks until a replica may have changed state, or `timeout` passes.
  virtual void waitForChange(std::chrono::milliseconds timeout) = 0;

  // Takes over the replicas of `uid`'s `attempt` that an earlier process
  // (a control plane that was killed) launched, as recorded in the store
  // (name, handle, log_ref). Live ones are watched again; the others
  // are reported Exited with their status when it was kept, else reason Lost.
  virtual std::vector<ReplicaStatus> reattach(const std::string& uid, int attempt,
                                              const std::vector<ReplicaStatus>& recorded) = 0;

  // Forgets a job whose replicas have all exited.
  virtual void release(const std::string& uid) = 0;

  // Human-readable notes about what this backend cannot enforce here
  // (e.g. "memory limits not enforced: no writable cgroup").
  virtual std::vector<std::string> warnings() const = 0;
};

struct LocalBackendOptions {
  // Kill the replicas when this process dies (used by `trainyard run`,
  // whose replicas must not outlive it).
  bool tie_to_parent = false;
  // Hard CPU quota (cfs quota = requested cores) per replica. Off by default,
  // as Kubernetes treats a request without a limit: joining a cgroup costs
  // 7-20 ms per process on cgroup v1, more than the whole launch otherwise.
  // Memory limits are always enforced when the spec sets one.
  bool cpu_quota = false;
  // Path of trainyard-supervise (or of trainyard): when set, each replica
  // runs under `<it> __supervise`, which keeps its exit status in a file next to
  // its log, so a control plane restarted while it ran still learns how it
  // ended (only the parent can wait for a process). Used by the server.
  std::string supervisor;
  // Run replicas as this Unix user (the server, when root: a job runner runs
  // code, and must not run it as the owner of the store and the tokens).
  // Log files are opened before the switch; the command runs with only the
  // user's own credentials. run_uid < 0: as this process.
  int run_uid = -1;
  int run_gid = -1;
  std::vector<unsigned> run_groups;  // supplementary groups
  std::string run_home;               // HOME, USER and LOGNAME of the user
  std::string run_user;
  int child_umask = -1;  // replicas' umask (the server keeps a private one for itself); <0: inherited
  // Split this machine into this many virtual nodes (backend/node_probe.h);
  // with pin_cpus each replica runs on its node's CPUs only.
  int nodes = 1;
  bool pin_cpus = false;
  // Where jobs' log directories are (<log_root>/<uid>), so that logs of jobs
  // this backend did not launch (finished before a restart) can be read.
  std::string log_root;
  // Podman, to run replicas that name an image in containers; "": images
  // are not used (the command runs on this machine, with a warning).
  std::string podman;
};
// Options from the environment: TRAINYARD_CPU_QUOTA=1 turns cpu_quota on.
LocalBackendOptions localBackendOptionsFromEnv();
std::unique_ptr<Backend> makeLocalBackend(const LocalBackendOptions& opts);

// Makes the backend on the thread that will use it (a backend is used by one
// thread: the control loop's). Injected into ControlPlane and `trainyard run`.
using BackendFactory = std::function<std::unique_ptr<Backend>()>;
// The backend named by --backend: "local" (this machine) or "kubernetes"
// (backend/kubernetes/kubernetes_backend.h). Throws std::invalid_argument
// naming the known and the not-yet-available ones.
struct KubernetesOptions;
struct SlurmOptions;
BackendFactory backendFactory(const std::string& name, const LocalBackendOptions& local, const KubernetesOptions& kube,
                              const SlurmOptions& slurm);

}  // namespace trainyard::backend
