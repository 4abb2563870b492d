// Experiments: list, get (with the Pareto front of several objectives),
// cancel, and trials (filtered, sorted by any column, paged, or as columns).
// Submission: submit_routes.cc.
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
#include "control/experiment_controller.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {

class ExperimentRoutes final : public RouteGroup, RouteContext {
 public:
  explicit ExperimentRoutes(const RouteContext& c) : RouteContext(c) { mount(); }

 private:
  void mount() {
    route("GET", "/api/v1/experiments", "/api/v1/experiments", [this](const auto& req, auto& res, const User& u) { listExperiments(req, res, u); });
    route("GET", R"(/api/v1/experiments/([^/]+))", "/api/v1/experiments/{name}", [this](const auto& req, auto& res, const User& u) {
      auto e = experiment(u, req.matches[1]);
      json out = experimentSummary(e);
      out["spec"] = e.spec;
      if (e.spec.objectives.size() > 1) out["paretoFront"] = control::ExperimentController::paretoFront(e.spec, db().trials(e.id));
      sendJson(res, 200, out);
    });
    route("POST", R"(/api/v1/experiments/([^/]+)/cancel)", "/api/v1/experiments/{name}/cancel", [this](const auto& req, auto& res, const User& u) {
      auto e = experiment(u, req.matches[1], true);
      if (!store::isTerminal(e.phase)) db().requestExperimentCancel(e.id);
      wake();
      sendJson(res, 202, {{"name", e.name}, {"phase", e.phase}, {"cancelRequested", !store::isTerminal(e.phase)}});
    });
    route("GET", R"(/api/v1/experiments/([^/]+)/trials)", "/api/v1/experiments/{name}/trials", [this](const auto& req, auto& res, const User& u) { trials(req, res, u); });
  }

  json experimentSummary(const store::ExperimentRecord& e) {
    json out = experimentJson(db(), e, false);
    out["user"] = e.user;
    out["labels"] = e.spec.labels;
    out["parallelTrials"] = e.spec.parallel_trials;
    json objectives = json::array();
    for (const auto& o : e.spec.objectives) objectives.push_back({{"metric", o.metric}, {"goal", o.maximize ? "maximize" : "minimize"}});
    out["objectives"] = objectives;
    int done = 0;
    for (const auto& [state, n] : out["counts"].items())
      if (state != store::kTrialRunning) done += n.get<int>();
    double end = e.finished_at > 0 ? e.finished_at : store::nowSeconds();
    out["progress"] = e.spec.max_trials > 0 ? std::min(1.0, double(done) / e.spec.max_trials) : 0.0;
    out["elapsedSeconds"] = end - e.created_at;
    out["etaSeconds"] = !store::isTerminal(e.phase) && done > 0 && done < e.spec.max_trials
                            ? json((end - e.created_at) / done * (e.spec.max_trials - done))
                            : json(nullptr);
    return out;
  }

  void listExperiments(const http::Request& req, http::Response& res, const User& u) {
    std::string state = strParam(req, "state"), label = strParam(req, "label");
    std::string key = label.substr(0, label.find('=')), value = label.find('=') == std::string::npos ? "" : label.substr(label.find('=') + 1);
    if (!label.empty() && (label.find('=') == std::string::npos || key.empty()))
      throw ApiError(400, "InvalidParameter", "label must be key=value", "label");
    int64_t offset = intParam(req, "offset", 0, 0, INT64_MAX), limit = intParam(req, "limit", 100, 1, 1000);
    auto all = timed("list_experiments", [&] { return db().listExperiments(); });
    std::vector<store::ExperimentRecord> keep;
    for (auto& e : all) {
      bool labelled = label.empty() || (e.spec.labels.count(key) && e.spec.labels.at(key) == value);
      if ((state.empty() || e.phase == state) && labelled && mayRead(u, e.user, e.spec.labels)) keep.push_back(std::move(e));
    }
    json items = json::array();
    for (int64_t i = offset; i < std::min<int64_t>(offset + limit, keep.size()); ++i) items.push_back(experimentSummary(keep[i]));
    sendJson(res, 200, page(std::move(items), static_cast<int64_t>(keep.size()), offset, limit));
  }

