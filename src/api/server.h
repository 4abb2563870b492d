// The control plane's HTTP face: REST under /api/v1 (JSON; errors as
// {"error": {"code", "message", "field"}}), Server-Sent Events for logs and
// state changes, Prometheus text at /metrics, /healthz, and the dashboard.
// Handlers only read the store and write desired state (submit, cancel,
// delete, pushed metrics) to it, then wake the control plane: the
// reconcile loop is the only thing that acts on replicas.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/request_guard.h"
#include "api/prometheus.h"
#include "control/control_plane.h"

namespace trainyard::http {
class Server;
struct Request;
struct Response;
}

namespace trainyard::api {

struct ServerOptions {
  std::string address = "127.0.0.1";
  int port = 8080;          // 0: any free port (see port())
  std::string store;        // data directory or postgresql:// URL (logs and outputs: the control plane's data_dir)
  // Tokens, --public-url, --allowed-origins (its address is `address`).
  GuardOptions access;
  // Non-admin users' specs are confined to DATA_DIR/workspaces/<user>
  // (workingDir, baseDir, outputs.dir), owned by the jobs' Unix user.
  std::string data_dir;
  int workspace_uid = -1, workspace_gid = -1;
  int threads = 16;         // handler threads (SSE streams get their own, up to a cap)
  // More routes (the inference API), mounted before the dashboard's catch-all.
  std::function<void(http::Server&)> extra_routes;
  int64_t min_free_disk = 0;  // bytes free in data_dir below which new work is refused (507)
  std::string backend = "local";  // --backend: notebooks need the local one (their proxy reaches loopback)
  std::string models_dir;  // --models: the repository POST /api/v1/models pushes into ("": none)
};

// True for 127.0.0.0/8, ::1 and localhost.
bool isLoopback(const std::string& address);

class ApiServer {
 public:
  // `plane` may be null (read-only API over a store, as in tests and benches).
  ApiServer(ServerOptions opts, control::ControlPlane* plane, MetricsRegistry& metrics);
  ~ApiServer();
  // Binds (throws with the reason when it cannot); returns the port.
  int bind();
  // Serves until stop().
  void serve();
  void stop();
  // Answers one request in-process (guard, routes, handlers): tests, fuzzing.
  void handle(http::Request& req, http::Response& res);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace trainyard::api
