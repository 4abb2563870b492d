// Turns a stored job and its placements into what a backend launches: one
// ReplicaLaunch per replica with its node, command, resources and environment.
// Pure: no I/O.
//
// Every replica gets TRAINYARD_JOB_NAME, TRAINYARD_JOB_UID, TRAINYARD_REPLICA,
// TRAINYARD_ATTEMPT and TRAINYARD_OUTPUT_DIR; thread pools are sized to the
// allotted cores (OMP_NUM_THREADS, MKL_NUM_THREADS, NUMEXPR_NUM_THREADS;
// OPENBLAS_NUM_THREADS=1, see the .cc) unless the spec sets them; GPUs
// are assigned exclusively through CUDA_VISIBLE_DEVICES.
#pragma once
#include <string>

#include "backend/backend.h"
#include "sched/scheduler.h"
#include "store/store.h"

namespace trainyard::control {

// A replica without a placement of its own takes the "*" one (a store from
// before schema 5: the whole gang on one node, its GPUs handed out in order).
backend::PlacedJob planAttempt(const store::JobRecord& job, const std::vector<sched::Placement>& placements, int attempt);

// The Custom metrics collector's output of one attempt (the primary's
// program is wrapped so that the collector runs beside it and writes here).
std::string customMetricsFile(const store::JobRecord& job, int attempt);

}  // namespace trainyard::control
