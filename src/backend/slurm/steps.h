// The slurm backend's programs on the nodes (verbs of the trainyard binary):
//   trainyard __slurm-batch PLAN   the batch step, on the allocation's first
//       node: reads the nodes Slurm chose and their task counts
//       (SLURM_JOB_NODELIST and SLURM_TASKS_PER_NODE, or their _HET_GROUP_k
//       forms per component of a heterogeneous job), looks up each node's
//       NodeAddr (scontrol), sets TRAINYARD_PEER_HOST_<i> to the address of
//       the node task i runs on, and runs one srun step with that layout
//       (SLURM_HOSTFILE and --distribution=arbitrary; --het-group=0-K for a
//       heterogeneous job). An MPI plan instead runs its launcher here, with
//       a hostfile of the allocation's nodes and task counts as slots:
//       mpirun starts the ranks inside the allocation itself.
//   trainyard __slurm-task PLAN    task i of that step (SLURM_PROCID): replica
//       i of the plan, refused (a start error) on another node than its peers
//       were told, its output appended to its log file, a ".started" record
//       (node, host, pid) beside it, then `__supervise --bind-late`
//       in-process: the $(VAR) wiring bound, the exit recorded.
#pragma once

namespace trainyard::backend::slurm {

int runBatchStep(int argc, char** argv);
int runTask(int argc, char** argv);

}  // namespace trainyard::backend::slurm
