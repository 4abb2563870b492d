#include "cli/server_cmd.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <atomic>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/server.h"
#include "cli/serve_cmd.h"
#include "control/control_plane.h"
#include "http/server.h"

namespace trainyard::cli {
namespace fs = std::filesystem;

void stopOnSignal(std::function<void(int)> on_stop) {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread([sigs, on_stop = std::move(on_stop)] {
    int sig = 0;
    sigwait(&sigs, &sig);
    on_stop(sig);
  }).detach();
}

api::GuardOptions guardOptions(const AccessOptions& a, const std::string& address) {
  api::GuardOptions g;
  if (!a.auth_file.empty()) g.auth = api::TokenAuth::load(a.auth_file);
  if (!g.auth && !api::isLoopback(address))
    throw std::runtime_error(fmt::format("refusing to listen on {} without authentication: anyone who can reach it could use it "
                                         "as this user. Pass --auth tokens.yaml, or listen on 127.0.0.1.", address));
  g.address = address;
  g.public_url = a.public_url;
  g.allowed_origins = a.allowed_origins;
  return g;
}

int cmdServer(const ServerCliOptions& o) {
  api::ServerOptions so;
  so.address = o.address;
  so.port = o.port;
  const std::string data_dir = fs::absolute(o.data_dir).lexically_normal().string();
  so.store = o.store.empty() ? data_dir : o.store;
  try {
    auto g = guardOptions(o.access, o.address);
    so.auth = g.auth;
    so.public_url = g.public_url;
    so.allowed_origins = g.allowed_origins;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  fs::create_directories(data_dir);

  std::atomic<api::ApiServer*> running{nullptr};
  std::atomic<bool> stop_requested{false};
  stopOnSignal([&](int sig) {
    spdlog::info("signal {}: stopping (replicas keep running; the next start re-attaches them)", sig);
    stop_requested = true;
    if (auto* s = running.load()) s->stop();
  });

  api::MetricsRegistry metrics;
  metrics.help("trainyard_scheduling_latency_seconds", "histogram", "Time from submission to start (queue wait included)");
  metrics.help("trainyard_reconcile_pass_seconds", "histogram", "Duration of one reconcile pass over all jobs and experiments");
  control::ControllerOptions co;
  co.data_dir = data_dir;
  co.grace = std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
  backend::LocalBackendOptions bo = backend::localBackendOptionsFromEnv();
  bo.tie_to_parent = false;  // replicas outlive a server restart; the next one re-attaches
  // The small supervisor beside this binary; else this binary's own __supervise.
  fs::path self = fs::read_symlink("/proc/self/exe");
  bo.supervisor = fs::exists(self.parent_path() / "trainyard-supervise") ? (self.parent_path() / "trainyard-supervise").string()
                                                                        : self.string();
  control::ControlPlaneHooks hooks;
  hooks.on_admitted = [&](double s) { metrics.observe("trainyard_scheduling_latency_seconds", {}, s); };
  hooks.on_pass = [&](double s) { metrics.observe("trainyard_reconcile_pass_seconds", {}, s); };
  control::ControlPlane plane(so.store, co, bo, hooks);
  try {
    plane.start();
  } catch (const std::exception& e) {
    std::cerr << "error: cannot start the control plane: " << e.what() << "\n";
    return 3;
  }
  if (!o.models_dir.empty()) {
    std::string dir = o.models_dir;
    so.extra_routes = [dir, &metrics](http::Server& http) { hostModels(http, dir, 2, metrics); };
  }
  std::unique_ptr<api::ApiServer> server_ptr;
  try {
    server_ptr = std::make_unique<api::ApiServer>(so, &plane, metrics);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  api::ApiServer& server = *server_ptr;
  int port;
  try {
    port = server.bind();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
  running = &server;
  if (stop_requested) return 0;
  std::cerr << fmt::format("trainyard server listening on http://{}:{} (store {}, data {}{})\n", so.address, port,
                           o.store.empty() ? "sqlite" : "postgresql", data_dir,
                           so.auth ? fmt::format(", {} tokens", so.auth->size()) : ", no authentication");
  server.serve();
  plane.stop();
  return 0;
}

}  // namespace trainyard::cli
