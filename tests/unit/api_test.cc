// Pure pieces of the control plane's API: downsampling, token files,
// Prometheus rendering, loopback detection.
#include <gtest/gtest.h>

#include <fstream>

#include "api/auth.h"
#include "api/prometheus.h"
#include "api/request_guard.h"
#include "api/server.h"
#include "http/message.h"
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

// A span of 10^15 (or the whole int64 range) is answered in closed form;
// the loop it replaced spun for hours there.
TEST(Downsample, WidthOfHugeSpansInClosedForm) {
  struct Case { int64_t from, to; };
  for (auto c : {Case{-1'000'000'000'000'000, 0}, Case{-1'000'000'000'000, 1'000'000'000'000}, Case{INT64_MIN / 4, INT64_MAX / 4},
                 Case{0, INT64_MAX / 2}, Case{-5, 5}})
    for (int max_points : {2, 10, 2000})
      for (int64_t granule : {1, 64, 4096}) {
        int64_t w = metrics::bucketWidth(c.from, c.to, max_points, granule);
        ASSERT_GT(w, 0);
        EXPECT_LE(metrics::bucketOf(c.to, w) - metrics::bucketOf(c.from, w) + 1, max_points) << c.from << " " << c.to;
        if (granule > 1) EXPECT_EQ(w % granule, 0);
      }
}

namespace {
http::Request request(const std::string& method, const std::string& path, http::Headers headers, std::string body = "") {
  http::Request r;
  r.method = method;
  r.path = path;
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.remote_addr = "127.0.0.1";
  return r;
}
int status(api::RequestGuard& g, http::Request r) {
  http::Response res;
  return g.check(r, res) ? res.status : 0;  // 0: let through
}
}  // namespace

// What a page on another site (or a rebound DNS name) can send is refused;
// what the CLI, curl and our own dashboard send is not.
TEST(RequestGuard, HostOriginAndContentType) {
  api::GuardOptions o;
  o.allowed_origins = {"https://dash.example.org/"};
  api::RequestGuard g(o);
  const http::Headers local{{"Host", "127.0.0.1:8080"}};
  EXPECT_EQ(status(g, request("GET", "/api/v1/jobs", local)), 0);
  EXPECT_EQ(status(g, request("GET", "/api/v1/jobs", {{"Host", "localhost:8080"}})), 0);
  EXPECT_EQ(status(g, request("GET", "/api/v1/jobs", {{"Host", "[::1]:8080"}})), 0);
  EXPECT_EQ(status(g, request("GET", "/api/v1/jobs", {{"Host", "evil.example:8080"}})), 403);
  EXPECT_EQ(status(g, request("GET", "/api/v1/jobs", {})), 403);
  auto post = [&](http::Headers h, std::string body = "x: 1") {
    h.emplace("Host", "127.0.0.1:8080");
    return status(g, request("POST", "/api/v1/jobs", h, body));
  };
  EXPECT_EQ(post({{"Content-Type", "application/yaml"}}), 0);
  EXPECT_EQ(post({{"Content-Type", "application/json; charset=utf-8"}}), 0);
  EXPECT_EQ(post({{"Content-Type", "text/plain"}}), 415);
  EXPECT_EQ(post({}), 415);
  EXPECT_EQ(post({}, ""), 0);  // no body: cancel
  EXPECT_EQ(post({{"Content-Type", "application/yaml"}, {"Origin", "http://127.0.0.1:8080"}}), 0);
  EXPECT_EQ(post({{"Content-Type", "application/yaml"}, {"Origin", "https://dash.example.org"}}), 0);
  EXPECT_EQ(post({{"Content-Type", "application/yaml"}, {"Origin", "http://127.0.0.1:9999"}}), 403);
  EXPECT_EQ(post({{"Content-Type", "application/yaml"}, {"Origin", "https://evil.example"}}), 403);
  EXPECT_EQ(post({{"Content-Type", "application/yaml"}, {"Origin", "null"}}), 403);
  // The inference protocols' published examples post with curl -d (a form type).
  EXPECT_EQ(status(g, request("POST", "/v2/models/m/infer", {{"Host", "127.0.0.1:8500"}, {"Content-Type", "application/x-www-form-urlencoded"}}, "{}")), 0);
  EXPECT_EQ(status(g, request("POST", "/v2/models/m/infer", {{"Host", "127.0.0.1:8500"}, {"Origin", "https://evil.example"}}, "{}")), 403);
}

TEST(RequestGuard, TokensCookiesAndThrottling) {
  std::string path = test::freshDir() + "/tokens.yaml";
  std::ofstream(path) << "tokens:\n  - {token: alice-token-1, user: alice}\n";
  api::GuardOptions o;
  o.auth = api::TokenAuth::load(path);
  o.failure_burst = 3;
  o.failure_refill = std::chrono::hours(1);
  api::RequestGuard g(o);
  auto get = [&](http::Headers h, const std::string& p = "/api/v1/jobs") {
    h.emplace("Host", "127.0.0.1:8080");
    return status(g, request("GET", p, h));
  };
  EXPECT_EQ(get({}), 401);
  EXPECT_EQ(get({}, "/healthz"), 0);
  EXPECT_EQ(get({{"Authorization", "Bearer alice-token-1"}}), 0);
  EXPECT_EQ(get({{"Authorization", "bearer alice-token-1"}}), 0);  // RFC 7235: the scheme is case-insensitive
  EXPECT_EQ(get({{"Cookie", "a=b; trainyard_token=alice-token-1"}}), 0);
  http::Request cookie_write = request("POST", "/api/v1/jobs/x/cancel", {{"Host", "127.0.0.1:8080"}, {"Cookie", "trainyard_token=alice-token-1"}});
  EXPECT_EQ(status(g, cookie_write), 403);  // CSRF: a cookie rides along with any page's request
  cookie_write.headers.emplace("Origin", "http://127.0.0.1:8080");
  http::Response res;
  EXPECT_FALSE(g.check(cookie_write, res));
  EXPECT_EQ(api::RequestGuard::user(cookie_write).name, "alice");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get({{"Authorization", "Bearer wrong-" + std::to_string(i)}}), 401);
  EXPECT_EQ(get({{"Authorization", "Bearer wrong-x"}}), 429);
  EXPECT_EQ(get({{"Authorization", "Bearer alice-token-1"}}), 429);  // no oracle while throttled
}
