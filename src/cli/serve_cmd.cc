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
#include "serving/http_api.h"
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
  std::string job_name = o.from, what;
  if (auto job = st->getJob(o.from)) {
    what = fmt::format("job {}", o.from);
  } else if (auto e = st->getExperiment(o.from)) {
    auto trials = st->trials(e->id);
    int best = control::ExperimentController::bestTrial(e->spec, trials);
    if (best < 0) {
      std::cerr << fmt::format("error: experiment {} has no succeeded trial with its objective to push\n", o.from);
      return 2;
    }
    job_name = trials[best].job_name;
    what = fmt::format("experiment {}'s best trial #{} (job {})", o.from, trials[best].number, job_name);
  } else {
    std::cerr << fmt::format("error: no job or experiment named \"{}\" (see `trainyard get jobs`, `get experiments`)\n", o.from);
    return 2;
  }
  auto job = st->getJob(job_name);
  if (!job || job->phase != store::kSucceeded) {
    std::cerr << fmt::format("error: {} has not succeeded ({}): nothing to push\n", what, job ? job->phase : "deleted");
    return 2;
  }
  fs::path src = fs::path(job->outputs_dir) / "model.pt";
  if (!fs::exists(src)) {
    std::cerr << fmt::format("error: {} exported no model: {} does not exist (write TorchScript to $TRAINYARD_OUTPUT_DIR/model.pt)\n",
                             what, src.string());
    return 2;
  }
  if (!spec::isValidName(o.name)) {
    std::cerr << fmt::format("error: --name {}: expected lower-case letters, digits and '-' (a DNS-1123 label)\n", o.name);
    return 2;
  }
  fs::path model_dir = fs::path(o.models_dir) / o.name;
  fs::create_directories(model_dir);
  int64_t next = 1;
  for (const auto& d : fs::directory_iterator(model_dir)) {
    std::string n = d.path().filename().string();
    if (d.is_directory() && !n.empty() && n.find_first_not_of("0123456789") == std::string::npos && n.size() < 16)
      next = std::max<int64_t>(next, std::stoll(n) + 1);
  }
  // Copied beside, then renamed: a polling server never sees half a file.
  fs::path tmp = model_dir / fmt::format(".push-{}", getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy_file(src, tmp / "model.pt");
  fs::path dst = model_dir / std::to_string(next);
  fs::rename(tmp, dst);
  nlohmann::json out{{"model", o.name}, {"version", next}, {"path", (dst / "model.pt").string()}, {"from", what}};
  if (parseOutputFormat(output) == OutputFormat::Table)
    std::cout << fmt::format("pushed {} as model {} version {} ({})\n", what, o.name, next, (dst / "model.pt").string());
  else if (parseOutputFormat(output) == OutputFormat::Json)
    printJson(std::cout, out);
  else
    printYaml(std::cout, out);
  return 0;
}

}  // namespace trainyard::cli
