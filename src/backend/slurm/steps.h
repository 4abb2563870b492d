// The slurm backend's programs on the nodes (verbs of the trainyard binary):
//   trainyard __slurm-batch PLAN   the batch step, on the allocation's first
//       node: reads SLURM_JOB_NODELIST and SLURM_TASKS_PER_NODE, looks up
//       each node's NodeAddr (scontrol), sets TRAINYARD_PEER_HOST_<i> to the
//       address of the node task i runs on, and runs one srun step with
//       exactly that layout (SLURM_HOSTFILE, --distribution=arbitrary).
//   trainyard __slurm-task PLAN    task i of that step (SLURM_PROCID): replica
//       i of the plan, its output appended to its log file, a ".started"
//       record (node, host, pid) beside it, then `__supervise --bind-late`
//       in-process: the $(VAR) wiring bound, the exit recorded.
#pragma once

namespace trainyard::backend::slurm {

int runBatchStep(int argc, char** argv);
int runTask(int argc, char** argv);

}  // namespace trainyard::backend::slurm
