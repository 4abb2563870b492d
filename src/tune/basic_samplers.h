// Internal to tune/: the samplers that do not learn from results.
#pragma once
#include "tune/sampler.h"

namespace trainyard::tune {

class RandomSampler final : public Sampler {
 public:
  RandomSampler(SearchSpace space, uint64_t seed) : space_(std::move(space)), seed_(seed) {}
  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override;

 private:
  SearchSpace space_;
  uint64_t seed_;
};

// Every combination once; doubles need a step. Ends when the grid is exhausted.
class GridSampler final : public Sampler {
 public:
  explicit GridSampler(SearchSpace space);
  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override;
  size_t total() const;

 private:
  SearchSpace space_;
  std::vector<size_t> sizes_;
};

// Scrambled Sobol' (linear matrix scramble + digital shift), point = trial number.
class SobolSampler final : public Sampler {
 public:
  SobolSampler(SearchSpace space, uint64_t seed);
  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override;

 private:
  SearchSpace space_;
  std::vector<std::vector<uint32_t>> v_;
  std::vector<uint32_t> shift_;
};

}  // namespace trainyard::tune
