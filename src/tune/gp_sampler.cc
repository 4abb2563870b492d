#include "tune/gp_sampler.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tune/rng.h"

namespace trainyard::tune {
namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;

constexpr double kSqrt5 = 2.2360679774997896964;
constexpr double kLogSqrt2Pi = 0.91893853320467274178;

// Feature encoding: numeric parameters as unit coordinates, categorical one-hot.
struct Encoder {
  const SearchSpace& space;
  size_t dims() const {
    size_t n = 0;
    for (const auto& p : space.params) n += p.isCategorical() ? p.values.size() : 1;
    return n;
  }
  VectorXd encode(const Point& pt) const {
    VectorXd f = VectorXd::Zero(static_cast<Eigen::Index>(dims()));
    Eigen::Index k = 0;
    for (size_t j = 0; j < space.size(); ++j) {
      const Param& p = space.params[j];
      if (p.isCategorical()) {
        f[k + static_cast<Eigen::Index>(pt[j])] = 1.0;
        k += static_cast<Eigen::Index>(p.values.size());
      } else {
        f[k++] = p.toUnit(pt[j]);
      }
    }
    return f;
  }
  Point decode(const VectorXd& f) const {
    Point pt(space.size());
    Eigen::Index k = 0;
    for (size_t j = 0; j < space.size(); ++j) {
      const Param& p = space.params[j];
      if (p.isCategorical()) {
        Eigen::Index n = static_cast<Eigen::Index>(p.values.size()), best = 0;
        for (Eigen::Index c = 1; c < n; ++c)
          if (f[k + c] > f[k + best]) best = c;
        pt[j] = static_cast<double>(best);
        k += n;
      } else {
        pt[j] = p.fromUnit(f[k++]);
      }
    }
    return pt;
  }
};

struct Gp {
  VectorXd log_ls;
  double log_sf2 = 0, log_noise = std::log(1e-3);
  MatrixXd X;
  VectorXd y;
  Eigen::LLT<MatrixXd> llt;
  VectorXd alpha;
  std::vector<MatrixXd> sqdiff;  // per input: (x_i - x_j)^2, computed once per fit

  // Matern 5/2 from squared scaled distances.
  static Eigen::ArrayXXd matern(const Eigen::ArrayXXd& r2) {
    Eigen::ArrayXXd r = r2.sqrt();
    return (1 + kSqrt5 * r + 5.0 / 3.0 * r2) * (-kSqrt5 * r).exp();
  }
  Eigen::ArrayXXd scaledSqDist(const MatrixXd& A, const MatrixXd& B) const {
    Eigen::ArrayXXd r2 = Eigen::ArrayXXd::Zero(A.rows(), B.rows());
    for (Eigen::Index k = 0; k < A.cols(); ++k) {
      double inv = std::exp(-2 * log_ls[k]);
      Eigen::ArrayXXd diff = A.col(k).array().replicate(1, B.rows()) - B.col(k).transpose().array().replicate(A.rows(), 1);
      r2 += diff.square() * inv;
    }
    return r2;
  }
  MatrixXd gram(const MatrixXd& A, const MatrixXd& B) const {
    return (std::exp(log_sf2) * matern(scaledSqDist(A, B))).matrix();
  }
  bool factor() {
    MatrixXd K = gram(X, X);
    K.diagonal().array() += std::exp(log_noise) + 1e-9;
    llt.compute(K);
    if (llt.info() != Eigen::Success) return false;
    alpha = llt.solve(y);
    return true;
  }

