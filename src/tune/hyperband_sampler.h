// Katib's Hyperband as a suggestion algorithm (algorithmName: hyperband):
// the sampler drives the brackets itself, setting each trial's resource
// parameter (resource_name, e.g. num-epochs) per bracket and rung, as
// Li et al. and Katib's suggestion service do:
//   s_max = floor(log_eta(r_l)); bracket s = s_max..0 starts
//   n = ceil((s_max + 1) * eta^s / (s + 1)) random configurations at
//   resource int(r_l * eta^-s); each next rung runs the best
//   ceil(n_prev / eta) of the one before at eta times the resource.
// A rung waits until the one before has ended (its trials are ranked by the
// objective). Unlike Trainyard's hyperband early stopping, nothing is
// stopped: every trial runs to its resource, and a promoted configuration
// runs again, longer, as a new trial. Pure: its plan is fixed by the
// settings, and every choice is read from the stored trials, so a resumed
// experiment continues where it was.
#pragma once
#include <map>
#include <string>

#include "tune/sampler.h"

namespace trainyard::tune {

struct HyperbandPlan {
  struct Slot {
    int bracket = 0;   // s
    int rung = 0;      // i
    int index = 0;     // within the rung
    int rung_size = 0;
    int first_of_rung = 0;  // trial number of the rung's first slot
    int first_of_previous = -1;
    int previous_size = 0;
    double resource = 0;
  };
  std::vector<Slot> slots;  // trial number -> slot
};

// Settings resource_name, eta (>= 2, default 3), r_l (>= 1). Throws
// std::invalid_argument naming a bad one.
HyperbandPlan hyperbandPlan(double eta, double r_l);

std::unique_ptr<Sampler> makeHyperbandSampler(const std::map<std::string, std::string>& settings,
                                              const SearchSpace& space, uint64_t seed);

}  // namespace trainyard::tune
