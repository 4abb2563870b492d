// The cluster as a whole: /healthz, Prometheus /metrics (jobs by phase,
// queue length, node usage), nodes and queues.
#include "api/route_context.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/views.h"
#include "control/control_plane.h"
#include "http/server.h"
#include "store/store.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {

class ClusterRoutes final : public RouteGroup, RouteContext {
 public:
  explicit ClusterRoutes(const RouteContext& c) : RouteContext(c) { mount(); }

 private:
  void mount() {
    http.Get("/healthz", [](const http::Request&, http::Response& res) { res.set_content("ok\n", "text/plain"); });
    route("GET", "/metrics", "/metrics", [this](const auto&, auto& res, const User&) {
      if (plane) {
        auto s = plane->status();
        metrics.gaugeReset("trainyard_jobs");
        for (const char* p : {store::kQueued, store::kRunning, store::kRestarting})
          metrics.gaugeSet("trainyard_jobs", {{"phase", p}}, s.jobs_by_phase.count(p) ? s.jobs_by_phase.at(p) : 0);
        metrics.gaugeSet("trainyard_queue_length", {}, s.queued);
        for (const auto& n : s.nodes) {
          auto u = s.used.count(n.name) ? s.used.at(n.name) : sched::Resources{};
          metrics.gaugeSet("trainyard_node_cpu_allocatable_cores", {{"node", n.name}}, n.allocatable.cpu_millis / 1000.0);
          metrics.gaugeSet("trainyard_node_cpu_allocated_cores", {{"node", n.name}}, u.cpu_millis / 1000.0);
          metrics.gaugeSet("trainyard_node_memory_allocatable_bytes", {{"node", n.name}}, double(n.allocatable.memory_bytes));
          metrics.gaugeSet("trainyard_node_memory_allocated_bytes", {{"node", n.name}}, double(u.memory_bytes));
          metrics.gaugeSet("trainyard_node_gpus_allocatable", {{"node", n.name}}, n.allocatable.gpu);
          metrics.gaugeSet("trainyard_node_gpus_allocated", {{"node", n.name}}, u.gpu);
        }
      }
      // Finished jobs by phase, from the store.
      for (const char* p : {store::kSucceeded, store::kFailed}) {
        store::JobQuery q;
        q.phase = p;
        q.limit = 0;
        metrics.gaugeSet("trainyard_jobs", {{"phase", p}}, double(timed("count_jobs", [&] { return db().queryJobs(q); }).total));
      }
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    });
    route("GET", "/api/v1/nodes", "/api/v1/nodes", [this](const auto&, auto& res, const User&) {
      json items = json::array();
      if (plane) {
        auto s = plane->status();
        for (const auto& n : s.nodes) {
          auto u = s.used.count(n.name) ? s.used.at(n.name) : sched::Resources{};
          items.push_back({{"name", n.name},
                           {"allocatable", {{"cpu", n.allocatable.cpu_millis / 1000.0}, {"memoryBytes", n.allocatable.memory_bytes}, {"gpu", n.allocatable.gpu}}},
                           {"allocated", {{"cpu", u.cpu_millis / 1000.0}, {"memoryBytes", u.memory_bytes}, {"gpu", u.gpu}}},
                           {"warnings", s.warnings}});
        }
      }
      int64_t n = static_cast<int64_t>(items.size());
      sendJson(res, 200, page(std::move(items), n, 0, std::max<int64_t>(n, 1)));
    });
    route("GET", "/api/v1/queues", "/api/v1/queues", [this](const auto& req, auto& res, const User& u) {
      store::JobQuery q;
      q.phase = store::kQueued;
      q.offset = intParam(req, "offset", 0, 0, INT64_MAX);
      q.limit = intParam(req, "limit", 100, 1, 1000);
      if (!u.admin) q.viewer = u.name;
      auto p = timed("list_jobs", [&] { return db().queryJobs(q); });
      // Scheduling order: priority, then submission.
      std::stable_sort(p.items.begin(), p.items.end(), [](const auto& a, const auto& b) { return a.spec.priority > b.spec.priority; });
      std::map<std::string, json> queues;
      for (const auto& j : p.items) {
        json& qj = queues[j.spec.queue];
        qj["name"] = j.spec.queue;
        qj["jobs"].push_back({{"name", j.name}, {"priority", j.spec.priority}, {"createdAt", j.created_at}, {"message", j.message}, {"user", j.user}});
      }
      json items = json::array();
      for (auto& [name, qj] : queues) items.push_back(qj);
      sendJson(res, 200, {{"items", items}, {"total", p.total}, {"offset", q.offset}, {"limit", q.limit}});
    });
  }


};

}  // namespace

std::unique_ptr<RouteGroup> mountClusterRoutes(const RouteContext& c) { return std::make_unique<ClusterRoutes>(c); }

}  // namespace trainyard::api
