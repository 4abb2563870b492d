// Internal to tune/: CMA-ES (Hansen's defaults: population 4 + 3 ln d,
// log-rank weights, cumulative step-size adaptation, rank-one and rank-mu
// updates) in the unit cube. Each trial records its generation; the state is
// rebuilt by replaying the finished generations in order, so a resumed
// experiment continues the same search. Failed trials count as the worst
// value of their generation. Continuous and integer parameters only.
#pragma once
#include "tune/sampler.h"

namespace trainyard::tune {

struct CmaEsSettings {
  double sigma0 = 0.3;  // in units of the search range
  int popsize = 0;      // 0 = 4 + floor(3 ln d)
};

class CmaEsSampler final : public Sampler {
 public:
  CmaEsSampler(SearchSpace space, uint64_t seed, CmaEsSettings s);
  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override;

 private:
  SearchSpace space_;
  uint64_t seed_;
  CmaEsSettings s_;
};

}  // namespace trainyard::tune
