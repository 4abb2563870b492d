#include "tune/hyperband_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/settings.h"

namespace trainyard::tune {

HyperbandPlan hyperbandPlan(double eta, double r_l) {
  if (!(eta >= 2)) throw std::invalid_argument(fmt::format("algorithm hyperband: eta must be at least 2, got {}", eta));
  if (!(r_l >= 1)) throw std::invalid_argument(fmt::format("algorithm hyperband: r_l must be at least 1, got {}", r_l));
  // A little slack so log_3(9) is 2, not 1.9999.
  int s_max = static_cast<int>(std::floor(std::log(r_l) / std::log(eta) + 1e-9));
  if (s_max > 12) throw std::invalid_argument("algorithm hyperband: r_l / eta give more than 13 brackets");
  HyperbandPlan plan;
  for (int s = s_max; s >= 0; --s) {
    int n = static_cast<int>(std::ceil((s_max + 1) * std::pow(eta, s) / (s + 1) - 1e-9));
    double r = r_l * std::pow(eta, -s);
    int size = n, previous_first = -1, previous_size = 0;
    for (int i = 0; i <= s; ++i) {
      if (i > 0) {
        // The best ceil(n_{i-1} / eta) of the rung before, n_{i-1} = ceil(n * eta^-(i-1)).
        int n_prev = static_cast<int>(std::ceil(n * std::pow(eta, -(i - 1)) - 1e-9));
        size = std::max(1, static_cast<int>(std::ceil(n_prev / eta - 1e-9)));
        size = std::min(size, previous_size);
      }
      int first = static_cast<int>(plan.slots.size());
      double resource = std::floor(r * std::pow(eta, i) + 1e-9);
      for (int k = 0; k < size; ++k) plan.slots.push_back({s, i, k, size, first, previous_first, previous_size, resource});
      previous_first = first;
      previous_size = size;
    }
  }
  return plan;
}

namespace {

class HyperbandSampler final : public Sampler {
 public:
  HyperbandSampler(const SearchSpace& space, uint64_t seed, size_t resource, HyperbandPlan plan)
      : space_(space), seed_(seed), resource_(resource), plan_(std::move(plan)) {}

  std::optional<Suggestion> ask(int number, const std::vector<TrialView>& history) override {
    if (number < 0 || static_cast<size_t>(number) >= plan_.slots.size()) return std::nullopt;  // every bracket done
    const auto& slot = plan_.slots[static_cast<size_t>(number)];
    Suggestion out;
    out.meta = fmt::format("hyperband bracket {} rung {} resource {}", slot.bracket, slot.rung, slot.resource);
    if (slot.rung == 0) {
      out.point = randomPoint(space_, seed_, number);
    } else {
      // The rung before, ranked once it has ended: lower is better; no value is worst.
      std::vector<const TrialView*> before;
      for (const auto& t : history)
        if (t.number >= slot.first_of_previous && t.number < slot.first_of_previous + slot.previous_size) before.push_back(&t);
      bool ended = before.size() == static_cast<size_t>(slot.previous_size) &&
                   std::none_of(before.begin(), before.end(), [](const auto* t) { return t->state == TrialView::State::Running; });
      if (!ended) {
        out.wait = true;
        return out;
      }
      auto value = [](const TrialView* t) {
        return t->values.empty() ? std::numeric_limits<double>::infinity() : t->values[0];
      };
      std::stable_sort(before.begin(), before.end(), [&](const auto* a, const auto* b) {
        return value(a) != value(b) ? value(a) < value(b) : a->number < b->number;
      });
      out.point = before[static_cast<size_t>(slot.index)]->point;
      out.meta += fmt::format(", promoted from trial {}", before[static_cast<size_t>(slot.index)]->number);
    }
    out.point[resource_] = slot.resource;
    return out;
  }

 private:
  SearchSpace space_;
  uint64_t seed_;
  size_t resource_;
  HyperbandPlan plan_;
};

}  // namespace

std::unique_ptr<Sampler> makeHyperbandSampler(const std::map<std::string, std::string>& settings, const SearchSpace& space,
                                              uint64_t seed) {
  Settings s("algorithm hyperband", settings, {"resource_name", "eta", "r_l", "random_state"});
  auto name = settings.find("resource_name");
  if (name == settings.end()) throw std::invalid_argument("algorithm hyperband: set resource_name (the parameter it sets per rung)");
  size_t resource = space.params.size();
  for (size_t j = 0; j < space.params.size(); ++j)
    if (space.params[j].name == name->second) resource = j;
  if (resource == space.params.size())
    throw std::invalid_argument(fmt::format("algorithm hyperband: resource_name \"{}\" is not a parameter", name->second));
  if (space.params[resource].isCategorical())
    throw std::invalid_argument(fmt::format("algorithm hyperband: resource_name \"{}\" must be a number parameter", name->second));
  if (!settings.count("r_l")) throw std::invalid_argument("algorithm hyperband: set r_l (the largest resource a trial gets)");
  return std::make_unique<HyperbandSampler>(space, seed, resource, hyperbandPlan(s.number("eta", 3, 0), s.number("r_l", 1, 0)));
}

}  // namespace trainyard::tune
