#include "tune/early_stopping.h"

#include "tune/settings.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace trainyard::tune {
namespace {

// The value of a series at the first step >= `step`, if it got there.
std::optional<double> valueAt(const std::map<int64_t, double>& series, int64_t step) {
  auto it = series.lower_bound(step);
  if (it == series.end()) return std::nullopt;
  return it->second;
}

class MedianStopper final : public EarlyStopper {
 public:
  MedianStopper(int min_trials, int64_t start_step) : min_trials_(min_trials), start_step_(start_step) {}
  std::optional<StopDecision> decide(const TrialView& t, const std::vector<TrialView>& all) override {
    if (t.intermediate.empty()) return std::nullopt;
    auto [step, value] = *t.intermediate.rbegin();
    if (step < start_step_) return std::nullopt;
    std::vector<double> others;
    for (const auto& o : all) {
      if (o.number == t.number) continue;
      if (o.state != TrialView::State::Complete && o.state != TrialView::State::Pruned) continue;
      auto it = o.intermediate.find(step);
      if (it != o.intermediate.end()) others.push_back(it->second);
    }
    if (static_cast<int>(others.size()) < min_trials_) return std::nullopt;
    std::sort(others.begin(), others.end());
    size_t n = others.size();
    double median = n % 2 ? others[n / 2] : 0.5 * (others[n / 2 - 1] + others[n / 2]);
    if (value <= median) return std::nullopt;
    return StopDecision{true, -1, step,
                        fmt::format("at step {} its value is worse than the median of {} finished trials", step, n)};
  }

 private:
  int min_trials_;
  int64_t start_step_;
};

class AshaStopper final : public EarlyStopper {
 public:
  AshaStopper(double min_resource, double eta, double max_resource, int brackets)
      : min_(min_resource), eta_(eta), max_(max_resource), brackets_(brackets) {}

  std::optional<StopDecision> decide(const TrialView& t, const std::vector<TrialView>& all) override {
    if (t.intermediate.empty()) return std::nullopt;
    int64_t latest = t.intermediate.rbegin()->first;
    int bracket = t.number % brackets_;
    // The next rung this trial has not passed yet, if it has reached it.
    int k = t.rung + 1;
    double r = rungResource(bracket, k);
    if (max_ > 0 && r >= max_) return std::nullopt;  // the last stretch runs to completion
    if (static_cast<double>(latest) < r) return std::nullopt;
    int64_t rung_step = static_cast<int64_t>(std::ceil(r));
    double mine = *valueAt(t.intermediate, rung_step);
    std::vector<double> competing{mine};
    for (const auto& o : all) {
      if (o.number == t.number || o.number % brackets_ != bracket) continue;
      if (auto v = valueAt(o.intermediate, rung_step)) competing.push_back(*v);
    }
    std::sort(competing.begin(), competing.end());
    // Promote the top 1/eta; while fewer than eta trials reached the rung, only the best goes on.
    int idx = static_cast<int>(static_cast<double>(competing.size()) / eta_) - 1;
    if (idx < 0) idx = 0;
    bool promote = mine <= competing[static_cast<size_t>(idx)];
    return StopDecision{!promote, k, rung_step,
                        promote ? fmt::format("passed rung {} (resource {})", k, rung_step)
                                : fmt::format("not in the top 1/{} of {} trials at rung {} (resource {})", eta_,
                                              competing.size(), k, rung_step)};
  }

 private:
  double rungResource(int bracket, int k) const { return min_ * std::pow(eta_, bracket + k); }
  double min_, eta_, max_;
  int brackets_;
};

}  // namespace

std::unique_ptr<EarlyStopper> makeEarlyStopper(const EarlyStoppingConfig& c) {
  std::string context = "earlyStopping " + c.name;
  if (c.name == "median" || c.name == "medianstop") {
    Settings s(context, c.settings, {"min_trials_required", "start_step"});
    return std::make_unique<MedianStopper>(static_cast<int>(s.number("min_trials_required", 3, 1)),
                                           static_cast<int64_t>(s.number("start_step", 4, 0)));
  }
  if (c.name == "asha" || c.name == "hyperband") {
    Settings s(context, c.settings, {"min_resource", "max_resource", "reduction_factor"});
    double min_r = s.number("min_resource", 1, 1e-9);
    double eta = s.number("reduction_factor", 3, 2);
    double max_r = s.number("max_resource", 0, 0);
    if (max_r > 0 && max_r <= min_r)
      throw std::invalid_argument(fmt::format("{}: max_resource ({}) must exceed min_resource ({})", context, max_r, min_r));
    int brackets = 1;
    if (c.name == "hyperband") {
      if (max_r <= 0) throw std::invalid_argument("earlyStopping hyperband: set max_resource (e.g. the number of epochs)");
      brackets = static_cast<int>(std::floor(std::log(max_r / min_r) / std::log(eta) + 1e-9)) + 1;
    }
    return std::make_unique<AshaStopper>(min_r, eta, max_r, brackets);
  }
  throw std::invalid_argument(
      fmt::format("earlyStopping: unknown algorithm \"{}\" (expected median, asha or hyperband)", c.name));
}

}  // namespace trainyard::tune
