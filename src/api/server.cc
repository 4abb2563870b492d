#include "api/server.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include "api/assets.h"
#include "api/request_guard.h"
#include "http/server.h"
#include "api/views.h"
#include "control/experiment_controller.h"
#include "control/launch_plan.h"
#include "spec/parser.h"
#include "store/store.h"
#include "util/files.h"

namespace trainyard::api {
namespace fs = std::filesystem;
using nlohmann::json;

bool isLoopback(const std::string& address) {
  if (address == "localhost" || address == "::1") return true;
  in_addr a{};
  return inet_pton(AF_INET, address.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

namespace {

// An error the client can act on: HTTP status, a stable code, a message and
// the request field it is about.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string code, const std::string& message, std::string field = "")
      : std::runtime_error(message), status(status), code(std::move(code)), field(std::move(field)) {}
  int status;
  std::string code;
  std::string field;
};

// gzip at level 1: a 500 KB answer (10,000 trials as columns) costs a few
// milliseconds, where the HTTP library's own brotli took a second.
std::string gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

bool acceptsGzip(const http::Request& req) {
  return req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
}

// The content type carries a charset, which also keeps the HTTP library
// from compressing the body itself (it only compresses exact types).
void sendJson(http::Response& res, int status, const json& body, const http::Request* req = nullptr) {
  res.status = status;
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (req && text.size() > (32 << 10) && acceptsGzip(*req)) {
    res.set_header("Content-Encoding", "gzip");
    res.set_content(gzip(text), "application/json; charset=utf-8");
    return;
  }
  res.set_content(text, "application/json; charset=utf-8");
}

void sendError(http::Response& res, int status, const std::string& code, const std::string& message,
               const std::string& field = "") {
  json e{{"code", code}, {"message", message}};
  if (!field.empty()) e["field"] = field;
  sendJson(res, status, {{"error", e}});
}

int64_t intParam(const http::Request& req, const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  if (!req.has_param(name.c_str())) return fallback;
  std::string v = req.get_param_value(name.c_str());
  try {
    size_t used = 0;
    int64_t x = std::stoll(v, &used);
    if (used != v.size() || x < lo || x > hi) throw std::out_of_range(v);
    return x;
  } catch (const std::exception&) {
    throw ApiError(400, "InvalidParameter", fmt::format("{} must be an integer in [{}, {}], got \"{}\"", name, lo, hi, v), name);
  }
}

std::string strParam(const http::Request& req, const std::string& name, const std::string& fallback = "") {
  return req.has_param(name.c_str()) ? req.get_param_value(name.c_str()) : fallback;
}

json page(json items, int64_t total, int64_t offset, int64_t limit) {
  json out{{"items", std::move(items)}, {"total", total}, {"offset", offset}, {"limit", limit}};
  out["nextOffset"] = offset + limit < total ? json(offset + limit) : json(nullptr);
  return out;
}

// Per-thread store: stores are not shared across threads.
store::Store& threadStore(const std::string& location) {
  thread_local std::map<std::string, std::unique_ptr<store::Store>> stores;
  auto& s = stores[location];
  if (!s) s = store::openStore(location);
  return *s;
}

// Recent state changes for /api/v1/stream: the loop writes the store, a
// watcher thread turns differences into numbered events.
class ChangeFeed {
 public:
  void publish(json ev) {
    std::lock_guard lk(mu_);
    ev["seq"] = ++seq_;
    log_.push_back(std::move(ev));
    if (log_.size() > 1000) log_.erase(log_.begin(), log_.begin() + 500);
    cv_.notify_all();
  }
  // Events after `after`, waiting up to `timeout` for one.
  std::vector<json> since(uint64_t after, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] { return seq_ > after || closed_; });
    std::vector<json> out;
    for (const auto& e : log_)
      if (e["seq"].get<uint64_t>() > after) out.push_back(e);
    return out;
  }
  uint64_t seq() {
    std::lock_guard lk(mu_);
    return seq_;
  }
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;
  std::vector<json> log_;
  bool closed_ = false;
};

std::optional<double> numeric(const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace

// Request bodies: a spec (1 MiB) with its JSON envelope; a batch of pushed
// points (at most 100,000). Every other route takes the default 1 MiB.
constexpr size_t kMaxSubmitBody = 2 * spec::kMaxSpecBytes + (64 << 10);
constexpr size_t kMaxPushBody = 16 << 20;

struct ApiServer::Impl {
  ServerOptions opts;
  control::ControlPlane* plane;
  MetricsRegistry& metrics;
  RequestGuard guard;
  http::Server http;
  ChangeFeed feed;
  std::thread watcher;
  std::atomic<bool> stopping{false};

  Impl(ServerOptions o, control::ControlPlane* p, MetricsRegistry& m)
      : opts(std::move(o)), plane(p), metrics(m), guard(guardOptions(opts)), http(limits(opts)) {}

  static GuardOptions guardOptions(const ServerOptions& o) {
    GuardOptions g;
    g.auth = o.auth;
    g.address = o.address;
    g.public_url = o.public_url;
    g.allowed_origins = o.allowed_origins;
    g.open_paths = {"/healthz", "/v2/health/live", "/v2/health/ready"};
    g.dashboard = true;
    return g;
  }
  static http::ServerLimits limits(const ServerOptions& o) {
    http::ServerLimits l;
    l.workers = o.threads;
    return l;
  }

  store::Store& db() { return threadStore(opts.store); }

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
  User requireUser(const http::Request& req) { return RequestGuard::user(req); }

  static bool shared(const std::map<std::string, std::string>& labels) {
    auto it = labels.find(store::kSharedLabel);
    return it != labels.end() && it->second == "true";
  }
  static bool mayRead(const User& u, const std::string& owner, const std::map<std::string, std::string>& labels) {
    return u.admin || owner == u.name || shared(labels);
  }

  store::JobRecord job(const User& u, const std::string& name, bool write = false) {
    auto j = timed("get_job", [&] { return db().getJob(name); });
    if (!j) throw ApiError(404, "NotFound", fmt::format("job \"{}\" not found", name));
    bool ok = write ? (u.admin || j->user == u.name) : mayRead(u, j->user, j->spec.labels);
    if (!ok) throw ApiError(403, "Forbidden", fmt::format("job \"{}\" is not yours{}", name, write ? "" : " and is not shared"));
    return *j;
  }
  store::ExperimentRecord experiment(const User& u, const std::string& name, bool write = false) {
    auto e = timed("get_experiment", [&] { return db().getExperiment(name); });
    if (!e) throw ApiError(404, "NotFound", fmt::format("experiment \"{}\" not found", name));
    bool ok = write ? (u.admin || e->user == u.name) : mayRead(u, e->user, e->spec.labels);
    if (!ok) throw ApiError(403, "Forbidden", fmt::format("experiment \"{}\" is not yours{}", name, write ? "" : " and is not shared"));
    return *e;
  }

  using Handler = std::function<void(const http::Request&, http::Response&, const User&)>;
  // Wraps a handler: authentication, errors as JSON, request metrics.
  void route(const char* method, const std::string& pattern, const std::string& label, Handler h, size_t max_body = 0) {
    auto wrapped = [this, h, label, method](const http::Request& req, http::Response& res) {
      auto t0 = std::chrono::steady_clock::now();
      try {
        User u = requireUser(req);
        h(req, res, u);
      } catch (const ApiError& e) {
        sendError(res, e.status, e.code, e.what(), e.field);
      } catch (const spec::SpecError& e) {
        json err{{"code", "InvalidSpec"}, {"message", e.what()}, {"field", e.field}};
        if (e.line > 0) err["line"] = e.line, err["column"] = e.column;
        sendJson(res, 400, {{"error", err}});
      } catch (const store::NameConflict& e) {
        sendError(res, 409, "AlreadyExists", e.what(), "metadata.name");
      } catch (const json::exception& e) {
        sendError(res, 400, "InvalidJson", fmt::format("the request body is not what was expected: {}", e.what()));
      } catch (const std::exception& e) {
        spdlog::error("{} {}: {}", req.method, req.path, e.what());
        sendError(res, 500, "Internal", e.what());
      }
      std::string status = std::to_string(res.status);
      metrics.counterAdd("trainyard_http_requests_total", {{"method", method}, {"route", label}, {"code", status}});
      metrics.observe("trainyard_http_request_duration_seconds", {{"method", method}, {"route", label}},
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    http.route(method, pattern, wrapped, max_body);
  }

  void wake() {
    if (plane) plane->wake();
  }

  // ---------------------------------------------------------------- jobs
  json jobSummary(const store::JobRecord& j) {
    json out = jobJson(db(), j, false);
    out["user"] = j.user;
    out["labels"] = j.spec.labels;
    out["framework"] = j.spec.framework;
    out["replicas"] = j.spec.totalReplicas();
    return out;
  }

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
    for (const auto& j : p.items) items.push_back(jobSummary(j));
    sendJson(res, 200, page(std::move(items), p.total, q.offset, q.limit));
  }

  // Body: {"yaml": "...", "file": "job.yaml", "baseDir": "/abs", "overrides": ["a=b"]}
  // or raw YAML (Content-Type application/yaml or text/yaml).
  // (The request guard has already refused any other Content-Type.)
  spec::LoadedSpec loadBody(const http::Request& req, const std::string& workspace) {
    auto tooLarge = [](size_t n) {
      return ApiError(413, "TooLarge", fmt::format("the spec is {} bytes; specs are limited to {} bytes (1 MiB)", n, spec::kMaxSpecBytes), "yaml");
    };
    std::string type = req.get_header_value("Content-Type");
    if (type.find("json") != std::string::npos) {
      json b = json::parse(req.body);
      if (!b.is_object() || !b.contains("yaml") || !b["yaml"].is_string())
        throw ApiError(400, "InvalidRequest", "expected {\"yaml\": \"<the spec>\", \"file\": ..., \"baseDir\": ...}", "yaml");
      const std::string& text = b["yaml"].get_ref<const std::string&>();
      if (text.size() > spec::kMaxSpecBytes) throw tooLarge(text.size());
      std::string base = b.contains("baseDir") && b["baseDir"].is_string() ? b["baseDir"].get<std::string>() : fs::current_path().string();
      if (!workspace.empty() && !spec::pathOutside(withDir(base), workspace).first.empty()) base = workspace;
      std::string file = b.contains("file") && b["file"].is_string() ? b["file"].get<std::string>() : "<request>";
      std::vector<std::string> overrides;
      if (b.contains("overrides")) {
        if (!b["overrides"].is_array() || b["overrides"].size() > 1000)
          throw ApiError(400, "InvalidRequest", "overrides must be a list of at most 1000 \"path=value\" strings", "overrides");
        for (size_t i = 0; i < b["overrides"].size(); ++i) {
          if (!b["overrides"][i].is_string())
            throw ApiError(400, "InvalidRequest", "each override is a \"path=value\" string", fmt::format("overrides[{}]", i));
          overrides.push_back(b["overrides"][i].get<std::string>());
        }
      }
      return spec::loadSpecString(text, file, base, overrides);
    }
    if (req.body.size() > spec::kMaxSpecBytes) throw tooLarge(req.body.size());
    return spec::loadSpecString(req.body, "<request>", workspace.empty() ? fs::current_path().string() : workspace);
  }

  static spec::TrainJobSpec withDir(const std::string& dir) {
    spec::TrainJobSpec j;
    j.roles.emplace_back();
    j.roles.back().working_dir = dir;
    return j;
  }

  // A non-admin user's files: workingDir, baseDir and outputs.dir stay in
  // DATA_DIR/workspaces/<user>, owned by the jobs' Unix user. Admins (and
  // everyone without --auth, where the one user owns the machine) are free.
  std::string workspaceOf(const User& u) {
    if (!opts.auth || u.admin || opts.data_dir.empty()) return "";
    fs::path ws = fs::path(opts.data_dir) / "workspaces" / u.name;
    std::error_code ec;
    if (!fs::exists(ws, ec)) {
      fs::create_directories(ws.parent_path(), ec);
      chmod(ws.parent_path().c_str(), 0711);
      fs::create_directory(ws, ec);
      if (ec) throw ApiError(500, "Internal", fmt::format("cannot create the workspace {}: {}", ws.string(), ec.message()));
      chmod(ws.c_str(), 0700);
      if (opts.workspace_uid >= 0 && chown(ws.c_str(), opts.workspace_uid, opts.workspace_gid) != 0)
        throw ApiError(500, "Internal", fmt::format("cannot hand the workspace {} to the jobs' user", ws.string()));
    }
    return ws.string();
  }

  void submit(const http::Request& req, http::Response& res, const User& u, bool want_experiment) {
    if (!plane) throw ApiError(503, "ReadOnly", "this server does not run jobs");
    std::string workspace = workspaceOf(u);
    spec::LoadedSpec loaded = loadBody(req, workspace);
    if (!workspace.empty()) {
      if (loaded.experiment) {
        loaded.experiment->base_dir = workspace;
        loaded.experiment->workspace = workspace;
        std::map<std::string, std::string> sample;  // a trial as validation renders one
        for (const auto& p : loaded.experiment->space.params) sample[p.name] = p.format(p.fromUnit(0.5));
        try {
          loaded.experiment->trialJob(sample, loaded.experiment->name + "-0");
        } catch (const spec::SpecError& e) {
          throw ApiError(403, "OutsideWorkspace", e.message, e.field);
        }
      } else if (auto [field, path] = spec::pathOutside(loaded.job, workspace); !field.empty()) {
        throw ApiError(403, "OutsideWorkspace", fmt::format("{} is outside your workspace {}", path, workspace), field);
      }
    }
    const auto& o = plane->options();
    json out;
    if (loaded.experiment) {
      if (!want_experiment)
        throw ApiError(400, "WrongKind", "this is an Experiment: POST it to /api/v1/experiments", "kind");
      auto e = timed("create_experiment", [&] { return control::submitExperiment(db(), *loaded.experiment, o, u.name); });
      out = experimentJson(db(), e, false);
    } else {
      if (want_experiment) throw ApiError(400, "WrongKind", fmt::format("this is a {}: POST it to /api/v1/jobs", loaded.kind), "kind");
      auto j = timed("create_job", [&] { return control::submitJob(db(), loaded.job, o, u.name); });
      out = jobSummary(j);
    }
    out["warnings"] = loaded.warnings;
    wake();
    sendJson(res, 201, out);
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
      if (p.contains("step") &&
          (!p["step"].is_number_integer() || (p["step"].is_number_unsigned() && p["step"].get<uint64_t>() > uint64_t(metrics::kMaxStep)) ||
           std::llabs(p["step"].get<int64_t>()) > metrics::kMaxStep))
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
    sendJson(res, 200, out, &req);
  }

  // Log bytes of a replica, or with follow=true an SSE stream of them.
  void logs(const http::Request& req, http::Response& res, const User& u) {
    auto j = job(u, req.matches[1]);
    auto attempts = db().attempts(j.id);
    std::string replica = strParam(req, "replica", j.spec.primaryReplica());
    int attempt = static_cast<int>(intParam(req, "attempt", j.restarts, 0, 1 << 20));
    std::string path;
    for (const auto& a : attempts)
      if (a.attempt == attempt && a.replica == replica) path = a.log_path;
    if (path.empty() && j.phase != store::kQueued && !attempts.empty())
      throw ApiError(404, "NotFound", fmt::format("job \"{}\" has no replica \"{}\" in attempt {}", j.name, replica, attempt), "replica");
    uint64_t offset = static_cast<uint64_t>(intParam(req, "offset", 0, 0, INT64_MAX));
    // tail=N: start N bytes before the end (a long log's viewer wants its end).
    if (req.has_param("tail") && !req.has_param("offset") && !path.empty()) {
      std::error_code ec;
      uint64_t size = fs::file_size(path, ec);
      uint64_t tail = static_cast<uint64_t>(intParam(req, "tail", 0, 0, INT64_MAX));
      if (!ec && size > tail) offset = size - tail;
    }
    bool follow = strParam(req, "follow") == "true" || req.get_header_value("Accept") == "text/event-stream";
    if (!follow) {
      size_t limit = static_cast<size_t>(intParam(req, "limit", 1 << 20, 1, 16 << 20));
      std::string bytes = path.empty() ? "" : util::readFrom(path, offset, limit);
      res.set_header("X-Next-Offset", std::to_string(offset + bytes.size()));
      res.status = 200;
      res.set_content(bytes, "text/plain; charset=utf-8");
      return;
    }
    std::string location = opts.store;
    int64_t id = j.id;
    auto state = std::make_shared<std::pair<uint64_t, std::string>>(offset, path);
    res.set_header("Cache-Control", "no-cache");
    res.status = 200;
    res.set_chunked_content_provider("text/event-stream", [this, location, id, replica, attempt, state](
                                                                http::StreamSink& sink) {
      auto& [off, file] = *state;
      for (int idle = 0; !stopping; ++idle) {
        if (!sink.is_writable()) return false;
        if (file.empty())
          for (const auto& a : threadStore(location).attempts(id))
            if (a.attempt == attempt && a.replica == replica) file = a.log_path;
        std::string bytes = file.empty() ? "" : util::readFrom(file, off, 256 << 10);
        if (!bytes.empty()) {
          off += bytes.size();
          std::string ev = fmt::format("event: log\nid: {}\ndata: {}\n\n", off, json(bytes).dump(-1, ' ', false, json::error_handler_t::replace));
          return sink.write(ev.data(), ev.size());
        }
        auto jr = threadStore(location).getJobById(id);
        if (!jr || store::isTerminal(jr->phase)) {
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

  // ---------------------------------------------------------------- experiments
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

  // ---------------------------------------------------------------- setup
  void routes() {
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

    route("GET", "/api/v1/jobs", "/api/v1/jobs", [this](const auto& req, auto& res, const User& u) { listJobs(req, res, u); });
    route("POST", "/api/v1/jobs", "/api/v1/jobs", [this](const auto& req, auto& res, const User& u) { submit(req, res, u, false); }, kMaxSubmitBody);
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

    route("GET", "/api/v1/experiments", "/api/v1/experiments", [this](const auto& req, auto& res, const User& u) { listExperiments(req, res, u); });
    route("POST", "/api/v1/experiments", "/api/v1/experiments", [this](const auto& req, auto& res, const User& u) { submit(req, res, u, true); }, kMaxSubmitBody);
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
    route("GET", "/api/v1/stream", "/api/v1/stream", [this](const auto& req, auto& res, const User& u) {
      uint64_t start = feed.seq();
      if (req.has_header("Last-Event-ID")) start = std::strtoull(req.get_header_value("Last-Event-ID").c_str(), nullptr, 10);
      auto after = std::make_shared<uint64_t>(start);
      User who = u;
      res.set_header("Cache-Control", "no-cache");
      res.status = 200;
      res.set_chunked_content_provider("text/event-stream", [this, after, who](http::StreamSink& sink) {
        while (!stopping && sink.is_writable()) {
          auto evs = feed.since(*after, std::chrono::seconds(10));
          if (stopping) break;
          if (evs.empty()) {
            if (!sink.write(": keep-alive\n\n", 14)) return false;
            continue;
          }
          std::string out;
          for (auto& e : evs) {
            *after = e["seq"].get<uint64_t>();
            if (!who.admin && e.value("user", "") != who.name && !e.value("shared", false)) continue;
            out += fmt::format("event: {}\nid: {}\ndata: {}\n\n", e["kind"].get<std::string>(), *after, e.dump());
          }
          if (out.empty()) continue;
          return sink.write(out.data(), out.size());
        }
        return false;
      });
    });

    if (opts.extra_routes) opts.extra_routes(http);

    // Dashboard: sign-in, then the embedded single-page app.
    http.Post("/login", [this](const http::Request& req, http::Response& res) {
      bool throttled = false;
      auto u = guard.signIn(req.remote_addr, req.get_param_value("token"), throttled);
      if (throttled) {
        res.set_header("Retry-After", "6");
        res.status = 429;
        res.set_content("too many wrong tokens from this address; wait and retry\n", "text/plain; charset=utf-8");
        return;
      }
      if (!guard.authEnabled() || !u) {
        res.status = 401;
        res.set_content(RequestGuard::kLoginPage, "text/html; charset=utf-8");
        return;
      }
      res.set_header("Set-Cookie", "trainyard_token=" + req.get_param_value("token") + "; Path=/; HttpOnly; SameSite=Strict");
      res.set_redirect("/");
    }, 4096);
    http.Get(R"(/(.*))", [](const http::Request& req, http::Response& res) {
      std::string path = req.matches[1];
      if (path.rfind("api/", 0) == 0) {
        sendError(res, 404, "NotFound", fmt::format("no such API route: {} {}", req.method, req.path));
        return;
      }
      const Asset* a = findAsset(path.empty() ? "index.html" : path);
      if (!a) a = findAsset("index.html");  // client-side routes
      if (!a) {
        sendError(res, 404, "NotFound", "the dashboard is not built into this binary");
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      const Asset* gz = acceptsGzip(req) ? findAsset(std::string(a->path) + ".gz") : nullptr;
      if (gz) res.set_header("Content-Encoding", "gzip");
      const Asset* body = gz ? gz : a;
      res.set_content(reinterpret_cast<const char*>(body->data), body->size, a->content_type);
    });
    http.set_pre_routing([this](http::Request& req, http::Response& res) { return guard.check(req, res); });
  }

  // Turns store differences into change events for /api/v1/stream. Reads
  // states only (Store::jobStates): no spec is parsed on a pass.
  void watch() {
    std::map<std::string, std::string> jobs, exps;  // active ones: their state as last reported
    std::set<std::string> final_reported;           // finished jobs already reported (or finished before start)
    std::map<int64_t, bool> exp_shared;              // labels never change: read once per experiment
    bool first = true;
    auto& st = threadStore(opts.store);
    auto publishJob = [&](const store::StateRow& j) {
      feed.publish({{"kind", "job"}, {"name", j.name}, {"phase", j.phase}, {"reason", j.reason}, {"restarts", j.restarts},
                    {"user", j.user}, {"shared", j.shared}});
    };
    while (!stopping) {
      try {
        // The active jobs, and the newest ones: one may start and end between two polls.
        auto seen = st.jobStates(100);
        std::map<std::string, std::string> now;
        for (const auto& j : seen) {
          if (store::isTerminal(j.phase)) {
            if (final_reported.insert(j.name).second && !first) publishJob(j);
            continue;
          }
          std::string sig = j.phase + "/" + std::to_string(j.restarts);
          now[j.name] = sig;
          if (jobs[j.name] != sig) publishJob(j);
        }
        for (const auto& [name, sig] : jobs)  // ended, and older than the newest 100
          if (!now.count(name) && !final_reported.count(name))
            if (auto j = st.getJob(name); j && store::isTerminal(j->phase)) {
              final_reported.insert(name);
              publishJob({j->id, j->name, j->phase, j->reason, j->user, j->restarts, shared(j->spec.labels)});
            }
        jobs = std::move(now);
        first = false;
        // Experiments: the active ones each pass, and once more when one ends.
        auto publishExperiment = [&](const store::StateRow& e) {
          int64_t total = 0, done = 0;
          for (const auto& [state, n] : st.trialCounts(e.id)) {
            total += n;
            if (state != store::kTrialRunning) done += n;
          }
          std::string sig = fmt::format("{}/{}/{}", e.phase, total, done);
          if (exps[e.name] != sig) {
            auto it = exp_shared.find(e.id);
            if (it == exp_shared.end()) {
              auto rec = st.getExperimentById(e.id);
              it = exp_shared.emplace(e.id, rec && shared(rec->spec.labels)).first;
            }
            feed.publish({{"kind", "experiment"}, {"name", e.name}, {"phase", e.phase}, {"trials", total}, {"finished", done},
                          {"user", e.user}, {"shared", it->second}});
          }
          exps[e.name] = sig;
        };
        std::set<std::string> active;
        for (const auto& e : st.activeExperimentStates()) {
          active.insert(e.name);
          publishExperiment(e);
        }
        for (auto it = exps.begin(); it != exps.end();) {
          if (active.count(it->first)) {
            ++it;
            continue;
          }
          if (auto e = st.getExperiment(it->first)) publishExperiment({e->id, e->name, e->phase, e->reason, e->user, 0, false});
          it = exps.erase(it);
        }
      } catch (const std::exception& e) {
        spdlog::warn("change watcher: {}", e.what());
      }
      std::unique_lock lk(watch_mu);
      watch_cv.wait_for(lk, std::chrono::milliseconds(300), [&] { return stopping.load(); });
    }
  }
  std::mutex watch_mu;
  std::condition_variable watch_cv;
};

ApiServer::ApiServer(ServerOptions opts, control::ControlPlane* plane, MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(std::move(opts), plane, metrics)) {
  auto& m = impl_->metrics;
  m.help("trainyard_http_requests_total", "counter", "HTTP requests by method, route and status code");
  m.help("trainyard_http_request_duration_seconds", "histogram", "HTTP request handling time");
  m.help("trainyard_store_seconds", "histogram", "Store operation latency by operation");
  m.help("trainyard_jobs", "gauge", "Jobs by phase");
  m.help("trainyard_queue_length", "gauge", "Jobs waiting for resources");
  m.help("trainyard_pushed_points_total", "counter", "Metric points received through the push API");
  impl_->routes();
}

ApiServer::~ApiServer() { stop(); }

int ApiServer::bind() {
  auto& o = impl_->opts;
  o.port = impl_->http.bind(o.address, o.port);
  return o.port;
}

void ApiServer::serve() {
  impl_->watcher = std::thread([this] { impl_->watch(); });
  impl_->http.listen();
}

void ApiServer::handle(http::Request& req, http::Response& res) { impl_->http.dispatch(req, res); }

void ApiServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->feed.close();
  impl_->watch_cv.notify_all();
  impl_->http.stop();
  if (impl_->watcher.joinable()) impl_->watcher.join();
}

}  // namespace trainyard::api
