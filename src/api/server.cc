#include "api/server.h"

#include <arpa/inet.h>

#include <atomic>
#include <vector>

#include "api/request_guard.h"
#include "api/route_context.h"
#include "http/server.h"

namespace trainyard::api {

bool isLoopback(const std::string& address) {
  if (address == "localhost" || address == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, address.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

// The server is its parts: the request guard in front of every route, the
// HTTP layer, and one RouteGroup per resource (route_context.h).
struct ApiServer::Impl {
  ServerOptions opts;
  control::ControlPlane* plane;
  MetricsRegistry& metrics;
  RequestGuard guard;
  http::Server http;
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<RouteGroup>> groups;
  std::unique_ptr<ChangeStream> stream;

  Impl(ServerOptions o, control::ControlPlane* p, MetricsRegistry& m)
      : opts(std::move(o)), plane(p), metrics(m), guard(guardOptions(opts)), http(limits(opts)) {
    RouteContext c(opts, plane, metrics, http, stopping);
    groups.push_back(mountClusterRoutes(c));
    groups.push_back(mountJobRoutes(c));
    groups.push_back(mountSubmitRoutes(c));
    groups.push_back(mountExperimentRoutes(c));
    groups.push_back(mountModelRoutes(c));
    stream = mountChangeStream(c);
    groups.push_back(mountNotebookRoutes(c, guard));
    if (opts.extra_routes) opts.extra_routes(http);  // the inference API, before the dashboard's catch-all
    groups.push_back(mountDashboardRoutes(c, guard));
    http.set_pre_routing([this](http::Request& req, http::Response& res) { return guard.check(req, res); });
  }

  static GuardOptions guardOptions(const ServerOptions& o) {
    GuardOptions g = o.access;
    g.address = o.address;
    g.dashboard = true;
    return g;
  }
  static http::ServerLimits limits(const ServerOptions& o) {
    http::ServerLimits l;
    l.workers = o.threads;
    return l;
  }
};

ApiServer::ApiServer(ServerOptions opts, control::ControlPlane* plane, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(opts), plane, metrics)) {
  auto& m = impl_->metrics;
  m.help("trainyard_http_requests_total", "counter", "HTTP requests by method, route and status code");
  m.help("trainyard_http_request_duration_seconds", "histogram", "HTTP request handling time");
  m.help("trainyard_store_seconds", "histogram", "Store operation latency by operation");
  m.help("trainyard_jobs", "gauge", "Jobs by phase");
  m.help("trainyard_queue_length", "gauge", "Jobs waiting for resources");
  m.help("trainyard_queue_pending_jobs", "gauge", "Jobs waiting, per queue");
  m.help("trainyard_queue_running_jobs", "gauge", "Jobs holding resources, per queue");
  m.help("trainyard_queue_usage", "gauge", "Resources held by a queue's jobs (cpu in cores, memory in bytes, gpu in devices)");
  m.help("trainyard_queue_quota", "gauge", "A queue's nominal quota, where it has one");
  m.help("trainyard_pushed_points_total", "counter", "Metric points received through the push API");
}

ApiServer::~ApiServer() { stop(); }

int ApiServer::bind() {
  auto& o = impl_->opts;
  o.port = impl_->http.bind(o.address, o.port);
  return o.port;
}

void ApiServer::serve() {
  impl_->stream->start();
  impl_->http.listen();
}

void ApiServer::handle(http::Request& req, http::Response& res) { impl_->http.dispatch(req, res); }

void ApiServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->stream->stop();
  impl_->http.stop();
}

}  // namespace trainyard::api
