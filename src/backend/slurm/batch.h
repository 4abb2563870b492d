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

// One homogeneous component of a Slurm job: `ntasks` tasks of one shape.
struct Shape {
  int ntasks = 0;
  int cpus_per_task = 1;
  int64_t mem_per_cpu_mib = 0;  // 0: the cluster's default
  int gpus_per_task = 0;
  int nodes = 0;           // 0: Slurm decides
  int tasks_per_node = 0;  // 0: Slurm decides
};

// The Slurm job of an attempt. Each replica that runs is one srun task, in
// replica order; consecutive replicas of one shape (CPUs rounded up to whole
// CPUs, memory, GPUs) form one component, and several components make a
// heterogeneous job, so each role gets what it asked for. An MPI job's
// workers are slots, not processes: its tasks are the slots (slotsPerWorker
// per worker, shaped by a worker's share) and its launcher runs in the batch
// step, whose mpirun starts the ranks inside the allocation (Open MPI reads
// it from Slurm). Throws BackendError (permanent) for what cannot be one.
struct Layout {
  std::vector<Shape> components;
  std::vector<size_t> tasks;  // replica indexes run as srun tasks, in task order
  int launcher = -1;          // the replica run in the batch step (MPI), or -1
  int ntasks() const;
};
Layout layoutOf(const PlacedJob& job);

// The plan the job's steps read (JSON): "tasks", the srun tasks in order,
// and "launcher" (MPI), each with its name, argv, env, working directory and
// log file; "components", each one's task count and CPUs per task.
nlohmann::json planFor(const PlacedJob& job, const std::string& log_dir, const std::string& trainyard);

// The plan file `path`, as planFor wrote it. Throws std::runtime_error
// for a file that is not one.
nlohmann::json readPlan(const std::string& path);

// The replicas a plan runs, as its steps record them: the launcher (if
// any), then the tasks.
std::vector<nlohmann::json> planReplicas(const nlohmann::json& plan);

// sbatch's arguments (the script path last; components separated by ":").
// Throws BackendError (permanent) for what cannot be a Slurm job.
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
