// Options of the slurm backend (`--backend slurm`; flags --slurm-partition,
// --slurm-account, --slurm-qos). Slurm's client commands find the cluster
// as they always do (SLURM_CONF, /etc/slurm/slurm.conf).
#pragma once
#include <string>
#include <vector>

namespace trainyard::backend {

struct SlurmOptions {
  // Defaults for a job whose spec.slurm names none.
  std::string partition, account, qos;
  // Where each job's logs, exit records and batch plan go (<log_root>/<uid>).
  // It must be on a filesystem the nodes share with this machine, as the
  // job's working directory must be (as on every Slurm cluster).
  std::string log_root;
  // The trainyard binary as the nodes run it (the same path on the shared
  // filesystem, or installed at that path on every node).
  std::string trainyard;
  // A root server's job user (sbatch --uid/--gid): jobs never run as root.
  int run_uid = -1;
  int run_gid = -1;
};

}  // namespace trainyard::backend
