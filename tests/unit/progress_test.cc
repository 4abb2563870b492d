#include "cli/progress.h"

#include <gtest/gtest.h>

#include "metrics/progress.h"

using namespace trainyard::cli;
using trainyard::metrics::etaSeconds;
using trainyard::metrics::progressFraction;
using trainyard::metrics::MetricPoint;

namespace {
std::map<std::string, MetricPoint> pts(std::initializer_list<std::pair<const char*, double>> l) {
  std::map<std::string, MetricPoint> m;
  for (auto [k, v] : l) m[k] = MetricPoint{k, v, 0, 0};
  return m;
}
}  // namespace

TEST(Progress, FractionFromStepsThenEpochsThenProgress) {
  EXPECT_FALSE(progressFraction(pts({{"loss", 1}})));
  EXPECT_FALSE(progressFraction(pts({{"epoch", 2}})));  // no total: no guess
  EXPECT_DOUBLE_EQ(*progressFraction(pts({{"epoch", 2}, {"epochs", 8}})), 0.25);
  EXPECT_DOUBLE_EQ(*progressFraction(pts({{"epoch", 2}, {"epochs", 8}, {"step", 50}, {"steps", 100}})), 0.5);
  EXPECT_DOUBLE_EQ(*progressFraction(pts({{"progress", 0.75}, {"step", 1}, {"steps", 100}})), 0.75);
  EXPECT_DOUBLE_EQ(*etaSeconds(pts({{"epoch", 2}, {"epochs", 8}}), 60), 180);  // a quarter in a minute
  EXPECT_FALSE(etaSeconds(pts({{"epoch", 8}, {"epochs", 8}}), 60));          // done: no ETA
  EXPECT_FALSE(etaSeconds(pts({{"epoch", 0}, {"epochs", 8}}), 60));          // no pace yet
}

TEST(Progress, LineShowsStateEpochMetricsAndEta) {
  ProgressInput in{"job1", "Running", 1, 60.0, pts({{"epoch", 1}, {"epochs", 4}, {"loss", 0.5}})};
  std::string line = renderProgress(in);
  EXPECT_NE(line.find("job1 Running (restarts 1)"), std::string::npos) << line;
  EXPECT_NE(line.find("epoch 1/4"), std::string::npos) << line;
  EXPECT_NE(line.find("loss=0.5"), std::string::npos) << line;
  EXPECT_NE(line.find("25% ETA 3m00s"), std::string::npos) << line;
  EXPECT_EQ(line.find("epochs="), std::string::npos) << line;
}
