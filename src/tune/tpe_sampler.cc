#include "tune/tpe_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tune/pareto.h"
#include "tune/rng.h"

namespace trainyard::tune {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;

double normCdf(double x) { return 0.5 * std::erfc(-x * kInvSqrt2); }

// A mixture over the unit cube: component k has a mean and bandwidth per
// numeric dimension and a distribution per categorical dimension.
struct Parzen {
  std::vector<double> log_w;
  std::vector<std::vector<double>> mu, sigma;        // [component][dim]
  std::vector<std::vector<std::vector<double>>> cat; // [component][dim][choice] (log probs)
  std::vector<double> log_norm;                      // [component*dims + dim]: log of truncation mass

  // Per component: log weight plus the constant parts of its numeric factors
  // (-log sigma - log sqrt(2 pi) - log truncation mass), so that log_pdf
  // does only the quadratic terms in its inner loop.
  std::vector<double> log_const;
  std::vector<double> inv_sigma;  // [component*dims + dim]

  void precompute(const SearchSpace& space) {
    size_t d = space.size();
    log_const.assign(log_w.size(), 0);
    inv_sigma.assign(log_w.size() * d, 0);
    for (size_t k = 0; k < log_w.size(); ++k) {
      log_const[k] = log_w[k];
      for (size_t j = 0; j < d; ++j) {
        if (space.params[j].isCategorical()) continue;
        log_const[k] += -kLogSqrt2Pi - std::log(sigma[k][j]) - log_norm[k * d + j];
        inv_sigma[k * d + j] = 1.0 / sigma[k][j];
      }
    }
  }

  double logPdf(const std::vector<double>& u, const SearchSpace& space, std::vector<double>& terms) const {
    double best = -std::numeric_limits<double>::infinity();
    terms.resize(log_w.size());
    size_t d = space.size();
    for (size_t k = 0; k < log_w.size(); ++k) {
      double t = log_const[k];
      const double* m = mu[k].data();
      const double* is = &inv_sigma[k * d];
      for (size_t j = 0; j < d; ++j) {
        if (space.params[j].isCategorical()) {
          t += cat[k][j][static_cast<size_t>(u[j])];
        } else {
          double z = (u[j] - m[j]) * is[j];
          t -= 0.5 * z * z;
        }
      }
      terms[k] = t;
      best = std::max(best, t);
    }
    double s = 0;
    for (double t : terms) s += std::exp(t - best);
    return best + std::log(s);
  }

  std::vector<double> sample(Rng& rng, const SearchSpace& space) const {
    // Component by weight, then each dimension from it (truncated to [0, 1]).
    double r = rng.uniform(), acc = 0;
    size_t k = 0;
    for (; k + 1 < log_w.size(); ++k) {
      acc += std::exp(log_w[k]);
      if (r <= acc) break;
    }
    std::vector<double> u(space.size());
    for (size_t j = 0; j < space.size(); ++j) {
      if (space.params[j].isCategorical()) {
        double rr = rng.uniform(), a = 0;
        size_t c = 0;
        for (; c + 1 < cat[k][j].size(); ++c) {
          a += std::exp(cat[k][j][c]);
          if (rr <= a) break;
        }
        u[j] = static_cast<double>(c);
      } else {
        // Truncated normal by rejection: every mean lies in [0, 1] and every
        // bandwidth is <= 1, so at least a third of the mass is inside.
        double x = mu[k][j];
        for (int tries = 0; tries < 64; ++tries) {
          double c = mu[k][j] + sigma[k][j] * rng.normal();
          if (c >= 0 && c <= 1) {
            x = c;
            break;
          }
        }
        u[j] = std::clamp(x, 0.0, 1.0);
      }
    }
    return u;
  }
};

// Unit coordinates of a trial's point (categorical: the index).
std::vector<double> toUnit(const SearchSpace& space, const Point& p) {
  std::vector<double> u(space.size());
  for (size_t j = 0; j < space.size(); ++j)
    u[j] = space.params[j].isCategorical() ? p[j] : space.params[j].toUnit(p[j]);
  return u;
}

Parzen fit(const std::vector<std::vector<double>>& obs, const std::vector<double>& weights, const SearchSpace& space,
           double prior_weight, double bandwidth) {
  Parzen pz;
  size_t n = obs.size(), d = space.size();
  // Bandwidth: Scott-like shrinkage with the number of observations, clipped
  // to [1/min(100, n+2), 1] of the range ("magic clip").
  double sigma0 = bandwidth * std::pow(std::max<double>(n, 1), -1.0 / (static_cast<double>(d) + 4));
  double min_sigma = 1.0 / std::min(100.0, static_cast<double>(n) + 2.0);
  double total = prior_weight + std::accumulate(weights.begin(), weights.end(), 0.0);
  auto add = [&](const std::vector<double>* o, double w) {
    pz.log_w.push_back(std::log(w / total));
    std::vector<double> mu(d), sg(d);
    std::vector<std::vector<double>> cat(d);
    for (size_t j = 0; j < d; ++j) {
      const Param& p = space.params[j];
      if (p.isCategorical()) {
        size_t nc = p.values.size();
        // The observed choice, smoothed toward uniform by the prior weight.
        double eps = prior_weight / static_cast<double>(nc) / (static_cast<double>(n) + 1.0);
        cat[j].assign(nc, o ? eps : 1.0 / static_cast<double>(nc));
        if (o) cat[j][static_cast<size_t>((*o)[j])] += 1.0;
        double s = std::accumulate(cat[j].begin(), cat[j].end(), 0.0);
        for (auto& c : cat[j]) c = std::log(c / s);
      } else {
        mu[j] = o ? (*o)[j] : 0.5;
        sg[j] = o ? std::clamp(sigma0, min_sigma, 1.0) : 1.0;
      }
    }
    pz.mu.push_back(mu);
    pz.sigma.push_back(sg);
    pz.cat.push_back(cat);
  };
  for (size_t i = 0; i < n; ++i) add(&obs[i], weights[i]);
  add(nullptr, prior_weight);
  pz.log_norm.resize(pz.log_w.size() * d);
  for (size_t k = 0; k < pz.log_w.size(); ++k)
    for (size_t j = 0; j < d; ++j) {
      if (space.params[j].isCategorical()) continue;
      double mass = normCdf((1 - pz.mu[k][j]) / pz.sigma[k][j]) - normCdf((0 - pz.mu[k][j]) / pz.sigma[k][j]);
      pz.log_norm[k * d + j] = std::log(std::max(mass, 1e-300));
    }
  pz.precompute(space);
  return pz;
}

// Optuna's default weights: recent trials count fully, older ones ramp down past 25.
std::vector<double> defaultWeights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n < 25) return w;
  size_t ramp = n - 25;
  for (size_t i = 0; i < ramp; ++i) w[i] = 1.0 / static_cast<double>(n) + (1.0 - 1.0 / static_cast<double>(n)) * static_cast<double>(i) / static_cast<double>(std::max<size_t>(ramp - 1, 1));
  return w;
}

}  // namespace

