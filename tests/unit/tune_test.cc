// Samplers, early stopping and Pareto ranks: pure logic, no processes.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "tune/early_stopping.h"
#include "tune/gp_sampler.h"
#include "tune/hyperband_sampler.h"
#include "tune/pareto.h"
#include "tune/pbt_sampler.h"
#include "tune/sampler.h"

using namespace trainyard::tune;

namespace {

Param dbl(const std::string& name, double lo, double hi, bool log = false) {
  Param p;
  p.name = name;
  p.min = lo;
  p.max = hi;
  p.log = log;
  return p;
}

SearchSpace unitSquare() { return {{dbl("x", 0, 1), dbl("y", 0, 1)}}; }

TrialView done(int n, Point p, double v) {
  TrialView t;
  t.number = n;
  t.state = TrialView::State::Complete;
  t.point = std::move(p);
  t.values = {v};
  return t;
}

// Runs `trials` sequential trials of f with the named sampler; returns the best value.
double optimise(const std::string& algo, const SearchSpace& space, const std::function<double(const Point&)>& f,
                int trials, uint64_t seed = 3) {
  auto s = makeSampler({algo, {}, seed, 1}, space);
  std::vector<TrialView> h;
  double best = INFINITY;
  for (int i = 0; i < trials; ++i) {
    auto sug = s->ask(i, h);
    TrialView t = done(i, sug->point, f(sug->point));
    t.meta = sug->meta;
    best = std::min(best, t.values[0]);
    h.push_back(t);
  }
  return best;
}

double sphere(const Point& p) {
  double s = 0;
  for (double v : p) s += (v - 0.3) * (v - 0.3);
  return s;
}

}  // namespace

TEST(Space, UnitMappingRespectsTypesStepsAndLogScale) {
  Param lr = dbl("lr", 1e-4, 1e-1, true);
  EXPECT_NEAR(lr.fromUnit(0.5), std::sqrt(1e-4 * 1e-1), 1e-9);
  EXPECT_NEAR(lr.toUnit(1e-3), 1.0 / 3, 1e-9);
  Param hidden;
  hidden.name = "hidden";
  hidden.type = Param::Type::Int;
  hidden.min = 64;
  hidden.max = 512;
  hidden.step = 64;
  EXPECT_EQ(hidden.cardinality(), 8u);
  std::set<double> seen;
  for (int i = 0; i <= 100; ++i) seen.insert(hidden.fromUnit(i / 100.0));
  EXPECT_EQ(seen, (std::set<double>{64, 128, 192, 256, 320, 384, 448, 512}));
  EXPECT_EQ(hidden.format(128), "128");
  Param opt;
  opt.type = Param::Type::Categorical;
  opt.values = {"adam", "sgd", "rmsprop"};
  EXPECT_EQ(opt.fromUnit(opt.toUnit(2)), 2);
  EXPECT_EQ(opt.format(1), "sgd");
}

TEST(Samplers, UnknownNamesSettingsAndUnsupportedTypesAreRejectedClearly) {
  SearchSpace space = unitSquare();
  Param cat;
  cat.name = "opt";
  cat.type = Param::Type::Categorical;
  cat.values = {"a", "b"};
  SearchSpace mixed{{dbl("x", 0, 1), cat}};
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message([&] { makeSampler({"hyperopt", {}, 0, 1}, space); }).find("unknown algorithm \"hyperopt\""), std::string::npos);
  EXPECT_NE(message([&] { makeSampler({"cmaes", {}, 0, 1}, mixed); }).find("parameter opt is categorical"), std::string::npos);
  EXPECT_NE(message([&] { makeSampler({"grid", {}, 0, 1}, space); }).find("parameter x is continuous"), std::string::npos);
  EXPECT_NE(message([&] { makeSampler({"tpe", {{"n_ei", "3"}}, 0, 1}, space); }).find("unknown setting n_ei"), std::string::npos);
  EXPECT_NE(message([&] { makeSampler({"tpe", {{"n_startup_trials", "x"}}, 0, 1}, space); }).find("must be a number"), std::string::npos);
  EXPECT_NE(message([&] { makeSampler({"gp", {}, 0, 2}, space); }).find("optimises one objective"), std::string::npos);
  for (const auto& name : {"random", "sobol", "tpe", "gp"}) EXPECT_NO_THROW(makeSampler({name, {}, 0, 1}, mixed)) << name;
}

