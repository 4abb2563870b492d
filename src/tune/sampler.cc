#include "tune/sampler.h"

#include "tune/hyperband_sampler.h"
#include "tune/pbt_sampler.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/basic_samplers.h"
#include "tune/cmaes_sampler.h"
#include "tune/gp_sampler.h"
#include "tune/settings.h"
#include "tune/tpe_sampler.h"

namespace trainyard::tune {

std::unique_ptr<Sampler> makeSampler(const SamplerConfig& c, const SearchSpace& space) {
  if (space.params.empty()) throw std::invalid_argument("the search space has no parameters");
  uint64_t seed = c.seed;
  if (auto it = c.settings.find("random_state"); it != c.settings.end()) seed = std::strtoull(it->second.c_str(), nullptr, 10);
  if (c.objectives > 1 && c.name != "random" && c.name != "tpe" && c.name != "sobol" && c.name != "grid")
    throw std::invalid_argument(fmt::format(
        "algorithm {} optimises one objective; with {} objectives use tpe (multi-objective TPE), random, sobol or grid",
        c.name, c.objectives));
  if (c.name == "hyperband") return makeHyperbandSampler(c.settings, space, seed);
  if (c.name == "pbt") return makePbtSampler(c.settings, space, seed);
  if (c.name == "random") {
    Settings s("algorithm " + c.name, c.settings, {"random_state"});
    return std::make_unique<RandomSampler>(space, seed);
  }
  if (c.name == "grid") {
    Settings s("algorithm " + c.name, c.settings, {});
    return std::make_unique<GridSampler>(space);
  }
  if (c.name == "sobol") {
    Settings s("algorithm " + c.name, c.settings, {"random_state"});
    return std::make_unique<SobolSampler>(space, seed);
  }
  if (c.name == "tpe") {
    Settings s("algorithm " + c.name, c.settings, {"n_startup_trials", "n_ei_candidates", "prior_weight", "constant_liar", "random_state", "gamma",
                   "gamma_cap", "bandwidth"});
    TpeSettings t;
    t.n_startup_trials = static_cast<int>(s.number("n_startup_trials", t.n_startup_trials, 0));
    t.n_ei_candidates = static_cast<int>(s.number("n_ei_candidates", t.n_ei_candidates, 1));
    t.prior_weight = s.number("prior_weight", t.prior_weight, 1e-9);
    t.constant_liar = s.flag("constant_liar", t.constant_liar);
    t.gamma = s.number("gamma", t.gamma, 0.01);
    t.gamma_cap = static_cast<int>(s.number("gamma_cap", t.gamma_cap, 1));
    t.bandwidth = s.number("bandwidth", t.bandwidth, 0.001);
    return std::make_unique<TpeSampler>(space, seed, t);
  }
  if (c.name == "gp") {
    Settings s("algorithm " + c.name, c.settings, {"n_startup_trials", "n_initial_points", "max_points", "n_candidates", "random_state", "base_estimator",
                   "acq_func"});
    GpSettings g;
    g.n_startup_trials = static_cast<int>(s.number("n_startup_trials", s.number("n_initial_points", g.n_startup_trials, 1), 1));
    g.max_points = static_cast<int>(s.number("max_points", g.max_points, 20));
    g.n_candidates = static_cast<int>(s.number("n_candidates", g.n_candidates, 10));
    return std::make_unique<GpSampler>(space, seed, g);
  }
  if (c.name == "cmaes") {
    Settings s("algorithm " + c.name, c.settings, {"sigma", "popsize", "random_state", "restart_strategy"});
    CmaEsSettings m;
    m.sigma0 = s.number("sigma", m.sigma0, 1e-6);
    m.popsize = static_cast<int>(s.number("popsize", 0, 0));
    return std::make_unique<CmaEsSampler>(space, seed, m);
  }
  throw std::invalid_argument(
      fmt::format("unknown algorithm \"{}\" (expected random, grid, sobol, tpe, gp or cmaes)", c.name));
}

}  // namespace trainyard::tune
