// Internal to tune/: Gaussian-process Bayesian optimisation. Matern 5/2
// kernel with one length scale per input (ARD), signal and noise variance
// fitted by maximising the log marginal likelihood (analytic gradients,
// Adam, weak log-normal priors); log expected improvement, maximised over
// random and local candidates. Running trials enter as "kriging believer"
// fantasies (their predicted mean), so a batch of parallel suggestions
// spreads out. Categorical parameters are one-hot inputs. Past max_points
// observations the model is fitted on a subset (the best third, then the most
// recent) so a suggestion stays cheap after thousands of trials.
#pragma once
#include "tune/sampler.h"

namespace trainyard::tune {

struct GpSettings {
  int n_startup_trials = 10;
  int max_points = 250;
  int n_candidates = 1000;
};

class GpSampler final : public Sampler {
 public:
  GpSampler(SearchSpace space, uint64_t seed, GpSettings s) : space_(std::move(space)), seed_(seed), s_(s) {}
  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override;

 private:
  SearchSpace space_;
  uint64_t seed_;
  GpSettings s_;
};

// log(E[max(0, -z)]-style improvement): log(phi(z) + z * Phi(z)), stable for very negative z.
double logH(double z);

}  // namespace trainyard::tune