TEST(Hyperband, ThePlanIsKatibsBracketsAndRungs) {
  // eta 3, r_l 9: brackets s = 2, 1, 0 (Li et al.'s table): 9@1 3@3 1@9 | 5@3 2@9 | 3@9.
  auto plan = hyperbandPlan(3, 9);
  std::vector<std::pair<int, double>> rungs;  // (size, resource) per rung, in order
  for (const auto& s : plan.slots)
    if (s.index == 0) rungs.emplace_back(s.rung_size, s.resource);
  EXPECT_EQ(rungs, (std::vector<std::pair<int, double>>{{9, 1}, {3, 3}, {1, 9}, {5, 3}, {2, 9}, {3, 9}}));
  EXPECT_EQ(plan.slots.size(), 23u);
  EXPECT_EQ(plan.slots[9].first_of_previous, 0);
  EXPECT_EQ(plan.slots[12].first_of_previous, 9);
  EXPECT_THROW(hyperbandPlan(1.5, 9), std::invalid_argument);  // eta < 2
  EXPECT_THROW(hyperbandPlan(3, 0), std::invalid_argument);
}

TEST(Hyperband, ARungWaitsForTheOneBeforeThenPromotesItsBest) {
  SearchSpace space;
  Param lr{"lr", Param::Type::Double, 0.001, 0.1};
  Param epochs{"num-epochs", Param::Type::Int, 20, 20};  // Katib's example: min = max, set per rung
  space.params = {lr, epochs};
  auto sampler = makeSampler({"hyperband", {{"resource_name", "num-epochs"}, {"eta", "3"}, {"r_l", "9"}}, 7, 1}, space);
  std::vector<TrialView> history;
  for (int n = 0; n < 9; ++n) {
    auto s = sampler->ask(n, history);
    ASSERT_TRUE(s && !s->wait);
    EXPECT_EQ(s->point[1], 1);  // rung 0: resource 1
    TrialView t;
    t.number = n;
    t.point = s->point;
    t.state = TrialView::State::Running;
    history.push_back(t);
  }
  EXPECT_TRUE(sampler->ask(9, history)->wait);  // rung 1 waits for rung 0
  for (auto& t : history) {
    t.state = TrialView::State::Complete;
    t.values = {std::abs(t.point[0] - 0.05)};  // best near lr 0.05
  }
  history[4].state = TrialView::State::Failed, history[4].values.clear();  // a failed one ranks last
  std::vector<const TrialView*> ranked;
  for (const auto& t : history) ranked.push_back(&t);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto* a, const auto* b) {
    double x = a->values.empty() ? 1e9 : a->values[0], y = b->values.empty() ? 1e9 : b->values[0];
    return x < y;
  });
  for (int k = 0; k < 3; ++k) {
    auto s = sampler->ask(9 + k, history);
    ASSERT_TRUE(s && !s->wait);
    EXPECT_EQ(s->point[0], ranked[k]->point[0]) << k;  // the k-th best configuration
    EXPECT_EQ(s->point[1], 3);                           // at 3 times the resource
  }
  EXPECT_FALSE(sampler->ask(23, history));  // every bracket done
  EXPECT_THROW(makeSampler({"hyperband", {{"resource_name", "nope"}, {"r_l", "9"}}, 7, 1}, space), std::invalid_argument);
  EXPECT_THROW(makeSampler({"hyperband", {{"resource_name", "lr"}, {"r_l", "9"}, {"bogus", "1"}}, 7, 1}, space),
               std::invalid_argument);
}

