#include "tune/cmaes_sampler.h"

#include <Eigen/Dense>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/rng.h"

namespace trainyard::tune {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

struct State {
  int d, lambda, mu;
  VectorXd weights;
  double mueff, cc, cs, c1, cmu, damps, chiN;
  VectorXd mean, pc, ps;
  MatrixXd C, B;
  VectorXd D;
  double sigma;
  int generation = 0;

  State(int dims, int popsize, double sigma0) : d(dims) {
    lambda = popsize > 0 ? popsize : 4 + static_cast<int>(std::floor(3 * std::log(static_cast<double>(d))));
    mu = lambda / 2;
    weights.resize(mu);
    for (int i = 0; i < mu; ++i) weights[i] = std::log(mu + 0.5) - std::log(i + 1.0);
    weights /= weights.sum();
    mueff = 1.0 / weights.squaredNorm();
    double n = d;
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n);
    cs = (mueff + 2) / (n + mueff + 5);
    c1 = 2 / ((n + 1.3) * (n + 1.3) + mueff);
    cmu = std::min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) * (n + 2) + mueff));
    damps = 1 + 2 * std::max(0.0, std::sqrt((mueff - 1) / (n + 1)) - 1) + cs;
    chiN = std::sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    mean = VectorXd::Constant(d, 0.5);
    pc = ps = VectorXd::Zero(d);
    C = B = MatrixXd::Identity(d, d);
    D = VectorXd::Ones(d);
    sigma = sigma0;
  }

  // y = (x - mean) / sigma for each evaluated x, best first.
  void update(const std::vector<std::pair<double, VectorXd>>& evaluated) {
    std::vector<std::pair<double, VectorXd>> sorted = evaluated;
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    VectorXd old = mean;
    VectorXd y_w = VectorXd::Zero(d);
    std::vector<VectorXd> ys;
    for (int i = 0; i < mu; ++i) {
      VectorXd y = (sorted[i].second - old) / sigma;
      ys.push_back(y);
      y_w += weights[i] * y;
    }
    mean = old + sigma * y_w;
    MatrixXd invsqrtC = B * D.cwiseInverse().asDiagonal() * B.transpose();
    ps = (1 - cs) * ps + std::sqrt(cs * (2 - cs) * mueff) * invsqrtC * y_w;
    double psn = ps.norm();
    bool hsig = psn / std::sqrt(1 - std::pow(1 - cs, 2.0 * (generation + 1))) / chiN < 1.4 + 2.0 / (d + 1);
    pc = (1 - cc) * pc + (hsig ? std::sqrt(cc * (2 - cc) * mueff) : 0.0) * y_w;
    MatrixXd rank_mu = MatrixXd::Zero(d, d);
    for (int i = 0; i < mu; ++i) rank_mu += weights[i] * ys[i] * ys[i].transpose();
    C = (1 - c1 - cmu) * C + c1 * (pc * pc.transpose() + (hsig ? 0.0 : cc * (2 - cc)) * C) + cmu * rank_mu;
    sigma *= std::exp((cs / damps) * (psn / chiN - 1));
    sigma = std::clamp(sigma, 1e-8, 1.0);
    C = (C + C.transpose()) / 2;
    Eigen::SelfAdjointEigenSolver<MatrixXd> es(C);
    B = es.eigenvectors();
    D = es.eigenvalues().cwiseMax(1e-20).cwiseSqrt();
    ++generation;
  }
};

int generationOf(const std::string& meta) {
  return meta.rfind("gen=", 0) == 0 ? std::atoi(meta.c_str() + 4) : -1;
}

}  // namespace

CmaEsSampler::CmaEsSampler(SearchSpace space, uint64_t seed, CmaEsSettings s)
    : space_(std::move(space)), seed_(seed), s_(s) {
  for (const auto& p : space_.params)
    if (p.isCategorical() || p.type == Param::Type::Discrete)
      throw std::invalid_argument(fmt::format(
          "cmaes: parameter {} is {}; CMA-ES handles double and int parameters only (use tpe, gp or random)", p.name,
          p.isCategorical() ? "categorical" : "discrete"));
  if (space_.size() < 2) throw std::invalid_argument("cmaes needs at least 2 parameters (use gp or tpe for one)");
}

std::optional<Suggestion> CmaEsSampler::ask(int number, const std::vector<TrialView>& history) {
  int d = static_cast<int>(space_.size());
  State st(d, s_.popsize, s_.sigma0);
  // Finished trials by the generation they were sampled in.
  std::map<int, std::vector<const TrialView*>> by_gen;
  double worst = -std::numeric_limits<double>::infinity();
  for (const auto& t : history) {
    if (t.state == TrialView::State::Running) continue;
    by_gen[generationOf(t.meta)].push_back(&t);
    if (!t.values.empty()) worst = std::max(worst, t.values[0]);
  }
  auto unit = [&](const Point& p) {
    VectorXd u(d);
    for (int j = 0; j < d; ++j) u[j] = space_.params[j].toUnit(p[j]);
    return u;
  };
  for (;;) {
    auto it = by_gen.find(st.generation);
    if (it == by_gen.end() || static_cast<int>(it->second.size()) < st.lambda) break;
    std::vector<const TrialView*> gen = it->second;
    std::sort(gen.begin(), gen.end(), [](auto* a, auto* b) { return a->number < b->number; });
    std::vector<std::pair<double, VectorXd>> evaluated;
    for (int i = 0; i < st.lambda; ++i) {
      double v = gen[i]->values.empty() ? (std::isfinite(worst) ? worst + 1 : 1e300) : gen[i]->values[0];
      evaluated.emplace_back(v, unit(gen[i]->point));
    }
    st.update(evaluated);
  }
  Rng rng(seed_, static_cast<uint64_t>(number));
  VectorXd x;
  for (int tries = 0; tries < 20; ++tries) {
    VectorXd z(d);
    for (int j = 0; j < d; ++j) z[j] = rng.normal();
    x = st.mean + st.sigma * st.B * st.D.asDiagonal() * z;
    if ((x.array() >= 0).all() && (x.array() <= 1).all()) break;
  }
  Point p(d);
  for (int j = 0; j < d; ++j) p[j] = space_.params[j].fromUnit(std::clamp(x[j], 0.0, 1.0));
  return Suggestion{p, fmt::format("gen={}", st.generation)};
}

}  // namespace trainyard::tune