  // Log marginal likelihood plus weak priors, and its gradient in
  // (log_ls..., log_sf2, log_noise). Vectorised over the n x n pairs.
  double objective(VectorXd& grad) {
    Eigen::Index n = X.rows(), d = X.cols();
    grad = VectorXd::Zero(d + 2);
    if (sqdiff.empty())
      for (Eigen::Index k = 0; k < d; ++k)
        sqdiff.push_back((X.col(k).replicate(1, n) - X.col(k).transpose().replicate(n, 1)).array().square().matrix());
    Eigen::ArrayXXd r2 = Eigen::ArrayXXd::Zero(n, n);
    for (Eigen::Index k = 0; k < d; ++k) r2 += sqdiff[k].array() * std::exp(-2 * log_ls[k]);
    Eigen::ArrayXXd r = r2.sqrt(), e = (-kSqrt5 * r).exp();
    double sf2 = std::exp(log_sf2);
    Eigen::ArrayXXd k0 = (1 + kSqrt5 * r + 5.0 / 3.0 * r2) * e;
    MatrixXd K = (sf2 * k0).matrix();
    K.diagonal().array() += std::exp(log_noise) + 1e-9;
    llt.compute(K);
    if (llt.info() != Eigen::Success) return -std::numeric_limits<double>::infinity();
    alpha = llt.solve(y);
    double lml = -0.5 * y.dot(alpha) - llt.matrixL().toDenseMatrix().diagonal().array().log().sum() -
                 0.5 * static_cast<double>(n) * std::log(2 * M_PI);
    Eigen::ArrayXXd W = (alpha * alpha.transpose() - llt.solve(MatrixXd::Identity(n, n))).array();
    grad[d] = 0.5 * (W * sf2 * k0).sum();
    // dk/dlog l_k = sf2 * 5/3 (1 + sqrt5 r) e^{-sqrt5 r} * (x_k - x'_k)^2 / l_k^2
    Eigen::ArrayXXd common = W * (sf2 * 5.0 / 3.0 * (1 + kSqrt5 * r) * e);
    for (Eigen::Index k = 0; k < d; ++k) grad[k] = 0.5 * (common * sqdiff[k].array()).sum() * std::exp(-2 * log_ls[k]);
    grad[d + 1] = 0.5 * std::exp(log_noise) * W.matrix().trace();
    // Priors: length scales around 0.5 (log-normal, wide), noise pulled small.
    for (Eigen::Index k = 0; k < d; ++k) {
      double z = (log_ls[k] - std::log(0.5)) / 1.5;
      lml -= 0.5 * z * z;
      grad[k] -= z / 1.5;
    }
    double zn = (log_noise - std::log(1e-3)) / 3.0;
    lml -= 0.5 * zn * zn;
    grad[d + 1] -= zn / 3.0;
    return lml;
  }

  void fit(int iterations) {
    Eigen::Index d = X.cols();
    VectorXd theta(d + 2), m = VectorXd::Zero(d + 2), v = VectorXd::Zero(d + 2), g;
    theta << log_ls, log_sf2, log_noise;
    VectorXd best_theta = theta;
    double best = -std::numeric_limits<double>::infinity();
    const double lr = 0.08, b1 = 0.9, b2 = 0.999;
    for (int it = 1; it <= iterations; ++it) {
      log_ls = theta.head(d);
      log_sf2 = theta[d];
      log_noise = theta[d + 1];
      double f = objective(g);
      if (f > best) best = f, best_theta = theta;
      if (!std::isfinite(f)) break;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g.cwiseProduct(g);
      VectorXd mh = m / (1 - std::pow(b1, it)), vh = v / (1 - std::pow(b2, it));
      theta += lr * (mh.array() / (vh.array().sqrt() + 1e-8)).matrix();
      for (Eigen::Index k = 0; k < d; ++k) theta[k] = std::clamp(theta[k], std::log(0.01), std::log(20.0));
      theta[d] = std::clamp(theta[d], std::log(0.05), std::log(20.0));
      theta[d + 1] = std::clamp(theta[d + 1], std::log(1e-6), std::log(0.5));
    }
    log_ls = best_theta.head(d);
    log_sf2 = best_theta[d];
    log_noise = best_theta[d + 1];
    factor();
  }

  void predict(const MatrixXd& C, VectorXd& mean, VectorXd& var) const {
    MatrixXd Ks = gram(X, C);
    mean = Ks.transpose() * alpha;
    MatrixXd V = llt.matrixL().solve(Ks);
    var = (std::exp(log_sf2) - V.colwise().squaredNorm().array()).max(1e-12).matrix();
  }
};

}  // namespace

double logH(double z) {
  // h(z) = phi(z) + z Phi(z). For z << 0 both terms nearly cancel; use
  // h(z) = phi(z) (1 - |z| sqrt(pi/2) erfcx(|z|/sqrt2)) with an asymptotic erfcx.
  if (z > -10) {
    double phi = std::exp(-0.5 * z * z - kLogSqrt2Pi);
    double Phi = 0.5 * std::erfc(-z / std::sqrt(2.0));
    return std::log(std::max(phi + z * Phi, 1e-300));
  }
  double x = -z;
  // 1 - x R(x), R the Mills ratio: 1/x^2 - 3/x^4 + 15/x^6 - 105/x^8 + 945/x^10 - 10395/x^12
  double u = 1 / (x * x);
  double tail = u * (1 + u * (-3 + u * (15 + u * (-105 + u * (945 - 10395 * u)))));
  return -0.5 * z * z - kLogSqrt2Pi + std::log(tail);
}

