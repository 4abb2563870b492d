// Trainyard's samplers on standard test functions, for bench/sample_efficiency.py:
//   sampler_bench regret  [--trials 100] [--batch 4] [--seeds 20]   -> JSON lines: function, sampler, seed, regret
//   sampler_bench cost                                              -> JSON lines: sampler, history, ms per suggestion
// The protocol matches the Optuna side: ask `batch` points (earlier ones of
// the batch are Running when the next is asked), then tell all of them.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tune/sampler.h"

using namespace trainyard::tune;

namespace {

struct TestFunction {
  std::string name;
  std::vector<std::pair<double, double>> bounds;
  double optimum;
  std::function<double(const std::vector<double>&)> f;
};

std::vector<TestFunction> functions() {
  const double pi = M_PI;
  std::vector<TestFunction> fs;
  fs.push_back({"branin", {{-5, 10}, {0, 15}}, 0.397887, [pi](const std::vector<double>& x) {
                  double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
                  double u = x[1] - b * x[0] * x[0] + c * x[0] - 6;
                  return u * u + 10 * (1 - t) * std::cos(x[0]) + 10;
                }});
  fs.push_back({"hartmann6", std::vector<std::pair<double, double>>(6, {0, 1}), -3.32237, [](const std::vector<double>& x) {
                  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
                  static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14},
                                                 {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
                  static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
                                                 {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}};
                  double s = 0;
                  for (int i = 0; i < 4; ++i) {
                    double inner = 0;
                    for (int j = 0; j < 6; ++j) inner += A[i][j] * std::pow(x[j] - P[i][j] * 1e-4, 2);
                    s += alpha[i] * std::exp(-inner);
                  }
                  return -s;
                }});
  fs.push_back({"levy5", std::vector<std::pair<double, double>>(5, {-10, 10}), 0.0, [pi](const std::vector<double>& x) {
                  size_t d = x.size();
                  auto w = [&](size_t i) { return 1 + (x[i] - 1) / 4; };
                  double s = std::pow(std::sin(pi * w(0)), 2);
                  for (size_t i = 0; i + 1 < d; ++i)
                    s += std::pow(w(i) - 1, 2) * (1 + 10 * std::pow(std::sin(pi * w(i) + 1), 2));
                  s += std::pow(w(d - 1) - 1, 2) * (1 + std::pow(std::sin(2 * pi * w(d - 1)), 2));
                  return s;
                }});
  fs.push_back({"ackley5", std::vector<std::pair<double, double>>(5, {-32.768, 32.768}), 0.0,
                [pi](const std::vector<double>& x) {
                  double s1 = 0, s2 = 0, d = static_cast<double>(x.size());
                  for (double v : x) s1 += v * v, s2 += std::cos(2 * pi * v);
                  return -20 * std::exp(-0.2 * std::sqrt(s1 / d)) - std::exp(s2 / d) + 20 + std::exp(1.0);
                }});
  fs.push_back({"rosenbrock5", std::vector<std::pair<double, double>>(5, {-5, 10}), 0.0, [](const std::vector<double>& x) {
                  double s = 0;
                  for (size_t i = 0; i + 1 < x.size(); ++i)
                    s += 100 * std::pow(x[i + 1] - x[i] * x[i], 2) + std::pow(x[i] - 1, 2);
                  return s;
                }});
  return fs;
}

SearchSpace spaceOf(const TestFunction& f) {
  SearchSpace s;
  for (size_t i = 0; i < f.bounds.size(); ++i) {
    Param p;
    p.name = "x" + std::to_string(i);
    p.min = f.bounds[i].first;
    p.max = f.bounds[i].second;
    s.params.push_back(p);
  }
  return s;
}

// "tpe" or "tpe:n_ei_candidates=64,prior_weight=2" (settings after a colon).
SamplerConfig parseAlgo(const std::string& spec, uint64_t seed) {
  SamplerConfig c{spec.substr(0, spec.find(':')), {}, seed, 1};
  if (spec.find(':') == std::string::npos) return c;
  std::string rest = spec.substr(spec.find(':') + 1);
  for (size_t p = 0, q; p < rest.size(); p = q + 1) {
    q = rest.find(',', p);
    if (q == std::string::npos) q = rest.size();
    std::string kv = rest.substr(p, q - p);
    c.settings[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  }
  return c;
}

double runOnce(const TestFunction& f, const std::string& algo, uint64_t seed, int trials, int batch) {
  SearchSpace space = spaceOf(f);
  auto sampler = makeSampler(parseAlgo(algo, seed), space);
  std::vector<TrialView> history;
  double best = INFINITY;
  for (int start = 0; start < trials; start += batch) {
    int n = std::min(batch, trials - start);
    for (int k = 0; k < n; ++k) {
      int number = start + k;
      auto s = sampler->ask(number, history);
      TrialView t;
      t.number = number;
      t.point = s->point;
      t.meta = s->meta;
      history.push_back(t);
    }
    for (int k = 0; k < n; ++k) {
      TrialView& t = history[static_cast<size_t>(start + k)];
      double v = f.f(t.point);
      t.state = TrialView::State::Complete;
      t.values = {v};
      best = std::min(best, v);
    }
  }
  return best - f.optimum;
}

void cost() {
  auto fs = functions();
  const TestFunction& h6 = fs[1];
  SearchSpace space = spaceOf(h6);
  for (auto [algo, n] : std::vector<std::pair<std::string, int>>{{"tpe", 1000}, {"gp", 100}, {"gp", 300}, {"gp", 1000}}) {
    std::vector<TrialView> history;
    auto sampler = makeSampler({algo, {}, 1, 1}, space);
    for (int i = 0; i < n; ++i) {
      TrialView t;
      t.number = i;
      t.point = randomPoint(space, 7, i);
      t.state = TrialView::State::Complete;
      t.values = {h6.f(t.point)};
      history.push_back(t);
    }
    int reps = algo == "tpe" ? 50 : 3;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) sampler->ask(n + r, history);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::printf("{\"sampler\": \"%s\", \"history\": %d, \"ms\": %.3f}\n", algo.c_str(), n, ms);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "regret";
  int trials = 100, batch = 4, seeds = 20;
  std::vector<std::string> algos{"random", "sobol", "tpe", "gp", "cmaes"};
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--trials")) trials = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seeds")) seeds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--samplers")) {
      algos.clear();
      std::string s = argv[i + 1];
      for (size_t p = 0, q; p <= s.size(); p = q + 1) {
        q = s.find(';', p);
        if (q == std::string::npos) q = s.size();
        algos.push_back(s.substr(p, q - p));
      }
    }
  }
  if (mode == "cost") {
    cost();
    return 0;
  }
  for (const auto& f : functions())
    for (const auto& algo : algos)
      for (int seed = 0; seed < seeds; ++seed) {
        double regret = runOnce(f, algo, static_cast<uint64_t>(seed), trials, batch);
        std::printf("{\"function\": \"%s\", \"sampler\": \"trainyard-%s\", \"seed\": %d, \"regret\": %.10g}\n",
                    f.name.c_str(), algo.c_str(), seed, regret);
        std::fflush(stdout);
      }
  return 0;
}
