// The slurm backend: each attempt of a job is one Slurm batch job
// (batch.h), named after the job's uid and attempt so that a restarted
// server finds it again. Slurm places the replicas (Capabilities::
// places_replicas) and queues them (queues_jobs: pending in Slurm's queue
// is waiting, with Slurm's reason, not a start timeout); peers' addresses
// are bound on the node (peers_before_launch false). The state of every job
// comes from one `squeue --json` per pass, each replica's end from the exit
// record its supervisor leaves beside its log, and logs and files are read
// from the filesystem the nodes share with this machine. stop() is scancel
// with SIGTERM, then scancel (SIGKILL) after the grace; release() cancels
// what is still active, so nothing outlives its job.
#pragma once
#include <memory>

#include "backend/backend.h"
#include "backend/slurm/options.h"

namespace trainyard::backend {

// Throws std::runtime_error when Slurm's commands are not there or the
// controller does not answer (said once, at start).
std::unique_ptr<Backend> makeSlurmBackend(const SlurmOptions& opts);

}  // namespace trainyard::backend
