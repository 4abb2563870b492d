#include "cli/server_cmd.h"
#include "spec/quantity.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <filesystem>
#include <iostream>
#include <atomic>
#include <thread>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/server.h"
#include "api/views.h"
#include "cli/operator_hooks.h"
#include "backend/container/podman.h"
#include "backend/kubernetes/token_review.h"
#include "spec/parser.h"
#include "cli/serve_cmd.h"
#include "control/control_plane.h"
#include "control/admission.h"
#include "control/experiment_controller.h"
#include "http/server.h"
#include "store/store.h"

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
  if (a.auth_file == "kubernetes") {
    // The cluster checks tokens; the server sets the verifier (it knows the cluster).
    g.auth = api::TokenAuth::external([](const std::string&) { return std::optional<api::User>(); });
  } else if (!a.auth_file.empty()) {
    // Like ssh with a private key: tokens others can read are not secrets.
    struct stat st{};
    if (::stat(a.auth_file.c_str(), &st) == 0 && (st.st_mode & 077))
      throw std::runtime_error(fmt::format("{}: the token file is accessible to other users (mode {:04o}); chmod 600 it", a.auth_file,
                                           st.st_mode & 07777));
    g.auth = api::TokenAuth::load(a.auth_file);
  }
  if (!g.auth && !api::isLoopback(address))
    throw std::runtime_error(fmt::format("refusing to listen on {} without authentication: anyone who can reach it could use it "
                                         "as this user. Pass --auth tokens.yaml, or listen on 127.0.0.1.", address));
  g.address = address;
  g.public_url = a.public_url;
  g.allowed_origins = a.allowed_origins;
  return g;
}

namespace {
// The user jobs run as. Root never runs them as itself unless told to
// (--run-as root): a job could read the token file and the store.
struct RunAs {
  bool switch_user = false;
  std::string name, home;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<unsigned> groups;
};

RunAs resolveRunAs(const std::string& requested) {
  RunAs r;
  bool root = geteuid() == 0;
  std::string name = requested.empty() && root ? "trainyard-jobs" : requested;
  if (name.empty()) return r;  // not root: jobs run as this user, the owner of everything here
  passwd pw{}, *found = nullptr;
  std::vector<char> buf(16384);
  getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (!found) {
    if (requested.empty())
      throw std::runtime_error(
          "running as root: jobs must not run as root beside the store and the token file. Create the unprivileged user "
          "trainyard-jobs (scripts/setup.sh does: useradd --system --user-group trainyard-jobs), pass --run-as USER, or "
          "--run-as root to accept jobs running as root");
    throw std::runtime_error(fmt::format("--run-as {}: no such user", name));
  }
  if (found->pw_uid == geteuid()) return r;  // --run-as root (or oneself): explicit, no switch
  if (!root) throw std::runtime_error(fmt::format("--run-as {}: switching users needs root", name));
  r.switch_user = true;
  r.name = name;
  r.home = found->pw_dir ? found->pw_dir : "/";
  r.uid = found->pw_uid;
  r.gid = found->pw_gid;
  int n = 64;
  std::vector<gid_t> groups(n);
  if (getgrouplist(name.c_str(), r.gid, groups.data(), &n) < 0) {
    groups.resize(n);
    getgrouplist(name.c_str(), r.gid, groups.data(), &n);
  }
  for (int i = 0; i < n; ++i) r.groups.push_back(groups[i]);
  return r;
}
}  // namespace

void applyClusterFlags(const ClusterFlags& f, backend::LocalBackendOptions& bo, control::ControllerOptions& co) {
  bo.nodes = std::max(1, f.nodes);
  bo.pin_cpus = f.pin_cpus;
  co.scheduling.gpu_sharing = f.gpu_sharing;
  co.scheduling.preemption = !f.no_preemption;
  co.scheduling.backfill = !f.no_backfill;
  co.batch_backlog = f.batch_backlog;
  if (f.containers != "host") bo.podman = backend::podman::findPodman();
  if (f.containers == "podman" && bo.podman.empty())
    throw std::runtime_error("--containers podman: podman is not installed (apt-get install podman runc)");
}

