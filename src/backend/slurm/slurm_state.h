// What Slurm says, read (pure: text in, values out, so it is tested without
// a cluster): squeue's jobs, `sinfo --json` of Slurm 22.05 (its filters are
// ignored there: every node comes back, and is filtered here), and the
// environment a job step gets (SLURM_TASKS_PER_NODE).
#pragma once
#include <string>
#include <vector>

#include "backend/backend.h"
#include "sched/resources.h"

namespace trainyard::backend::slurm {

// The Slurm job of attempt `attempt` of job `uid`: by this name a restarted
// server finds it again (launch stays idempotent after a crash between
// sbatch and the store write).
std::string slurmJobName(const std::string& uid, int attempt);

struct SlurmJob {
  std::string id;      // "1234"
  std::string name;    // --job-name
  std::string state;   // PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY...
  std::string reason;  // why pending (Resources, Priority, QOSMaxCpuPerUserLimit...) or ended; "None"
  std::string nodes;   // a hostlist: node[1-2]
  double start = 0, end = 0;
};

// How every job is asked for, in one call: all states (ended jobs stay
// listed for MinJobAge), one line each in squeueFormat(). Text, not
// --json: squeue builds its JSON in time quadratic in the jobs listed
// (0.06 s for 365 jobs here, against 0.009 s for this).
std::vector<std::string> squeueCommand();
// The jobs named "trainyard-*" in that output. Throws std::runtime_error
// on a line that is not in that form.
std::vector<SlurmJob> parseSqueue(const std::string& text);

// Whether Slurm may still run (or is running) a job in this state.
bool isActive(const std::string& state);

// The nodes of `sinfo --json` (of `partition`, when given) as the scheduler
// sees them: CPUs, memory (RealMemory, MiB), gpu count from gres "gpu:N" or
// "gpu:type:N", features as labels (feature.NAME=true), and
// schedulable = not down, drained, failing or not responding.
std::vector<sched::Node> parseSinfo(const std::string& json_text, const std::string& partition);

// SLURM_TASKS_PER_NODE ("2(x3),1") as tasks per node in node order ({2,2,2,1}).
// Empty for text that is not in that form.
std::vector<int> parseTasksPerNode(const std::string& text);

// NodeName -> NodeAddr from `scontrol -o show node` (one node per line):
// peers are reached at a node's address, which need not be its name.
std::vector<std::pair<std::string, std::string>> parseNodeAddrs(const std::string& text);

// How a replica that left no exit record ended, from its Slurm job's final
// state (NODE_FAIL -> NodeFail, TIMEOUT -> DeadlineExceeded, OUT_OF_MEMORY
// -> OOMKilled, CANCELLED -> Signaled, PREEMPTED -> Preempted; a job Slurm
// no longer lists -> Lost). Sets phase Exited, signal, reason, message.
void endedWithoutRecord(const SlurmJob* job, ReplicaStatus& r);

}  // namespace trainyard::backend::slurm
