// How a placed job becomes one Slurm batch job per attempt (pure: values in,
// text out). The batch script runs `trainyard __slurm-batch PLAN` on the
// first node of the allocation: it learns the nodes Slurm chose and their
// addresses (SLURM_JOB_NODELIST, NodeAddr), binds each replica's peer
// addresses ($(TRAINYARD_PEER_HOST_i), late binding) and starts one srun
// step whose task i is replica i (`trainyard __slurm-task PLAN`): its log
// file, working directory, environment and exit record as on the local
// backend, on a filesystem the nodes share.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/slurm/options.h"

namespace trainyard::backend::slurm {

// One task per replica, all of one shape: the largest request of any role
// (CPUs rounded up to whole CPUs), as a homogeneous Slurm job.
struct Shape {
  int ntasks = 0;
  int cpus_per_task = 1;
  int64_t mem_per_cpu_mib = 0;  // 0: the cluster's default
  int gpus_per_task = 0;
  int nodes = 0;           // 0: Slurm decides
  int tasks_per_node = 0;  // 0: Slurm decides
};
Shape shapeOf(const PlacedJob& job);

// The plan the job's steps read (JSON): the replicas in task order with
// their argv, env, working directory and log file; the shape for srun.
nlohmann::json planFor(const PlacedJob& job, const std::string& log_dir, const std::string& trainyard);

// The plan file `path`, as planFor wrote it. Throws std::runtime_error
// for a file that is not one.
nlohmann::json readPlan(const std::string& path);

// sbatch's arguments (the script path last). Throws BackendError
// (permanent) for what cannot be a Slurm job (an MPI job's slot replicas).
std::vector<std::string> sbatchArgs(const PlacedJob& job, const SlurmOptions& o, const std::string& log_dir,
                                    const std::string& script);

// The batch script: a shell line that runs the batch step.
std::string batchScript(const std::string& trainyard, const std::string& plan_file);

// Files of an attempt under its log directory.
std::string planFile(const std::string& log_dir, int attempt);
std::string scriptFile(const std::string& log_dir, int attempt);
std::string batchOutputFile(const std::string& log_dir, int attempt);  // the batch step's own output (srun's errors)
std::string startedFile(const std::string& log_file);                  // written by a task when it starts: node, host

}  // namespace trainyard::backend::slurm
