// Jobs: list (paged, filtered), get, cancel, delete, events, metric series
// (downsampled), pushed metrics, logs (bytes, or followed over SSE), outputs
// (listed and downloaded through artifacts::ArtifactStore).
#include "api/route_context.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/views.h"
#include "artifacts/artifact_store.h"
#include "control/control_plane.h"
#include "metrics/progress.h"
#include "http/server.h"
#include "store/store.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {

class JobRoutes final : public RouteGroup, RouteContext {
 public:
  explicit JobRoutes(const RouteContext& c) : RouteContext(c) { mount(); }

 private:
  void mount() {
    route("GET", "/api/v1/jobs", "/api/v1/jobs", [this](const auto& req, auto& res, const User& u) { listJobs(req, res, u); });
    route("GET", R"(/api/v1/jobs/([^/]+))", "/api/v1/jobs/{name}", [this](const auto& req, auto& res, const User& u) {
      auto j = job(u, req.matches[1]);
      json out = jobJson(db(), j, true);
      out["user"] = j.user;
      out["labels"] = j.spec.labels;
      json series = json::array();
      for (const auto& s : db().seriesInfo(j.id))
        series.push_back({{"name", s.name}, {"points", s.points}, {"firstStep", s.first_step}, {"lastStep", s.last_step}, {"last", s.last_value}});
      out["series"] = series;
      sendJson(res, 200, out);
    });
    route("DELETE", R"(/api/v1/jobs/([^/]+))", "/api/v1/jobs/{name}", [this](const auto& req, auto& res, const User& u) {
      auto j = job(u, req.matches[1], true);
      if (!store::isTerminal(j.phase))
        throw ApiError(409, "JobActive", fmt::format("job \"{}\" is {}; cancel it first", j.name, j.phase));
      timed("delete_job", [&] { db().deleteJob(j.id); });
      sendJson(res, 200, {{"deleted", j.name}});
    });
    route("POST", R"(/api/v1/jobs/([^/]+)/cancel)", "/api/v1/jobs/{name}/cancel", [this](const auto& req, auto& res, const User& u) {
      auto j = job(u, req.matches[1], true);
      if (!store::isTerminal(j.phase)) timed("cancel_job", [&] { db().requestCancel(j.id); });
      wake();
      sendJson(res, 202, {{"name", j.name}, {"phase", j.phase}, {"cancelRequested", !store::isTerminal(j.phase)}});
    });
    // Kubeflow's runPolicy.suspend as desired state: suspend stops a running
    // job's replicas and keeps it queued; resume lets it be admitted again.
    for (const char* verb : {"suspend", "resume"}) {
      bool suspend = std::string(verb) == "suspend";
      route("POST", fmt::format(R"(/api/v1/jobs/([^/]+)/{})", verb), fmt::format("/api/v1/jobs/{{name}}/{}", verb),
            [this, suspend](const auto& req, auto& res, const User& u) {
              auto j = job(u, req.matches[1], true);
              if (store::isTerminal(j.phase))
                throw ApiError(409, "JobFinished", fmt::format("job \"{}\" is {}; only a queued or running job can be {}", j.name,
                                                               j.phase, suspend ? "suspended" : "resumed"));
              timed("suspend_job", [&] { db().setSuspended(j.id, suspend); });
              wake();
              sendJson(res, 202, {{"name", j.name}, {"phase", j.phase}, {"suspended", suspend}});
            });
    }
    route("GET", R"(/api/v1/jobs/([^/]+)/events)", "/api/v1/jobs/{name}/events", [this](const auto& req, auto& res, const User& u) {
      auto j = job(u, req.matches[1]);
      auto evs = timed("events", [&] { return db().events(j.id); });
      int64_t offset = intParam(req, "offset", 0, 0, INT64_MAX), limit = intParam(req, "limit", 100, 1, 1000);
      json items = json::array();
      for (int64_t i = offset; i < std::min<int64_t>(offset + limit, evs.size()); ++i)
        items.push_back({{"time", evs[i].time}, {"type", evs[i].type}, {"reason", evs[i].reason}, {"message", evs[i].message}});
      sendJson(res, 200, page(std::move(items), static_cast<int64_t>(evs.size()), offset, limit));
    });
    route("GET", R"(/api/v1/jobs/([^/]+)/metrics)", "/api/v1/jobs/{name}/metrics", [this](const auto& req, auto& res, const User& u) {
      auto j = job(u, req.matches[1]);
      json items = json::array();
      for (const auto& s : timed("series_info", [&] { return db().seriesInfo(j.id); }))
        items.push_back({{"name", s.name}, {"points", s.points}, {"firstStep", s.first_step}, {"lastStep", s.last_step}, {"last", s.last_value}});
      int64_t n = static_cast<int64_t>(items.size());
      sendJson(res, 200, page(std::move(items), n, 0, std::max<int64_t>(n, 1)));
    });
    route("POST", R"(/api/v1/jobs/([^/]+)/metrics)", "/api/v1/jobs/{name}/metrics", [this](const auto& req, auto& res, const User& u) { pushMetrics(req, res, u); }, kMaxPushBody);
    route("GET", R"(/api/v1/jobs/([^/]+)/metrics/([^/]+))", "/api/v1/jobs/{name}/metrics/{metric}", [this](const auto& req, auto& res, const User& u) { seriesView(req, res, u); });
    route("GET", R"(/api/v1/jobs/([^/]+)/logs)", "/api/v1/jobs/{name}/logs", [this](const auto& req, auto& res, const User& u) { logs(req, res, u); });
    route("GET", R"(/api/v1/jobs/([^/]+)/outputs)", "/api/v1/jobs/{name}/outputs", [this](const auto& req, auto& res, const User& u) {
      auto j = job(u, req.matches[1]);
      sendJson(res, 200, timed("outputs_list", [&] { return outputsJson(j); }));
    });
    route("GET", R"(/api/v1/jobs/([^/]+)/outputs/(.+))", "/api/v1/jobs/{name}/outputs/{path}", [this](const auto& req, auto& res, const User& u) {
      outputFile(req, res, u);
    });
  }

