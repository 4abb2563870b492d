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
#include "control/admission.h"
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
        // Per queue: waiting and running jobs, usage and quota (quota only where set).
        json queues = timed("queues", [&] { return queuesJson(db(), std::nullopt); })["items"];
        for (const char* g : {"trainyard_queue_pending_jobs", "trainyard_queue_running_jobs", "trainyard_queue_usage",
                              "trainyard_queue_quota"})
          metrics.gaugeReset(g);
        for (const auto& q : queues) {
          std::string name = q["name"].get<std::string>();
          metrics.gaugeSet("trainyard_queue_pending_jobs", {{"queue", name}}, q["pending"].get<double>());
          metrics.gaugeSet("trainyard_queue_running_jobs", {{"queue", name}}, q["running"].get<double>());
          for (const auto& [res, v] : q["usage"].items()) metrics.gaugeSet("trainyard_queue_usage", {{"queue", name}, {"resource", res}}, v.template get<double>());
          for (const auto& [res, v] : q["quota"].items()) metrics.gaugeSet("trainyard_queue_quota", {{"queue", name}, {"resource", res}}, v.template get<double>());
        }
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
      for (const char* p : {store::kSucceeded, store::kFailed, store::kStopped}) {
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
        // States from the store (what an administrator said, at once), not
        // from the control plane's last pass.
        auto states = timed("node_states", [&] { return db().nodeStates(); });
        for (const auto& n : s.nodes) {
          auto u = s.used.count(n.name) ? s.used.at(n.name) : sched::Resources{};
          std::string state = "Ready", reason;
          for (const auto& ns : states)
            if (ns.name == n.name) state = ns.state, reason = ns.reason;
          items.push_back({{"name", n.name},
                           {"state", state},
                           {"stateReason", reason},
                           {"labels", n.labels},
                           {"allocatable", {{"cpu", n.allocatable.cpu_millis / 1000.0}, {"memoryBytes", n.allocatable.memory_bytes}, {"gpu", n.allocatable.gpu}}},
                           {"allocated", {{"cpu", u.cpu_millis / 1000.0}, {"memoryBytes", u.memory_bytes}, {"gpu", u.gpu}}},
                           {"warnings", s.warnings}});
        }
      }
      int64_t n = static_cast<int64_t>(items.size());
      sendJson(res, 200, page(std::move(items), n, 0, std::max<int64_t>(n, 1)));
    });
    route("GET", "/api/v1/queues", "/api/v1/queues", [this](const auto&, auto& res, const User& u) {
      json items = timed("queues", [&] { return queuesJson(db(), u.admin ? std::nullopt : std::optional<std::string>(u.name)); });
      json cohorts = items["cohorts"], users = items["users"];
      items = items["items"];
      int64_t n = static_cast<int64_t>(items.size());
      json out = page(std::move(items), n, 0, std::max<int64_t>(n, 1));
      out["cohorts"] = cohorts;
      out["users"] = users;  // what each user's running jobs hold
      sendJson(res, 200, out);
    });
    // Node states: drain (no new work), down (lost: its replicas are Lost and
    // their gangs restart elsewhere), up (ready again). Administrators only.
    route("POST", R"(/api/v1/nodes/([^/]+)/(drain|down|up))", "/api/v1/nodes/{name}/{action}",
          [this](const auto& req, auto& res, const User& u) {
            if (!u.admin) throw ApiError(403, "Forbidden", "only administrators change node states");
            std::string name = req.matches[1], action = req.matches[2];
            if (plane) {
              auto nodes = plane->status().nodes;
              if (std::none_of(nodes.begin(), nodes.end(), [&](const auto& n) { return n.name == name; }))
                throw ApiError(404, "NotFound", fmt::format("node {} does not exist", name));
            }
            std::string state = action == "drain" ? "Drained" : action == "down" ? "Down" : "Ready";
            std::string reason = strParam(req, "reason", fmt::format("{} by {}", action, u.name.empty() ? "an administrator" : u.name));
            timed("set_node_state", [&] { db().setNodeState({name, state, reason, store::nowSeconds()}); return 0; });
            wake();
            sendJson(res, 200, {{"name", name}, {"state", state}, {"reason", reason}});
          });
  }


};

}  // namespace

std::unique_ptr<RouteGroup> mountClusterRoutes(const RouteContext& c) { return std::make_unique<ClusterRoutes>(c); }

}  // namespace trainyard::api