std::optional<Suggestion> TpeSampler::ask(int number, const std::vector<TrialView>& history) {
  std::vector<const TrialView*> complete, bad;
  for (const auto& t : history) {
    if (t.state == TrialView::State::Complete && !t.values.empty()) complete.push_back(&t);
    else if (t.state == TrialView::State::Pruned) bad.push_back(&t);
    else if (t.state == TrialView::State::Running && s_.constant_liar && t.number != number) bad.push_back(&t);
  }
  if (static_cast<int>(complete.size()) < s_.n_startup_trials) return Suggestion{randomPoint(space_, seed_, number), ""};

  size_t n = complete.size();
  for (auto* t : bad) n += t->state == TrialView::State::Pruned;  // running trials do not count, as in Optuna
  size_t n_below = std::min<size_t>(static_cast<size_t>(std::ceil(s_.gamma * static_cast<double>(n))),
                                    static_cast<size_t>(s_.gamma_cap));
  n_below = std::min(n_below, complete.size());
  // Order complete trials best first: by value, or by Pareto rank then crowding.
  std::vector<size_t> order(complete.size());
  std::iota(order.begin(), order.end(), 0);
  if (complete[0]->values.size() == 1) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return complete[a]->values[0] < complete[b]->values[0]; });
  } else {
    std::vector<std::vector<double>> pts;
    for (auto* t : complete) pts.push_back(t->values);
    auto ranks = paretoRanks(pts);
    auto crowd = crowding(pts, ranks);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return ranks[a] != ranks[b] ? ranks[a] < ranks[b] : crowd[a] > crowd[b];
    });
  }
  std::vector<const TrialView*> below, above;
  for (size_t i = 0; i < order.size(); ++i) (i < n_below ? below : above).push_back(complete[order[i]]);
  above.insert(above.end(), bad.begin(), bad.end());
  auto byNumber = [](const TrialView* a, const TrialView* b) { return a->number < b->number; };
  std::sort(below.begin(), below.end(), byNumber);
  std::sort(above.begin(), above.end(), byNumber);

  auto build = [&](const std::vector<const TrialView*>& group) {
    std::vector<std::vector<double>> obs;
    for (auto* t : group) obs.push_back(toUnit(space_, t->point));
    return fit(obs, defaultWeights(obs.size()), space_, s_.prior_weight, s_.bandwidth);
  };
  Parzen l = build(below), g = build(above);
  Rng rng(seed_, static_cast<uint64_t>(number));
  std::vector<double> best;
  double best_score = -std::numeric_limits<double>::infinity();
  std::vector<double> scratch;
  for (int c = 0; c < s_.n_ei_candidates; ++c) {
    auto u = l.sample(rng, space_);
    double score = l.logPdf(u, space_, scratch) - g.logPdf(u, space_, scratch);
    if (score > best_score) best_score = score, best = u;
  }
  Point p(space_.size());
  for (size_t j = 0; j < space_.size(); ++j)
    p[j] = space_.params[j].isCategorical() ? best[j] : space_.params[j].fromUnit(best[j]);
  return Suggestion{p, ""};
}

}  // namespace trainyard::tune