  // One output, streamed in pieces (a model may be gigabytes). Shown in the
  // browser only when it is an image or plain text; anything else is a
  // download, and no output can run script on the dashboard's origin.
  void outputFile(const http::Request& req, http::Response& res, const User& u) {
    auto j = job(u, req.matches[1]);
    std::string path = req.matches[2];
    artifacts::Entry e;
    try {
      e = outputs_->stat(j.outputs_dir, path);
    } catch (const artifacts::ArtifactError& err) {
      throw ApiError(err.status, err.status == 400 ? "InvalidPath" : "NotFound", err.what(), "path");
    }
    bool shown = false;
    std::string type = artifacts::safeContentType(path, &shown);
    std::string file = fs::path(path).filename().string();
    std::string quoted;
    for (char c : file) quoted += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
    res.set_header("Content-Disposition", fmt::format("{}; filename=\"{}\"", shown ? "inline" : "attachment", quoted));
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Content-Security-Policy", "sandbox; default-src 'none'");
    auto store = outputs_;
    auto at = std::make_shared<uint64_t>(0);
    std::string root = j.outputs_dir;
    uint64_t size = e.size;  // what is sent: a file still being written is sent as it was
    res.set_chunked_content_provider(type, [store, root, path, at, size](http::StreamSink& sink) {
      if (*at >= size) {
        sink.done();
        return false;
      }
      std::string piece;
      try {
        piece = store->read(root, path, *at, static_cast<size_t>(std::min<uint64_t>(size - *at, 256 << 10)));
      } catch (const artifacts::ArtifactError&) {
        return false;  // gone meanwhile: the body ends short
      }
      if (piece.empty()) {
        sink.done();
        return false;
      }
      *at += piece.size();
      return sink.write(piece.data(), piece.size());
    });
  }

  std::shared_ptr<artifacts::ArtifactStore> outputs_ = artifacts::makeDirectoryStore();

  void listJobs(const http::Request& req, http::Response& res, const User& u) {
    store::JobQuery q;
    q.phase = strParam(req, "state");
    std::string label = strParam(req, "label");
    if (!label.empty()) {
      auto eq = label.find('=');
      if (eq == std::string::npos || eq == 0)
        throw ApiError(400, "InvalidParameter", "label must be key=value", "label");
      q.label_key = label.substr(0, eq);
      q.label_value = label.substr(eq + 1);
    }
    if (!u.admin) q.viewer = u.name;
    q.include_trials = strParam(req, "trials", "true") != "false";
    q.newest_first = strParam(req, "order", "asc") == "desc";
    q.offset = intParam(req, "offset", 0, 0, INT64_MAX);
    q.limit = intParam(req, "limit", 100, 1, 1000);
    auto p = timed("list_jobs", [&] { return db().queryJobs(q); });
    json items = json::array();
    // results=true: each job's last reported values (counters left out), a
    // query per job, so only when asked (`trainyard get jobs`).
    const bool results = strParam(req, "results", "false") == "true";
    for (const auto& j : p.items) {
      items.push_back(jobSummary(db(), j));
      if (!results) continue;
      json r = json::object();
      for (const auto& m : db().lastMetrics(j.id))
        if (!metrics::isCounter(m.name)) r[m.name] = m.value;
      items.back()["results"] = r;
    }
    sendJson(res, 200, page(std::move(items), p.total, q.offset, q.limit));
  }

