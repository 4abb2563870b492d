// Samplers suggest the parameters of the next trial from the history of the
// experiment. Pure and deterministic: a sampler's randomness comes from the
// experiment seed and the trial number, and everything it needs is in the
// history, so a resumed experiment rebuilds its state from stored trials.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tune/space.h"

namespace trainyard::tune {

struct TrialView {
  enum class State { Running, Complete, Failed, Pruned };
  int number = 0;
  State state = State::Running;
  Point point;
  // Objective values oriented so that lower is better (maximised ones negated);
  // empty unless Complete (or Pruned with a last intermediate value).
  std::vector<double> values;
  // Intermediate values of the first objective by step, oriented likewise.
  std::map<int64_t, double> intermediate;
  std::string meta;  // what the sampler attached to this trial when it suggested it
  int rung = -1;     // highest early-stopping rung this trial has passed
};

struct Suggestion {
  Point point;
  std::string meta;
  // Not yet: what comes next depends on trials still running (Katib's
  // hyperband waits for a rung to end). Asked again on a later pass.
  bool wait = false;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Parameters for trial `number`; std::nullopt when the space is exhausted (grid).
  virtual std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) = 0;
};

struct SamplerConfig {
  std::string name;  // random | grid | sobol | tpe | gp | cmaes
  std::map<std::string, std::string> settings;
  uint64_t seed = 0;
  size_t objectives = 1;
};

// Throws std::invalid_argument naming the algorithm, setting or parameter
// that cannot be used (e.g. cmaes with a categorical parameter).
std::unique_ptr<Sampler> makeSampler(const SamplerConfig& config, const SearchSpace& space);

// Shared by samplers: a uniformly random point.
Point randomPoint(const SearchSpace& space, uint64_t seed, int number);

}  // namespace trainyard::tune
