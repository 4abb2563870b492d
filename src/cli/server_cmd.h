// `trainyard server`: the control plane in the foreground until SIGINT or
// SIGTERM. Replicas keep running when it stops; the next start re-attaches.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/request_guard.h"
#include "backend/backend.h"
#include "backend/kubernetes/options.h"
#include "backend/slurm/options.h"
#include "control/job_controller.h"

namespace trainyard::cli {

// Who may use a server and from where (both `server` and `serve`).
struct AccessOptions {
  std::string auth_file;                     // "" = no authentication (loopback only)
  std::string public_url;                    // the address browsers use, through a proxy
  std::vector<std::string> allowed_origins;  // other origins whose pages may change state
};

// The guard's options from the command line: loads the token file (throws
// naming it) and refuses a non-loopback address without one.
api::GuardOptions guardOptions(const AccessOptions& a, const std::string& address);

// How the machine is divided and shared (`server` and `run`).
struct ClusterFlags {
  int nodes = 1;            // --nodes: virtual nodes on this machine
  bool pin_cpus = false;    // --pin-cpus: replicas run on their virtual node's CPUs
  bool gpu_sharing = false; // --gpu-sharing: accept `gpu: 0.25`
  bool no_preemption = false;
  bool no_backfill = false;
  backend::KubernetesOptions kube;  // --kubeconfig, --context, --namespace, --host-network
  backend::SlurmOptions slurm;      // --slurm-partition, --slurm-account, --slurm-qos
  int batch_backlog = 2;            // --batch-backlog (control::ControllerOptions)
  std::string containers = "auto";  // --containers: podman, host, or auto (podman when installed)
};
void applyClusterFlags(const ClusterFlags& f, backend::LocalBackendOptions& bo, control::ControllerOptions& co);

struct ServerCliOptions {
  ClusterFlags cluster;
  std::string address = "127.0.0.1";
  int port = 8080;
  std::string data_dir;
  std::string store;      // "" = SQLite in data_dir
  AccessOptions access;
  std::string backend = "local";  // where replicas run (--backend)
  std::string run_as;     // Unix user for jobs ("" = this one; root defaults to trainyard-jobs)
  double grace_seconds = 10;
  std::string models_dir;  // also serve this model repository ("" = no)
  std::string min_free_disk = "100Mi";  // below this free in the data dir, new work is refused (507)
};

int cmdServer(const ServerCliOptions& o);

// Blocks SIGINT/SIGTERM (and ignores SIGPIPE) in this and every later
// thread; a detached thread waits for them and calls on_stop(signal). Call
// it before starting other threads, so no HTTP thread is interrupted.
void stopOnSignal(std::function<void(int)> on_stop);

}  // namespace trainyard::cli
