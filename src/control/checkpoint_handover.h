// PBT's checkpoint hand-over (tune/pbt_sampler.h): every trial of a PBT
// experiment has a checkpoint directory of its own on this machine, seeded
// from its parent's before it starts and mounted where the trial looks
// (suggestion_trial_dir). Seeding copies into a temporary directory and
// renames it into place, so a crash leaves the old directory or the new one,
// never half a copy; a trial run again (after a crash) is seeded again, as
// its first run may have written half a checkpoint.
#pragma once
#include <string>

#include "spec/trainjob.h"
#include "store/store.h"

namespace trainyard::control {

// <data_dir>/checkpoints/<experiment>-<id>/<trial number>
std::string trialCheckpointDir(const std::string& data_dir, const store::ExperimentRecord& e, int number);

// Makes the trial's directory: a copy of its parent's (tune::pbtParent of
// its note), else empty; owned by run_uid when >= 0. Throws std::runtime_error.
void seedCheckpoint(const std::string& data_dir, const store::ExperimentRecord& e, const store::TrialRecord& t,
                    int run_uid, int run_gid);

// Mounts the trial's directory at `at` in every role of its job, and tells
// the program where it is (TRAINYARD_CHECKPOINT_DIR).
void mountCheckpoint(spec::TrainJobSpec& job, const std::string& dir, const std::string& at);

}  // namespace trainyard::control
