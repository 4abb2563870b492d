// Control-plane benchmarks (issue #5), each against a baseline measured in
// the same run on the same store:
//   query  - a 1,000,000-point series served downsampled over HTTP vs the
//            full series read from the store (target <= 50 ms downsampled)
//   trials - 10,000 trials: first page and a sort over HTTP vs reading the
//            trials from the store (target <= 100 ms each)
//   push   - 8 concurrent HTTP clients pushing batches of points vs one
//            thread appending the same batches to the store directly
//            (target >= 200,000 points/s)
// Usage: server_bench [--store DIR|postgresql://...] [--keep DIR]
//   --keep DIR  leaves a store with the 10,000-trial experiment in DIR for
//               bench/dashboard_load.mjs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include <fmt/format.h>
#include "http/client.h"
#include <nlohmann/json.hpp>

#include "api/server.h"
#include "spec/parser.h"
#include "store/store.h"

using namespace trainyard;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {
double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

template <typename F>
double medianMs(int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    t.push_back(ms(Clock::now() - t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

store::JobRecord runningJob(store::Store& st, const std::string& name) {
  store::JobRecord j;
  j.name = name;
  j.spec.name = name;
  j.spec.roles.push_back({});
  j.spec.roles[0].command = {"true"};
  j.phase = store::kRunning;
  j.created_at = store::nowSeconds();
  st.createJob(j);
  return j;
}

std::string arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}
}  // namespace

int main(int argc, char** argv) {
  std::string loc = arg(argc, argv, "--store", "");
  std::string keep = arg(argc, argv, "--keep", "");
  std::string tmp;
  if (loc.empty()) {
    tmp = keep.empty() ? (fs::temp_directory_path() / fmt::format("ty-server-bench-{}", getpid())).string() : keep;
    fs::remove_all(tmp);
    loc = tmp;
  }
  auto st = store::openStore(loc);
  fmt::print("store: {}\n", loc.rfind("postgres", 0) == 0 ? "postgresql" : "sqlite");

  api::MetricsRegistry reg;
  api::ServerOptions so;
  so.port = 0;
  so.store = loc;
  api::ApiServer server(so, nullptr, reg);
  int port = server.bind();
  std::thread serving([&] { server.serve(); });
  trainyard::http::Client http(fmt::format("127.0.0.1:{}", port));
  http.set_timeouts(std::chrono::seconds(5), std::chrono::seconds(600));

  // ---------------------------------------------------------------- query
  {
    auto job = runningJob(*st, "million");
    std::mt19937 rng(1);
    std::normal_distribution<double> noise;
    std::vector<metrics::MetricPoint> batch;
    auto t0 = Clock::now();
    for (int64_t i = 0; i < 1000000; ++i) {
      batch.push_back({"loss", std::exp(-i / 2e5) + 0.05 * noise(rng), i, 1.0 * i});
      if (batch.size() == 10000) {
        st->appendMetrics(job.id, batch);
        batch.clear();
      }
    }
    fmt::print("query: stored 1,000,000 points in {:.1f} s\n", ms(Clock::now() - t0) / 1000);
    size_t full_n = 0, body = 0;
    double full = medianMs(3, [&] { full_n = st->metrics(job.id, "loss").size(); });
    double down = medianMs(11, [&] {
      auto r = http.get("/api/v1/jobs/million/metrics/loss?maxPoints=2000");
      body = r.body.size();
    });
    double zoom = medianMs(11, [&] { http.get("/api/v1/jobs/million/metrics/loss?maxPoints=2000&from=250000&to=750000"); });
    double narrow = medianMs(11, [&] { http.get("/api/v1/jobs/million/metrics/loss?maxPoints=2000&from=500000&to=520000"); });
    auto j = nlohmann::json::parse(http.get("/api/v1/jobs/million/metrics/loss?maxPoints=2000").body);
    fmt::print("query: full series from the store ({} points)  {:8.1f} ms\n", full_n, full);
    fmt::print("query: downsampled over HTTP ({} buckets, {} KB)   {:8.1f} ms  (target <= 50)  ratio full/downsampled {:.0f}x\n",
               j["step"].size(), body / 1024, down, full / down);
    fmt::print("query: zoomed to half the range                  {:8.1f} ms\n", zoom);
    fmt::print("query: zoomed to 20,000 steps (raw points read)   {:8.1f} ms\n", narrow);
  }

  // ---------------------------------------------------------------- trials
  {
    // An experiment of `count` finished trials (10% stopped early), as the
    // store would hold it after a sweep.
    auto seedExperiment = [&](const std::string& name, int count) {
      auto loaded = spec::loadSpecString(R"(apiVersion: trainyard.dev/v1
kind: Experiment
metadata: {name: sweep}
spec:
  objective: {metric: loss, goal: minimize}
  algorithm: {name: random}
  parallelTrials: 8
  maxTrials: 10000
  parameters:
    - {name: lr, type: double, min: 0.0001, max: 0.1, scale: log}
    - {name: hidden, type: int, min: 16, max: 1024}
    - {name: optimizer, type: categorical, values: [adam, sgd, rmsprop]}
  trialTemplate:
    spec:
      command: [/bin/true]
)", "big-sweep.yaml", fs::current_path().string());
      store::ExperimentRecord e;
      e.name = name;
      e.spec = *loaded.experiment;
      e.phase = store::kSucceeded;
      e.reason = "MaxTrialsReached";
      e.created_at = store::nowSeconds() - 3600;
      e.finished_at = store::nowSeconds();
      st->createExperiment(e);
      std::mt19937 rng(2);
      std::uniform_real_distribution<double> u;
      const char* opts[] = {"adam", "sgd", "rmsprop"};
      st->transaction([&] {
        for (int n = 0; n < count; ++n) {
          store::TrialRecord t;
          t.experiment_id = e.id;
          t.number = n;
          double lr = std::pow(10, -4 + 3 * u(rng));
          int hidden = 16 + static_cast<int>(u(rng) * 1008);
          t.params = {{"lr", fmt::format("{:.6g}", lr)}, {"hidden", std::to_string(hidden)}, {"optimizer", opts[n % 3]}};
          t.point = {u(rng), u(rng), double(n % 3)};
          bool ok = n % 10 != 0;
          t.state = ok ? store::kTrialSucceeded : store::kTrialEarlyStopped;
          if (ok) t.objective = {std::abs(std::log10(lr) + 2.5) + 100.0 / hidden + 0.1 * u(rng)};
          t.job_name = fmt::format("{}-{}", name, n);
          t.created_at = e.created_at + n * 0.3;
          t.finished_at = t.created_at + 20 + 10 * u(rng);
          st->upsertTrial(t);
        }
      });
      return e;
    };
    auto e = seedExperiment("big-sweep", 10000);
    seedExperiment("small-sweep", 100);  // the baseline of bench/dashboard_load.mjs
    double raw = medianMs(5, [&] { st->trials(e.id); });
    double first = medianMs(9, [&] { http.get("/api/v1/experiments/big-sweep/trials?limit=50"); });
    double sorted = medianMs(9, [&] { http.get("/api/v1/experiments/big-sweep/trials?limit=50&sort=objective&order=asc"); });
    double by_param = medianMs(9, [&] { http.get("/api/v1/experiments/big-sweep/trials?limit=50&sort=param:lr&order=desc"); });
    double summary = medianMs(9, [&] { http.get("/api/v1/experiments/big-sweep"); });
    double columns = medianMs(5, [&] { http.get("/api/v1/experiments/big-sweep/trials?view=columns"); });
    fmt::print("trials: read 10,000 trials from the store        {:8.1f} ms\n", raw);
    fmt::print("trials: first page over HTTP                      {:8.1f} ms  (target <= 100)  ratio {:.2f}\n", first, first / raw);
    fmt::print("trials: sorted by objective, first page           {:8.1f} ms  (target <= 100)  ratio {:.2f}\n", sorted, sorted / raw);
    fmt::print("trials: sorted by a parameter, first page         {:8.1f} ms\n", by_param);
    fmt::print("trials: experiment summary (best, counts, ETA)    {:8.1f} ms\n", summary);
    fmt::print("trials: all 10,000 as columns (charts)            {:8.1f} ms\n", columns);
  }

  // ---------------------------------------------------------------- push
  {
    const int clients = 8, batches = 40, per_batch = 2000;
    // Steps go on from batch to batch, as a training program's do.
    std::vector<std::vector<std::string>> bodies(clients);
    for (int c = 0; c < clients; ++c)
      for (int b = 0; b < batches; ++b) {
        nlohmann::json pts = nlohmann::json::array();
        for (int i = 0; i < per_batch; ++i)
          pts.push_back({{"name", "reward"}, {"value", 0.5 * i}, {"step", b * per_batch + i}});
        bodies[c].push_back(nlohmann::json{{"points", pts}}.dump());
      }
    auto direct = runningJob(*st, "direct");
    auto t0 = Clock::now();
    for (int b = 0; b < clients * batches; ++b) {
      std::vector<metrics::MetricPoint> pts;
      for (int i = 0; i < per_batch; ++i) pts.push_back({"reward", 0.5 * i, int64_t(b) * per_batch + i, 1});
      st->appendMetrics(direct.id, pts);
    }
    double direct_s = ms(Clock::now() - t0) / 1000;
    double direct_rate = clients * batches * per_batch / direct_s;

    for (int c = 0; c < clients; ++c) runningJob(*st, fmt::format("pusher-{}", c));
    std::atomic<int> failures{0};
    t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        trainyard::http::Client cl(fmt::format("127.0.0.1:{}", port));
        for (int b = 0; b < batches; ++b) {
          try {
            auto r = cl.request("POST", fmt::format("/api/v1/jobs/pusher-{}/metrics", c), bodies[c][b], "application/json");
            if (r.status != 200) failures++;
          } catch (const std::exception&) {
            failures++;
          }
        }
      });
    for (auto& t : threads) t.join();
    double http_s = ms(Clock::now() - t0) / 1000;
    double http_rate = clients * batches * per_batch / http_s;
    fmt::print("push: store append, one thread                    {:10.0f} points/s\n", direct_rate);
    fmt::print("push: HTTP, {} clients x {} batches of {}          {:10.0f} points/s  (target >= 200000)  ratio {:.2f}  failures {}\n",
               clients, batches, per_batch, http_rate, http_rate / direct_rate, failures.load());
  }

  server.stop();
  serving.join();
  if (keep.empty() && !tmp.empty()) fs::remove_all(tmp);
  return 0;
}
