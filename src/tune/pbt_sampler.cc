#include "tune/pbt_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/rng.h"
#include "tune/settings.h"

namespace trainyard::tune {
namespace {

constexpr const char* kParentTag = " parent ";

class PbtSampler final : public Sampler {
 public:
  PbtSampler(const SearchSpace& space, uint64_t seed, int population, double truncation, std::optional<double> resample)
      : space_(space), seed_(seed), n_(population), truncation_(truncation), resample_(resample) {}

  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override {
    Suggestion out;
    int generation = number / n_, member = number % n_;
    if (generation == 0) {
      out.point = randomPoint(space_, seed_, number);
      out.meta = fmt::format("pbt generation 0 member {}", member);
      return out;
    }
    // The generation before, ranked once it has ended: lower is better; no value is worst.
    int first = (generation - 1) * n_;
    std::vector<const TrialView*> before;
    for (const auto& t : history)
      if (t.number >= first && t.number < first + n_) before.push_back(&t);
    bool ended = before.size() == static_cast<size_t>(n_) &&
                 std::none_of(before.begin(), before.end(), [](const auto* t) { return t->state == TrialView::State::Running; });
    if (!ended) {
      out.wait = true;
      return out;
    }
    auto value = [](const TrialView* t) { return t->values.empty() ? std::numeric_limits<double>::infinity() : t->values[0]; };
    std::vector<const TrialView*> ranked = before;
    std::stable_sort(ranked.begin(), ranked.end(), [&](const auto* a, const auto* b) {
      return value(a) != value(b) ? value(a) < value(b) : a->number < b->number;
    });
    int cut = std::max(1, static_cast<int>(std::floor(n_ * truncation_ + 1e-9)));
    const TrialView* own = *std::find_if(before.begin(), before.end(), [&](const auto* t) { return t->number == first + member; });
    int rank = static_cast<int>(std::find(ranked.begin(), ranked.end(), own) - ranked.begin());
    Rng rng(seed_, static_cast<uint64_t>(number));
    const TrialView* parent = own;
    if (rank >= n_ - cut || !std::isfinite(value(own))) {
      // Exploit: a member of the top `cut` (that has a value) replaces this one.
      int top = 0;
      while (top < cut && std::isfinite(value(ranked[static_cast<size_t>(top)]))) ++top;
      if (top > 0) parent = ranked[rng.index(static_cast<size_t>(top))];
    }
    out.point = explore(parent->point, rng);
    out.meta = fmt::format("pbt generation {} member {}{}{}", generation, member, kParentTag, parent->number);
    if (parent != own) out.meta += fmt::format(" (exploited; trial {} ranked {} of {})", own->number, rank + 1, n_);
    return out;
  }

 private:
  Point explore(Point p, Rng& rng) const {
    for (size_t j = 0; j < space_.params.size(); ++j) {
      const Param& q = space_.params[j];
      if (resample_) {
        if (rng.uniform() < *resample_) p[j] = q.fromUnit(rng.uniform());
        continue;
      }
      bool up = rng.uniform() < 0.5;
      if (q.type == Param::Type::Categorical || q.type == Param::Type::Discrete) {
        // One step aside, as Katib: past the ends it wraps.
        auto n = static_cast<double>(q.values.size());
        p[j] = std::fmod(p[j] + (up ? 1 : n - 1), n);
      } else {
        double v = p[j] * (up ? 1.2 : 0.8);
        if (q.type == Param::Type::Int) v = std::round(v);
        if (q.step > 0) v = q.min + std::round((v - q.min) / q.step) * q.step;
        p[j] = std::clamp(v, q.min, q.max);
      }
    }
    return p;
  }

  SearchSpace space_;
  uint64_t seed_;
  int n_;
  double truncation_;
  std::optional<double> resample_;
};

}  // namespace

std::unique_ptr<Sampler> makePbtSampler(const std::map<std::string, std::string>& settings, const SearchSpace& space,
                                        uint64_t seed) {
  Settings s("algorithm pbt", settings,
             {"n_population", "truncation_threshold", "resample_probability", "suggestion_trial_dir", "random_state"});
  double n = s.number("n_population", 40, 3);
  if (n != std::floor(n) || n > 10000)
    throw std::invalid_argument(fmt::format("algorithm pbt: setting n_population must be a whole number from 3 to 10000, got {}", n));
  double truncation = s.number("truncation_threshold", 0.2, 0);
  if (truncation <= 0 || truncation > 0.5)
    throw std::invalid_argument(fmt::format("algorithm pbt: setting truncation_threshold must be in (0, 0.5], got {}", truncation));
  std::optional<double> resample;
  if (settings.count("resample_probability")) {
    resample = s.number("resample_probability", 0, 0);
    if (*resample > 1)
      throw std::invalid_argument(fmt::format("algorithm pbt: setting resample_probability must be in [0, 1], got {}", *resample));
  }
  auto dir = settings.find("suggestion_trial_dir");
  if (dir == settings.end())
    throw std::invalid_argument("algorithm pbt: set suggestion_trial_dir (where each trial finds and saves its checkpoint)");
  if (dir->second.size() < 2 || dir->second[0] != '/')
    throw std::invalid_argument(
        fmt::format("algorithm pbt: setting suggestion_trial_dir must be an absolute path, got \"{}\"", dir->second));
  return std::make_unique<PbtSampler>(space, seed, static_cast<int>(n), truncation, resample);
}

std::optional<int> pbtParent(const std::string& meta) {
  if (!meta.starts_with("pbt ")) return std::nullopt;
  auto at = meta.find(kParentTag);
  if (at == std::string::npos) return std::nullopt;
  return std::atoi(meta.c_str() + at + std::string(kParentTag).size());
}

}  // namespace trainyard::tune