int cmdServer(const ServerCliOptions& o) {
  api::ServerOptions so;
  so.address = o.address;
  so.port = o.port;
  const std::string data_dir = fs::absolute(o.data_dir).lexically_normal().string();
  so.store = o.store.empty() ? data_dir : o.store;
  try {
    so.access = guardOptions(o.access, o.address);
    if (o.access.auth_file == "kubernetes") {
      if (o.backend != "kubernetes") throw std::runtime_error("--auth kubernetes needs --backend kubernetes (the cluster checks the tokens)");
      auto review = backend::kubernetesTokenReviewer(o.cluster.kube);
      so.access.auth = api::TokenAuth::external([review](const std::string& token) -> std::optional<api::User> {
        auto u = review(token);
        if (!u) return std::nullopt;
        return api::User{u->name, u->admin};
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  RunAs run_as;
  try {
    run_as = resolveRunAs(o.run_as);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  // What the server writes is its own (store, logs, tokens' neighbours);
  // what jobs need is handed to their user explicitly (outputs, workspaces,
  // config files). Replicas get the umask this process started with.
  mode_t started_umask = umask(077);
  fs::create_directories(data_dir);
  // 0700; 0711 when jobs run as another user, who must reach the outputs
  // and workspaces handed to it inside (but cannot list the directory).
  if (chmod(data_dir.c_str(), run_as.switch_user ? 0711 : 0700) != 0)
    spdlog::warn("cannot restrict {}: {}", data_dir, std::strerror(errno));
  if (run_as.switch_user)  // traversable (not listable) for the job user, who owns what is handed to it inside
    for (const char* d : {"logs", "outputs"}) {
      fs::create_directories(fs::path(data_dir) / d);
      chmod((fs::path(data_dir) / d).c_str(), 0711);
    }
  for (const auto& f : store::storeFiles(so.store)) chmod(f.c_str(), 0600);  // a store made before this umask

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
  bo.child_umask = static_cast<int>(started_umask);
  applyClusterFlags(o.cluster, bo, co);
  bo.log_root = (fs::path(data_dir) / "logs").string();
  if (run_as.switch_user) {
    bo.run_uid = co.run_uid = static_cast<int>(run_as.uid);
    bo.run_gid = co.run_gid = static_cast<int>(run_as.gid);
    bo.run_groups = run_as.groups;
    bo.run_home = run_as.home;
    bo.run_user = run_as.name;
    so.workspace_uid = bo.run_uid;
    so.workspace_gid = bo.run_gid;
  }
  so.data_dir = data_dir;
  so.backend = o.backend;
  if (auto b = spec::parseMemoryBytes(o.min_free_disk); b && *b >= 0) {
    so.min_free_disk = *b;
  } else {
    std::cerr << fmt::format("error: --min-free-disk: expected bytes such as 100Mi or 2Gi, got \"{}\"\n", o.min_free_disk);
    return 2;
  }
  // The small supervisor beside this binary; else this binary's own __supervise.
  fs::path self = fs::read_symlink("/proc/self/exe");
  bo.supervisor = fs::exists(self.parent_path() / "trainyard-supervise") ? (self.parent_path() / "trainyard-supervise").string()
                                                                        : self.string();
  control::ControlPlaneHooks hooks;
  hooks.on_admitted = [&](double s) { metrics.observe("trainyard_scheduling_latency_seconds", {}, s); };
  hooks.on_pass = [&](double s) { metrics.observe("trainyard_reconcile_pass_seconds", {}, s); };
  backend::BackendFactory make_backend;
  try {
    auto kube = o.cluster.kube;
    kube.log_root = bo.log_root;
    auto slurm = o.cluster.slurm;
    slurm.log_root = bo.log_root;
    slurm.trainyard = self.string();
    slurm.run_uid = bo.run_uid;
    slurm.run_gid = bo.run_gid;
    make_backend = backend::backendFactory(o.backend, bo, kube, slurm);
    // A backend that cannot be made (a kubeconfig that cannot be read, its
    // plugin missing) is the user's to fix, said now rather than by the loop.
    if (o.backend != "local") make_backend();
  } catch (const std::invalid_argument& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: --backend " << o.backend << ": " << e.what() << "\n";
    return 2;
  }
  control::ControlPlane plane(so.store, co, make_backend, hooks);
  try {
    plane.start();
  } catch (const std::exception& e) {
    std::cerr << "error: cannot start the control plane: " << e.what() << "\n";
    return 3;
  }
  // Operator mode: TrainJob resources applied with kubectl become jobs.
  std::unique_ptr<backend::Operator> op;
  if (o.backend == "kubernetes") {
    auto op_hooks = operatorHooks(plane, so.store);
    try {
      auto kube = o.cluster.kube;
      op = backend::startOperator(kube, std::move(op_hooks));
    } catch (const std::exception& e) {
      spdlog::warn("operator mode off: {}", e.what());
    }
  }
  if (!o.models_dir.empty()) {
    std::string dir = o.models_dir;
    so.extra_routes = [dir, &metrics](http::Server& http) { hostModels(http, dir, 2, metrics); };
    so.models_dir = dir;
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
  std::cerr << fmt::format("trainyard server listening on http://{}:{} (store {}, data {}{}{})\n", so.address, port,
                           o.store.empty() ? "sqlite" : "postgresql", data_dir,
                           so.access.auth ? fmt::format(", {} tokens", so.access.auth->size()) : ", no authentication",
                           run_as.switch_user ? ", jobs run as " + run_as.name : "");
  server.serve();
  op.reset();  // before the control plane it submits to
  plane.stop();
  return 0;
}

}  // namespace trainyard::cli
