// Pure pieces of the control plane's API: downsampling, token files,
// Prometheus rendering, loopback detection.
#include <gtest/gtest.h>

#include <fstream>

#include "api/auth.h"
#include "api/prometheus.h"
#include "api/server.h"
#include "metrics/downsample.h"
#include "test_util.h"

using namespace trainyard;

TEST(Downsample, BucketsKeepMinMaxAndLast) {
  metrics::Downsampler d(10);
  for (int i = 0; i < 25; ++i) d.add(i, i == 13 ? -5.0 : i);
  const auto& b = d.buckets();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].step, 9);
  EXPECT_EQ(b[0].min, 0);
  EXPECT_EQ(b[0].max, 9);
  EXPECT_EQ(b[1].min, -5);  // the spike survives
  EXPECT_EQ(b[1].last, 19);
  EXPECT_EQ(b[2].n, 5);
  EXPECT_EQ(b[2].last, 24);
}

TEST(Downsample, WidthKeepsWithinMaxPoints) {
  for (int64_t span : {1, 7, 999, 1000, 1001, 123457, 1000000})
    for (int max_points : {1, 10, 2000})
      for (int64_t granule : {1, 64, 4096}) {
        int64_t w = metrics::bucketWidth(3, 3 + span - 1, max_points, granule);
        EXPECT_LE(metrics::bucketOf(3 + span - 1, w) - metrics::bucketOf(3, w) + 1, max_points)
            << span << " " << max_points << " " << granule;
        if (granule > 1) {
          EXPECT_EQ(w % granule, 0);
        }
      }
  EXPECT_EQ(metrics::bucketOf(-1, 64), -1);
  EXPECT_EQ(metrics::bucketOf(-64, 64), -1);
  EXPECT_EQ(metrics::bucketOf(-65, 64), -2);
}

TEST(TokenAuth, LoadsUsersAndNamesTheBadField) {
  auto dir = test::freshDir();
  std::ofstream(dir + "/ok.yaml") << "tokens:\n  - token: alice-secret-1\n    user: alice\n  - token: root-secret-2\n    user: ops\n    admin: true\n";
  auto auth = api::TokenAuth::load(dir + "/ok.yaml");
  EXPECT_EQ(auth.lookup("alice-secret-1")->name, "alice");
  EXPECT_FALSE(auth.lookup("alice-secret-1")->admin);
  EXPECT_TRUE(auth.lookup("root-secret-2")->admin);
  EXPECT_FALSE(auth.lookup("nope"));
  std::ofstream(dir + "/bad.yaml") << "tokens:\n  - token: alice-secret-1\n    user: alice\n  - token: short\n    user: bob\n";
  try {
    api::TokenAuth::load(dir + "/bad.yaml");
    FAIL();
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.yaml:4:"), std::string::npos) << m;
    EXPECT_NE(m.find("tokens[1].token"), std::string::npos) << m;
  }
  EXPECT_THROW(api::TokenAuth::load(dir + "/missing.yaml"), std::runtime_error);
}

TEST(Prometheus, RendersCountersGaugesAndCumulativeHistograms) {
  api::MetricsRegistry m;
  m.help("reqs_total", "counter", "Requests");
  m.counterAdd("reqs_total", {{"code", "200"}});
  m.counterAdd("reqs_total", {{"code", "200"}}, 2);
  m.gaugeSet("queue", {}, 4);
  m.observe("lat_seconds", {{"op", "x\"y"}}, 0.003);
  m.observe("lat_seconds", {{"op", "x\"y"}}, 20);
  std::string out = m.render();
  EXPECT_NE(out.find("# TYPE reqs_total counter"), std::string::npos) << out;
  EXPECT_NE(out.find("reqs_total{code=\"200\"} 3"), std::string::npos) << out;
  EXPECT_NE(out.find("queue 4"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{op=\"x\\\"y\",le=\"0.005\"} 1"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_bucket{op=\"x\\\"y\",le=\"+Inf\"} 2"), std::string::npos) << out;
  EXPECT_NE(out.find("lat_seconds_count{op=\"x\\\"y\"} 2"), std::string::npos) << out;
}

TEST(Server, LoopbackAddresses) {
  EXPECT_TRUE(api::isLoopback("127.0.0.1"));
  EXPECT_TRUE(api::isLoopback("127.1.2.3"));
  EXPECT_TRUE(api::isLoopback("localhost"));
  EXPECT_TRUE(api::isLoopback("::1"));
  EXPECT_FALSE(api::isLoopback("0.0.0.0"));
  EXPECT_FALSE(api::isLoopback("10.0.0.5"));
}
