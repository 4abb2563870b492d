// What the REST handlers of every resource share (internal to api/): the
// error type and the request/answer helpers, the store of the calling
// thread, the access rules between users, and one route wrapper that turns
// errors into the JSON error shape and records request metrics. A resource
// (jobs, experiments, ...) is a RouteGroup built on a copy of the context;
// the server keeps the groups alive as long as their routes.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "api/auth.h"
#include "api/prometheus.h"
#include "api/server.h"
#include "http/message.h"
#include "spec/parser.h"
#include "store/store.h"

namespace trainyard::api {
using nlohmann::json;
class RequestGuard;

// An error the client can act on: HTTP status, a stable code, a message and
// the request field it is about.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string code, const std::string& message, std::string field = "")
      : std::runtime_error(message), status(status), code(std::move(code)), field(std::move(field)) {}
  int status;
  std::string code;
  std::string field;
};

// Request bodies: a spec (1 MiB) with its JSON envelope; a batch of pushed
// points (at most 100,000). Every other route takes the default 1 MiB.
constexpr size_t kMaxSubmitBody = 2 * spec::kMaxSpecBytes + (64 << 10);
constexpr size_t kMaxPushBody = 16 << 20;

bool acceptsGzip(const http::Request& req);
// JSON with a charset; large answers gzip-compressed when `req` accepts it.
void sendJson(http::Response& res, int status, const json& body, const http::Request* req = nullptr);
void sendError(http::Response& res, int status, const std::string& code, const std::string& message, const std::string& field = "");
// A query parameter as an integer in [lo, hi], or 400 naming it.
int64_t intParam(const http::Request& req, const std::string& name, int64_t fallback, int64_t lo, int64_t hi);
std::string strParam(const http::Request& req, const std::string& name, const std::string& fallback = "");
// {"items", "total", "offset", "limit", "nextOffset"}.
json page(json items, int64_t total, int64_t offset, int64_t limit);
std::optional<double> numeric(const std::string& s);
// The store of the calling thread (stores are not shared across threads).
store::Store& threadStore(const std::string& location);
// A job as lists show it.
json jobSummary(store::Store& db, const store::JobRecord& j);

class RouteContext {
 public:
  RouteContext(const ServerOptions& opts, control::ControlPlane* plane, MetricsRegistry& metrics, http::Server& http,
               const std::atomic<bool>& stopping)
      : opts(opts), plane(plane), metrics(metrics), http(http), stopping(stopping) {}

 protected:
  const ServerOptions& opts;
  control::ControlPlane* plane;  // null: a read-only API over a store
  MetricsRegistry& metrics;
  http::Server& http;
  const std::atomic<bool>& stopping;

  store::Store& db() { return threadStore(opts.store); }

  // Runs `f`, recording its duration as store latency of `op`.
  template <typename F>
  auto timed(const char* op, F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    auto done = [&] {
      metrics.observe("trainyard_store_seconds", {{"op", op}},
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      done();
    } else {
      auto r = f();
      done();
      return r;
    }
  }

  // The caller, as the request guard (api/request_guard.h) authenticated it.
  static User requireUser(const http::Request& req);
  static bool shared(const std::map<std::string, std::string>& labels);
  static bool mayRead(const User& u, const std::string& owner, const std::map<std::string, std::string>& labels);
  // The named job or experiment if `u` may read it (or change it: `write`); else 404/403.
  store::JobRecord job(const User& u, const std::string& name, bool write = false);
  store::ExperimentRecord experiment(const User& u, const std::string& name, bool write = false);

  using Handler = std::function<void(const http::Request&, http::Response&, const User&)>;
  // Registers a handler: errors as JSON, request metrics labelled `label`.
  void route(const char* method, const std::string& pattern, const std::string& label, Handler h, size_t max_body = 0);
  void wake();

  // A spec in a request body: {"yaml": "...", "file": "job.yaml", "baseDir":
  // "/abs", "overrides": ["a=b"]}, or raw YAML. With a workspace, baseDir
  // stays inside it.
  spec::LoadedSpec loadSpecBody(const http::Request& req, const std::string& workspace);
  // DATA_DIR/workspaces/<dir>, made on first use (0700, owned by the jobs'
  // Unix user); its path.
  std::string makeWorkspace(const std::string& dir);
  // New work (a job, an experiment, a notebook) is refused with 507 while
  // the data directory's file system has less than --min-free-disk free:
  // what runs keeps running and its records are written, nothing new
  // starts to fill the disk further.
  void requireFreeSpace();
};

// A resource's routes; its handlers capture it, so the server keeps it.
class RouteGroup {
 public:
  virtual ~RouteGroup() = default;
};

std::unique_ptr<RouteGroup> mountClusterRoutes(const RouteContext& c);     // /healthz, /metrics, nodes, queues
std::unique_ptr<RouteGroup> mountJobRoutes(const RouteContext& c);         // jobs, their metrics and logs
std::unique_ptr<RouteGroup> mountSubmitRoutes(const RouteContext& c);      // POST jobs and experiments
std::unique_ptr<RouteGroup> mountExperimentRoutes(const RouteContext& c);  // experiments and trials
std::unique_ptr<RouteGroup> mountModelRoutes(const RouteContext& c);       // POST a job's model into --models
// Notebooks: their API, the proxy at /notebooks/<owner>/<name>/ and the
// idle culler (a thread from construction to destruction).
std::unique_ptr<RouteGroup> mountNotebookRoutes(const RouteContext& c, RequestGuard& guard);
// The sign-in form (throttled by the guard) and the embedded dashboard: last,
// as its catch-all route answers every other GET.
std::unique_ptr<RouteGroup> mountDashboardRoutes(const RouteContext& c, RequestGuard& guard);

// /api/v1/stream: a watcher thread, from start() to stop(), turns store
// differences into numbered events; each SSE client gets those it may see.
class ChangeStream : public RouteGroup {
 public:
  virtual void start() = 0;
  virtual void stop() = 0;
};
std::unique_ptr<ChangeStream> mountChangeStream(const RouteContext& c);

}  // namespace trainyard::api