  // Trials, filtered, sorted (number, state, objective, createdAt,
  // finishedAt, duration, param:<name>, metric:<name>) and paged; with
  // view=columns, every matching trial as columns (charts).
  void trials(const http::Request& req, http::Response& res, const User& u) {
    auto e = experiment(u, req.matches[1]);
    auto all = timed("list_trials", [&] { return db().trials(e.id); });
    std::string state = strParam(req, "state");
    if (!state.empty()) std::erase_if(all, [&](const auto& t) { return t.state != state; });
    std::string sort = strParam(req, "sort", "number");
    bool desc = strParam(req, "order", "asc") == "desc";
    // Sort key: a number when there is one; trials without it go last.
    std::function<std::optional<double>(const store::TrialRecord&)> key;
    if (sort == "number") key = [](const auto& t) { return std::optional<double>(t.number); };
    else if (sort == "objective") key = [](const auto& t) { return t.objective.empty() ? std::nullopt : std::optional<double>(t.objective[0]); };
    else if (sort == "createdAt") key = [](const auto& t) { return std::optional<double>(t.created_at); };
    else if (sort == "finishedAt") key = [](const auto& t) { return t.finished_at > 0 ? std::optional<double>(t.finished_at) : std::nullopt; };
    else if (sort == "duration") key = [](const auto& t) { return t.finished_at > 0 ? std::optional<double>(t.finished_at - t.created_at) : std::nullopt; };
    else if (sort.rfind("param:", 0) == 0) {
      std::string p = sort.substr(6);
      key = [p](const auto& t) {
        auto it = t.params.find(p);
        return it == t.params.end() ? std::nullopt : numeric(it->second);
      };
    } else if (sort.rfind("metric:", 0) == 0) {
      std::string m = sort.substr(7);
      key = [m](const auto& t) {
        auto it = t.metrics.find(m);
        return it == t.metrics.end() ? std::nullopt : std::optional<double>(it->second);
      };
    } else if (sort != "state") {
      throw ApiError(400, "InvalidParameter",
                     "sort must be number, state, objective, createdAt, finishedAt, duration, param:<name> or metric:<name>", "sort");
    }
    if (sort == "state") {
      std::stable_sort(all.begin(), all.end(), [&](const auto& a, const auto& b) { return desc ? a.state > b.state : a.state < b.state; });
    } else {
      std::vector<std::pair<std::optional<double>, size_t>> keys;
      keys.reserve(all.size());
      for (size_t i = 0; i < all.size(); ++i) keys.push_back({key(all[i]), i});
      std::stable_sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
        if (!a.first || !b.first) return a.first.has_value() && !b.first.has_value();
        return desc ? *a.first > *b.first : *a.first < *b.first;
      });
      std::vector<store::TrialRecord> sorted;
      sorted.reserve(all.size());
      for (auto& [k, i] : keys) sorted.push_back(std::move(all[i]));
      all = std::move(sorted);
    }
    if (strParam(req, "view") == "columns") {
      json number = json::array(), st = json::array(), obj = json::array(), fin = json::array();
      std::map<std::string, json> params;
      for (const auto& p : e.spec.space.params) params[p.name] = json::array();
      for (const auto& t : all) {
        number.push_back(t.number);
        st.push_back(t.state);
        obj.push_back(t.objective);
        fin.push_back(t.finished_at);
        for (auto& [name, col] : params) {
          auto it = t.params.find(name);
          if (it == t.params.end()) col.push_back(nullptr);
          else if (auto v = numeric(it->second)) col.push_back(*v);
          else col.push_back(it->second);
        }
      }
      sendJson(res, 200, {{"number", number}, {"state", st}, {"objective", obj}, {"finishedAt", fin}, {"params", params}}, &req);
      return;
    }
    int64_t offset = intParam(req, "offset", 0, 0, INT64_MAX), limit = intParam(req, "limit", 100, 1, 1000);
    json items = json::array();
    for (int64_t i = offset; i < std::min<int64_t>(offset + limit, all.size()); ++i) items.push_back(trialJson(e.spec, all[i]));
    sendJson(res, 200, page(std::move(items), static_cast<int64_t>(all.size()), offset, limit), &req);
  }
};

}  // namespace

std::unique_ptr<RouteGroup> mountExperimentRoutes(const RouteContext& c) { return std::make_unique<ExperimentRoutes>(c); }

}  // namespace trainyard::api
