// Population Based Training (Jaderberg et al. 2017; Katib's algorithmName:
// pbt) as a sampler. Trials come in generations of n_population members,
// numbered in order: member k of generation g is trial g * n + k. Generation
// 0 samples the space. Member k of generation g + 1 waits until generation
// g has ended, then continues member k's lineage:
//   - exploit: when member k of g ranked in the bottom truncation_threshold
//     (or has no value), it takes the checkpoint and parameters of a member
//     of the top truncation_threshold instead of its own;
//   - explore: the parameters are then perturbed (numbers x0.8 or x1.2,
//     choices one step aside), or, with resample_probability p, each is
//     drawn anew from the space with probability p.
// The trial a new one starts from is its parent (Suggestion::parent): the
// controller copies the parent's checkpoint directory to the new trial's
// before the trial starts (suggestion_trial_dir, where the trial sees it).
// Pure and deterministic like every sampler: a resumed experiment re-derives
// each generation from the stored trials.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "tune/sampler.h"

namespace trainyard::tune {

// Settings n_population (>= 3), truncation_threshold (0..0.5],
// resample_probability ([0, 1]; unset = perturb), suggestion_trial_dir.
// Throws std::invalid_argument naming a bad one.
std::unique_ptr<Sampler> makePbtSampler(const std::map<std::string, std::string>& settings, const SearchSpace& space,
                                        uint64_t seed);

// The parent a PBT trial's note names (Suggestion::meta as stored), if any.
std::optional<int> pbtParent(const std::string& meta);

}  // namespace trainyard::tune
