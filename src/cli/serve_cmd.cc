#include "cli/serve_cmd.h"

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/prometheus.h"
#include "api/request_guard.h"
#include "http/server.h"
#include "cli/output.h"
#include "cli/server_cmd.h"
#include "control/experiment_controller.h"
#include "api/views.h"
#include "serving/http_api.h"
#include "serving/model_push.h"
#include "serving/manager.h"
#include "spec/parser.h"
#include "store/store.h"

namespace trainyard::cli {
namespace fs = std::filesystem;

namespace {
// The manager lives as long as the process once hosted.
std::unique_ptr<serving::ModelManager>& hosted() {
  static std::unique_ptr<serving::ModelManager> m;
  return m;
}
}  // namespace

void hostModels(http::Server& http, const std::string& models_dir, double poll_seconds, api::MetricsRegistry& metrics) {
  // One BLAS/OpenMP thread per model instance: pthread OpenBLAS otherwise
  // spins on sched_yield beside libtorch's pool (set before libtorch loads).
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  setenv("OMP_NUM_THREADS", "1", 0);
  if (!fs::is_directory(models_dir))
    throw std::runtime_error(fmt::format("{}: not a directory (the model repository: {}/<model>/<version>/model.pt)", models_dir, models_dir));
  serving::describeInferenceMetrics(metrics);
  auto loader = serving::torchScriptLoader();
  auto* reg = &metrics;
  auto manager = std::make_unique<serving::ModelManager>(models_dir, loader, [reg](const std::string& m, int64_t v, int rows, int64_t) {
    reg->observe("trainyard_inference_batch_size", {{"model", m}, {"version", std::to_string(v)}}, rows);
  });
  for (const auto& change : manager->poll()) spdlog::info("{}", change);
  manager->startPolling(std::chrono::milliseconds(static_cast<int64_t>(poll_seconds * 1000)));
  serving::mountInferenceApi(http, *manager, metrics);
  hosted() = std::move(manager);
}

int cmdServe(const ServeOptions& o) {
  std::unique_ptr<api::RequestGuard> guard;
  try {
    if (o.access.auth_file == "kubernetes") throw std::runtime_error("--auth kubernetes is for `trainyard server --backend kubernetes`");
    guard = std::make_unique<api::RequestGuard>(guardOptions(o.access, o.address));
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  http::ServerLimits limits;
  limits.workers = o.threads;
  limits.io_threads = 2;
  http::Server http(limits);
  stopOnSignal([&http](int) { http.stop(); });
  api::MetricsRegistry metrics;
  try {
    hostModels(http, o.models_dir, o.poll_seconds, metrics);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  http.Get("/metrics", [&](const http::Request&, http::Response& res) {
    auto& m = *hosted();
    for (const auto& name : m.models())
      for (auto v : m.versions(name))
        try {
          metrics.gaugeSet("trainyard_inference_queue_size", {{"model", name}, {"version", std::to_string(v)}},
                           static_cast<double>(m.find(name, v, std::nullopt)->batcher->queued()));
        } catch (const std::out_of_range&) {
        }
    res.set_content(metrics.render(), "text/plain; version=0.0.4");
  });
  http.Get("/healthz", [](const http::Request&, http::Response& res) { res.set_content("ok\n", "text/plain"); });
  http.set_pre_routing([&guard](http::Request& req, http::Response& res) { return guard->check(req, res); });
  int port;
  try {
    port = http.bind(o.address, o.port);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
  std::cerr << fmt::format("trainyard serve listening on http://{}:{} (models {}: {}; {})\n", o.address, port, o.models_dir,
                           fmt::join(hosted()->models(), ", "), guard->authEnabled() ? "tokens required" : "no authentication");
  http.listen();
  hosted().reset();
  return 0;
}

int cmdModelsPush(const PushOptions& o, const std::string& output) {
  auto st = store::openStore(o.data_dir);
  api::ModelSource src;
  serving::Pushed pushed;
  try {
    src = api::modelSource(*st, o.from);
    pushed = serving::pushModel(o.models_dir, o.name, (fs::path(src.job.outputs_dir) / "model.pt").string());
  } catch (const std::invalid_argument& e) {
    std::cerr << "error: " << e.what() << " (see `trainyard get jobs`, `get experiments`)\n";
    return 2;
  } catch (const serving::PushError& e) {
    std::cerr << fmt::format("error: {}: {}\n", o.from, e.what());
    return 2;
  }
  printPushed(nlohmann::json{{"model", o.name}, {"version", pushed.version}, {"path", pushed.path}, {"from", src.what}}, output);
  return 0;
}

void printPushed(const nlohmann::json& out, const std::string& output) {
  if (parseOutputFormat(output) == OutputFormat::Table)
    std::cout << fmt::format("pushed {} as model {} version {} ({})\n", out.value("from", ""), out.value("model", ""),
                             out.value("version", 0), out.value("path", ""));
  else if (parseOutputFormat(output) == OutputFormat::Json)
    printJson(std::cout, out);
  else
    printYaml(std::cout, out);
}

}  // namespace trainyard::cli