TEST(Pbt, AGenerationWaitsThenTheBottomExploitsTheTopAndEveryoneExplores) {
  SearchSpace space;
  Param lr{"lr", Param::Type::Double, 0.001, 0.1};
  Param opt{"opt", Param::Type::Categorical};
  opt.values = {"adam", "sgd", "rmsprop"};
  space.params = {lr, opt};
  std::map<std::string, std::string> settings{
      {"n_population", "4"}, {"truncation_threshold", "0.25"}, {"suggestion_trial_dir", "/ckpt"}};
  auto sampler = makeSampler({"pbt", settings, 3, 1}, space);
  std::vector<TrialView> history;
  for (int n = 0; n < 4; ++n) {
    auto s = sampler->ask(n, history);
    ASSERT_TRUE(s && !s->wait);
    EXPECT_FALSE(pbtParent(s->meta)) << s->meta;  // generation 0 starts from nothing
    TrialView t;
    t.number = n;
    t.point = s->point;
    history.push_back(t);
  }
  EXPECT_TRUE(sampler->ask(4, history)->wait);  // generation 1 waits for generation 0
  for (int n = 0; n < 4; ++n) history[n].state = TrialView::State::Complete, history[n].values = {double(n)};  // 0 best
  history[2].state = TrialView::State::Failed, history[2].values.clear();
  std::vector<int> parents;
  for (int n = 4; n < 8; ++n) {
    auto s = sampler->ask(n, history);
    ASSERT_TRUE(s && !s->wait);
    auto parent = pbtParent(s->meta);
    ASSERT_TRUE(parent) << s->meta;
    parents.push_back(*parent);
    const Point& from = history[*parent].point;
    // Explored: lr x0.8 or x1.2 (clamped), the choice one step aside.
    double ratio = s->point[0] / from[0];
    EXPECT_TRUE(std::abs(ratio - 0.8) < 1e-9 || std::abs(ratio - 1.2) < 1e-9 || s->point[0] == 0.1 || s->point[0] == 0.001)
        << ratio;
    double d = std::fmod(s->point[1] - from[1] + 3, 3);
    EXPECT_TRUE(d == 1 || d == 2) << d;
  }
  // Members 0, 1 and 3 continue their own lineage; member 2 (failed: the
  // bottom quarter) takes the best member's checkpoint (the top quarter: trial 0).
  EXPECT_EQ(parents, (std::vector<int>{0, 1, 0, 3}));
  // Deterministic: asked again, the same answer (a resumed experiment).
  EXPECT_EQ(sampler->ask(6, history)->meta, sampler->ask(6, history)->meta);
  auto bad = [&](std::map<std::string, std::string> extra) {
    auto s = settings;
    for (auto& [k, v] : extra) s[k] = v;
    return makeSampler({"pbt", s, 3, 1}, space);
  };
  EXPECT_THROW(bad({{"n_population", "2"}}), std::invalid_argument);
  EXPECT_THROW(bad({{"truncation_threshold", "0.9"}}), std::invalid_argument);
  EXPECT_THROW(bad({{"resample_probability", "1.5"}}), std::invalid_argument);
  EXPECT_THROW(bad({{"suggestion_trial_dir", "relative"}}), std::invalid_argument);
  EXPECT_THROW(bad({{"populationsize", "5"}}), std::invalid_argument);
  EXPECT_THROW(makeSampler({"pbt", {{"n_population", "4"}}, 3, 1}, space), std::invalid_argument);
}

TEST(Pbt, ResampleProbabilityDrawsFromTheSpace) {
  SearchSpace space{{dbl("x", 0, 1)}};
  auto sampler = makeSampler({"pbt", {{"n_population", "3"}, {"resample_probability", "1"}, {"suggestion_trial_dir", "/c"}}, 9, 1}, space);
  std::vector<TrialView> history;
  for (int n = 0; n < 3; ++n) history.push_back(done(n, sampler->ask(n, history)->point, n));
  std::set<double> seen;
  for (int n = 3; n < 6; ++n) {
    auto s = sampler->ask(n, history);
    double from = history[*pbtParent(s->meta)].point[0];
    EXPECT_NE(s->point[0], from);  // p = 1: always drawn anew
    EXPECT_NE(s->point[0] / from, 1.2);
  }
}

TEST(Samplers, GridVisitsEveryCellOnceThenEnds) {
  Param a;
  a.name = "a";
  a.type = Param::Type::Int;
  a.min = 1;
  a.max = 3;
  Param b;
  b.name = "b";
  b.type = Param::Type::Categorical;
  b.values = {"x", "y"};
  auto s = makeSampler({"grid", {}, 0, 1}, {{a, b}});
  std::vector<TrialView> h;
  std::set<Point> seen;
  for (int i = 0; i < 6; ++i) {
    auto sug = s->ask(i, h);
    ASSERT_TRUE(sug);
    EXPECT_TRUE(seen.insert(sug->point).second);
    h.push_back(done(i, sug->point, 0));
  }
  EXPECT_FALSE(s->ask(6, h));
}