  void pushMetrics(const http::Request& req, http::Response& res, const User& u) {
    auto j = job(u, req.matches[1], true);
    if (store::isTerminal(j.phase))
      throw ApiError(409, "JobFinished", fmt::format("job \"{}\" is {}; metrics are accepted while it runs", j.name, j.phase));
    json b = json::parse(req.body);
    const json* pts = b.is_object() && b.contains("points") ? &b["points"] : (b.is_array() ? &b : nullptr);
    if (!pts || !pts->is_array()) throw ApiError(400, "InvalidRequest", "expected {\"points\": [{\"name\", \"value\", \"step\"}...]}", "points");
    if (pts->size() > 100000) throw ApiError(413, "TooLarge", "at most 100000 points per request", "points");
    std::vector<metrics::MetricPoint> points;
    points.reserve(pts->size());
    double now = store::nowSeconds();
    for (size_t i = 0; i < pts->size(); ++i) {
      const json& p = (*pts)[i];
      std::string field = fmt::format("points[{}]", i);
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string() || p["name"].get<std::string>().empty())
        throw ApiError(400, "InvalidRequest", "each point needs a name (string)", field + ".name");
      if (!p.contains("value") || !p["value"].is_number())
        throw ApiError(400, "InvalidRequest", "each point needs a numeric value", field + ".value");
      // (Unsigned first: 2^64-1 read as int64 is -1; and llabs(INT64_MIN) is undefined.)
      auto stepInRange = [](const json& s) {
        if (s.is_number_unsigned()) return s.get<uint64_t>() <= uint64_t(metrics::kMaxStep);
        int64_t v = s.get<int64_t>();
        return v >= -metrics::kMaxStep && v <= metrics::kMaxStep;
      };
      if (p.contains("step") && (!p["step"].is_number_integer() || !stepInRange(p["step"])))
        throw ApiError(400, "InvalidRequest", fmt::format("step must be an integer in [-{0}, {0}]", metrics::kMaxStep), field + ".step");
      if (!std::isfinite(p["value"].get<double>()))
        throw ApiError(400, "InvalidRequest", "value must be a finite number", field + ".value");
      if (p.contains("time") && !p["time"].is_number())
        throw ApiError(400, "InvalidRequest", "time must be a number (seconds since the epoch)", field + ".time");
      points.push_back({p["name"].get<std::string>(), p["value"].get<double>(), p.value("step", int64_t{0}),
                        p.contains("time") && p["time"].is_number() ? p["time"].get<double>() : now});
    }
    timed("append_metrics", [&] { db().appendMetrics(j.id, points); });
    metrics.counterAdd("trainyard_pushed_points_total", {}, static_cast<double>(points.size()));
    sendJson(res, 200, {{"accepted", points.size()}});
  }

  void seriesView(const http::Request& req, http::Response& res, const User& u) {
    auto j = job(u, req.matches[1]);
    std::string name = req.matches[2];
    int64_t from = intParam(req, "from", INT64_MIN / 4, INT64_MIN / 4, INT64_MAX / 4);
    int64_t to = intParam(req, "to", INT64_MAX / 4, INT64_MIN / 4, INT64_MAX / 4);
    int max_points = static_cast<int>(intParam(req, "maxPoints", 2000, 1, 10000));
    auto v = timed("series_view", [&] { return db().seriesView(j.id, name, from, to, max_points); });
    if (v.step.empty() && v.total_points == 0) {
      bool known = false;
      for (const auto& s : db().seriesInfo(j.id)) known |= s.name == name;
      if (!known) throw ApiError(404, "NotFound", fmt::format("job \"{}\" has no metric \"{}\"", j.name, name), "metric");
    }
    json out{{"job", j.name}, {"name", v.name}, {"totalPoints", v.total_points}, {"downsampled", v.downsampled},
             {"bucketWidth", v.width}, {"step", v.step}, {"last", v.last}};
    if (v.downsampled) out["min"] = v.min, out["max"] = v.max;
    else out["time"] = v.time;
    sendJson(res, 200, out, &req);
  }

  // Log bytes of a replica, or with follow=true an SSE stream of them.
  void logs(const http::Request& req, http::Response& res, const User& u) {
    auto j = job(u, req.matches[1]);
    auto attempts = db().attempts(j.id);
    std::string replica = strParam(req, "replica", j.spec.primaryReplica());
    int attempt = static_cast<int>(intParam(req, "attempt", j.restarts, 0, 1 << 20));
    bool known = false;
    for (const auto& a : attempts) known |= a.attempt == attempt && a.replica == replica;
    if (!known && j.phase != store::kQueued && !attempts.empty())
      throw ApiError(404, "NotFound", fmt::format("job \"{}\" has no replica \"{}\" in attempt {}", j.name, replica, attempt), "replica");
    // Only through the backend's log source, by its opaque cursor (locally
    // a byte offset: offset= is the same parameter under its old name).
    std::string cursor = strParam(req, "cursor", strParam(req, "offset", ""));
    if (cursor.size() > 256) throw ApiError(400, "BadRequest", "cursor: at most 256 characters", "cursor");
    if (req.has_param("offset") && !req.has_param("cursor")) intParam(req, "offset", 0, 0, INT64_MAX);  // still validated
    if (req.has_param("tail") && !req.has_param("offset") && !req.has_param("cursor"))
      cursor = fmt::format("tail:{}", intParam(req, "tail", 0, 0, INT64_MAX));
    auto read = [this, uid = j.uid, attempt, replica](std::string& at, size_t max) -> std::string {
      if (!plane) return "";  // a read-only API over a store serves no logs
      auto chunk = plane->readLog(uid, attempt, replica, at, max);
      if (!chunk) return "";
      at = chunk->next;
      return chunk->bytes;
    };
    bool follow = strParam(req, "follow") == "true" || req.get_header_value("Accept") == "text/event-stream";
    if (!follow) {
      size_t limit = static_cast<size_t>(intParam(req, "limit", 1 << 20, 1, 16 << 20));
      std::string bytes = read(cursor, limit);
      res.set_header("X-Next-Cursor", cursor);
      res.set_header("X-Next-Offset", cursor);
      res.status = 200;
      res.set_content(bytes, "text/plain; charset=utf-8");
      return;
    }
    std::string location = opts.store;
    int64_t id = j.id;
    auto at = std::make_shared<std::string>(cursor);
    res.set_header("Cache-Control", "no-cache");
    res.status = 200;
    res.set_chunked_content_provider("text/event-stream", [this, location, id, at, read](http::StreamSink& sink) {
      for (int idle = 0; !stopping; ++idle) {
        if (!sink.is_writable()) return false;
        std::string bytes = read(*at, 256 << 10);
        if (!bytes.empty()) {
          std::string ev = fmt::format("event: log\nid: {}\ndata: {}\n\n", *at, json(bytes).dump(-1, ' ', false, json::error_handler_t::replace));
          return sink.write(ev.data(), ev.size());
        }
        auto jr = threadStore(location).getJobById(id);
        if (!jr || store::isTerminal(jr->phase)) {
          // What was written between the last read and the end.
          if (std::string rest = read(*at, 256 << 10); !rest.empty()) {
            std::string ev = fmt::format("event: log\nid: {}\ndata: {}\n\n", *at, json(rest).dump(-1, ' ', false, json::error_handler_t::replace));
            return sink.write(ev.data(), ev.size());
          }
          std::string ev = fmt::format("event: end\ndata: {}\n\n", json{{"phase", jr ? jr->phase : "Deleted"}}.dump());
          sink.write(ev.data(), ev.size());
          sink.done();
          return true;
        }
        if (idle % 50 == 49) {  // a comment keeps proxies from closing an idle stream
          if (!sink.write(": keep-alive\n\n", 14)) return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      return false;
    });
  }
};

}  // namespace

std::unique_ptr<RouteGroup> mountJobRoutes(const RouteContext& c) { return std::make_unique<JobRoutes>(c); }

}  // namespace trainyard::api