std::optional<Suggestion> GpSampler::ask(int number, const std::vector<TrialView>& history) {
  std::vector<const TrialView*> obs, pending;
  for (const auto& t : history) {
    if ((t.state == TrialView::State::Complete || t.state == TrialView::State::Pruned) && !t.values.empty())
      obs.push_back(&t);
    else if (t.state == TrialView::State::Running && t.number != number)
      pending.push_back(&t);
  }
  if (static_cast<int>(obs.size()) < s_.n_startup_trials) return Suggestion{randomPoint(space_, seed_, number), ""};

  // Subset past max_points: the best third, then the most recent.
  if (static_cast<int>(obs.size()) > s_.max_points) {
    std::vector<const TrialView*> by_value = obs;
    std::sort(by_value.begin(), by_value.end(), [](auto* a, auto* b) { return a->values[0] < b->values[0]; });
    std::vector<const TrialView*> keep(by_value.begin(), by_value.begin() + s_.max_points / 3);
    std::sort(obs.begin(), obs.end(), [](auto* a, auto* b) { return a->number > b->number; });
    for (auto* t : obs) {
      if (static_cast<int>(keep.size()) >= s_.max_points) break;
      if (std::find(keep.begin(), keep.end(), t) == keep.end()) keep.push_back(t);
    }
    obs = keep;
  }

  Encoder enc{space_};
  Eigen::Index n = static_cast<Eigen::Index>(obs.size()), d = static_cast<Eigen::Index>(enc.dims());
  Gp gp;
  gp.X.resize(n, d);
  gp.y.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    gp.X.row(i) = enc.encode(obs[i]->point).transpose();
    gp.y[i] = obs[i]->values[0];
  }
  double mean = gp.y.mean();
  double sd = std::sqrt((gp.y.array() - mean).square().sum() / std::max<double>(1, static_cast<double>(n - 1)));
  if (!(sd > 1e-12)) sd = 1;
  gp.y = (gp.y.array() - mean) / sd;
  gp.log_ls = VectorXd::Constant(d, std::log(0.5));
  gp.fit(60);
  double best_y = gp.y.minCoeff();

  // Kriging believer: running trials join the data at their predicted mean.
  if (!pending.empty()) {
    MatrixXd P(static_cast<Eigen::Index>(pending.size()), d);
    for (size_t i = 0; i < pending.size(); ++i) P.row(static_cast<Eigen::Index>(i)) = enc.encode(pending[i]->point).transpose();
    VectorXd pm, pv;
    gp.predict(P, pm, pv);
    MatrixXd X2(n + P.rows(), d);
    X2 << gp.X, P;
    VectorXd y2(n + P.rows());
    y2 << gp.y, pm;
    gp.X = X2;
    gp.y = y2;
    gp.sqdiff.clear();
    gp.factor();
  }

  Rng rng(seed_, static_cast<uint64_t>(number));
  auto randomFeatures = [&]() { return enc.encode(randomPoint(space_, rng.next(), 0)); };
  auto perturb = [&](const VectorXd& base, double scale) {
    Point p = enc.decode(base);
    Point q = p;
    for (size_t j = 0; j < space_.size(); ++j) {
      const Param& prm = space_.params[j];
      if (prm.isCategorical()) {
        if (rng.uniform() < 0.2) q[j] = static_cast<double>(rng.index(prm.values.size()));
      } else {
        q[j] = prm.fromUnit(prm.toUnit(p[j]) + scale * rng.normal());
      }
    }
    return enc.encode(q);
  };
  auto score = [&](const MatrixXd& C, VectorXd& out) {
    VectorXd m, v;
    gp.predict(C, m, v);
    out.resize(C.rows());
    for (Eigen::Index i = 0; i < C.rows(); ++i) {
      double s = std::sqrt(v[i]);
      out[i] = std::log(s) + logH((best_y - m[i]) / s);
    }
  };

  // Candidates: random ones plus perturbations of the best observations.
  std::vector<Eigen::Index> best_idx(static_cast<size_t>(n));
  std::iota(best_idx.begin(), best_idx.end(), 0);
  std::sort(best_idx.begin(), best_idx.end(), [&](auto a, auto b) { return gp.y[a] < gp.y[b]; });
  int n_local = std::min<int>(5, static_cast<int>(n));
  int per_local = 60;
  MatrixXd C(s_.n_candidates + n_local * per_local, d);
  for (int i = 0; i < s_.n_candidates; ++i) C.row(i) = randomFeatures().transpose();
  for (int b = 0; b < n_local; ++b)
    for (int k = 0; k < per_local; ++k)
      C.row(s_.n_candidates + b * per_local + k) = perturb(gp.X.row(best_idx[b]).transpose(), 0.1).transpose();
  VectorXd acq;
  score(C, acq);
  Eigen::Index arg;
  double best_acq = acq.maxCoeff(&arg);
  VectorXd x = C.row(arg).transpose();
  // Local refinement around the winner, with a shrinking radius.
  for (double scale : {0.05, 0.02, 0.005}) {
    MatrixXd L(40, d);
    for (int k = 0; k < 40; ++k) L.row(k) = perturb(x, scale).transpose();
    score(L, acq);
    Eigen::Index a;
    if (acq.maxCoeff(&a) > best_acq) best_acq = acq[a], x = L.row(a).transpose();
  }
  return Suggestion{enc.decode(x), ""};
}

}  // namespace trainyard::tune