TEST(Samplers, SobolFirst64PointsFillEvery8x8Cell) {
  auto s = makeSampler({"sobol", {}, 5, 1}, unitSquare());
  std::set<std::pair<int, int>> cells;
  for (int i = 0; i < 64; ++i) {
    auto p = s->ask(i, {})->point;
    cells.insert({static_cast<int>(p[0] * 8), static_cast<int>(p[1] * 8)});
  }
  EXPECT_EQ(cells.size(), 64u);  // a (0, 6, 2)-net: one point per elementary cell
  auto other = makeSampler({"sobol", {}, 6, 1}, unitSquare());
  EXPECT_NE(s->ask(0, {})->point, other->ask(0, {})->point);  // scrambled by the seed
}

TEST(Samplers, SameSeedSameSuggestions) {
  for (const auto& algo : {"random", "tpe", "gp", "cmaes"}) {
    double a = optimise(algo, unitSquare(), sphere, 15, 11);
    double b = optimise(algo, unitSquare(), sphere, 15, 11);
    EXPECT_EQ(a, b) << algo;
  }
}

TEST(Samplers, ModelBasedSamplersBeatRandomOnASphere) {
  SearchSpace space{{dbl("a", 0, 1), dbl("b", 0, 1), dbl("c", 0, 1)}};
  double random = 0, tpe = 0, gp = 0, cma = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    random += optimise("random", space, sphere, 40, seed);
    tpe += optimise("tpe", space, sphere, 40, seed);
    gp += optimise("gp", space, sphere, 40, seed);
    cma += optimise("cmaes", space, sphere, 40, seed);
  }
  EXPECT_LT(tpe, random);
  EXPECT_LT(gp, random / 10);
  EXPECT_LT(cma, random);
}

TEST(Samplers, ConstantLiarSpreadsParallelSuggestions) {
  auto s = makeSampler({"tpe", {{"n_startup_trials", "5"}}, 1, 1}, unitSquare());
  std::vector<TrialView> h;
  for (int i = 0; i < 12; ++i) h.push_back(done(i, {i / 12.0, 0.5}, std::fabs(i / 12.0 - 0.4)));
  std::set<Point> batch;
  for (int i = 12; i < 16; ++i) {
    auto sug = s->ask(i, h);
    TrialView running;
    running.number = i;
    running.point = sug->point;
    h.push_back(running);  // state Running
    batch.insert(sug->point);
  }
  EXPECT_EQ(batch.size(), 4u);
}

TEST(Samplers, CmaEsRecordsAndReplaysGenerations) {
  auto s = makeSampler({"cmaes", {}, 2, 1}, unitSquare());
  std::vector<TrialView> h;
  for (int i = 0; i < 30; ++i) {
    auto sug = s->ask(i, h);
    TrialView t = done(i, sug->point, sphere(sug->point));
    t.meta = sug->meta;
    h.push_back(t);
  }
  EXPECT_EQ(h[0].meta, "gen=0");
  EXPECT_NE(h.back().meta, "gen=0");
  // A new sampler (a resumed experiment) suggests exactly the same next point.
  auto again = makeSampler({"cmaes", {}, 2, 1}, unitSquare());
  EXPECT_EQ(s->ask(30, h)->point, again->ask(30, h)->point);
}

TEST(Samplers, LogExpectedImprovementIsStable) {
  for (double z : {-2.0, 0.0, 1.5}) {
    double phi = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI), Phi = 0.5 * std::erfc(-z / std::sqrt(2.0));
    EXPECT_NEAR(logH(z), std::log(phi + z * Phi), 1e-9) << z;
  }
  EXPECT_TRUE(std::isfinite(logH(-40)));
  EXPECT_LT(logH(-40), logH(-10));
  EXPECT_NEAR(logH(-10 - 1e-7), logH(-10 + 1e-7), 1e-5);  // the two branches meet
}

namespace {
TrialView reported(int n, TrialView::State state, std::map<int64_t, double> series) {
  TrialView t;
  t.number = n;
  t.state = state;
  t.intermediate = std::move(series);
  return t;
}
}  // namespace

TEST(EarlyStopping, MedianStopsTrialsWorseThanTheMedianOfFinishedOnes) {
  auto m = makeEarlyStopper({"median", {{"min_trials_required", "3"}, {"start_step", "2"}}});
  std::vector<TrialView> all{reported(0, TrialView::State::Complete, {{1, 0.5}, {2, 0.4}}),
                             reported(1, TrialView::State::Complete, {{1, 0.6}, {2, 0.5}}),
                             reported(2, TrialView::State::Complete, {{1, 0.7}, {2, 0.6}})};
  auto bad = reported(3, TrialView::State::Running, {{1, 0.9}, {2, 0.8}});
  auto good = reported(4, TrialView::State::Running, {{1, 0.3}, {2, 0.3}});
  auto early = reported(5, TrialView::State::Running, {{1, 0.9}});
  EXPECT_TRUE(m->decide(bad, all)->stop);
  EXPECT_FALSE(m->decide(good, all));
  EXPECT_FALSE(m->decide(early, all));  // before start_step
  std::vector<TrialView> two(all.begin(), all.begin() + 2);
  EXPECT_FALSE(m->decide(bad, two));  // fewer than min_trials_required
}

TEST(EarlyStopping, AshaPromotesTheTopThirdAtEachRung) {
  auto a = makeEarlyStopper({"asha", {{"min_resource", "1"}, {"reduction_factor", "3"}, {"max_resource", "9"}}});
  std::vector<TrialView> all;
  for (int i = 0; i < 6; ++i) all.push_back(reported(i, TrialView::State::Complete, {{1, 0.1 * (i + 1)}}));
  auto best = reported(6, TrialView::State::Running, {{1, 0.05}});
  auto worst = reported(7, TrialView::State::Running, {{1, 0.95}});
  auto d = a->decide(best, all);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->stop);
  EXPECT_EQ(d->rung, 0);
  d = a->decide(worst, all);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->stop);
  EXPECT_EQ(d->step, 1);
  // Having passed rung 0, the next decision waits for resource 3.
  best.rung = 0;
  EXPECT_FALSE(a->decide(best, all));
  // The last stretch (resource 9 >= max) is never cut.
  best.rung = 1;
  best.intermediate[9] = 0.01;
  EXPECT_FALSE(a->decide(best, all));
}

TEST(EarlyStopping, HyperbandNeedsMaxResourceAndUsesBrackets) {
  EXPECT_THROW(makeEarlyStopper({"hyperband", {}}), std::invalid_argument);
  EXPECT_THROW(makeEarlyStopper({"asha", {{"reduction_factor", "1"}}}), std::invalid_argument);
  EXPECT_THROW(makeEarlyStopper({"asha", {{"grace", "1"}}}), std::invalid_argument);
  EXPECT_THROW(makeEarlyStopper({"successive", {}}), std::invalid_argument);
  auto h = makeEarlyStopper({"hyperband", {{"min_resource", "1"}, {"max_resource", "9"}, {"reduction_factor", "3"}}});
  // 3 brackets: trial 1 is in bracket 1, whose first rung is at resource 3.
  auto t = reported(1, TrialView::State::Running, {{1, 0.9}, {2, 0.9}});
  EXPECT_FALSE(h->decide(t, {}));
  t.intermediate[3] = 0.9;
  EXPECT_TRUE(h->decide(t, {}));
}

TEST(Pareto, RanksAndCrowding) {
  std::vector<std::vector<double>> pts{{1, 5}, {2, 2}, {5, 1}, {3, 3}, {6, 6}};
  auto r = paretoRanks(pts);
  EXPECT_EQ(r, (std::vector<int>{0, 0, 0, 1, 2}));
  auto c = crowding(pts, r);
  EXPECT_TRUE(std::isinf(c[0]));
  EXPECT_TRUE(std::isinf(c[2]));
  EXPECT_GT(c[1], 0);
  EXPECT_TRUE(dominates({1, 1}, {1, 2}));
  EXPECT_FALSE(dominates({1, 2}, {2, 1}));
}

TEST(Samplers, MultiObjectiveTpeRuns) {
  auto s = makeSampler({"tpe", {{"n_startup_trials", "4"}}, 0, 2}, unitSquare());
  std::vector<TrialView> h;
  for (int i = 0; i < 20; ++i) {
    auto p = s->ask(i, h)->point;
    TrialView t;
    t.number = i;
    t.state = TrialView::State::Complete;
    t.point = p;
    t.values = {p[0], 1 - p[0] + p[1]};
    h.push_back(t);
  }
  std::vector<std::vector<double>> pts;
  for (const auto& t : h) pts.push_back(t.values);
  auto r = paretoRanks(pts);
  EXPECT_GE(std::count(r.begin(), r.end(), 0), 2);
}
