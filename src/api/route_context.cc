#include "api/route_context.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/request_guard.h"
#include "api/views.h"
#include "http/server.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {
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
}  // namespace

bool acceptsGzip(const http::Request& req) {
  return req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
}

// The content type carries a charset, which also keeps the HTTP library
// from compressing the body itself (it only compresses exact types).
void sendJson(http::Response& res, int status, const json& body, const http::Request* req) {
  res.status = status;
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  if (req && text.size() > (32 << 10) && acceptsGzip(*req)) {
    res.set_header("Content-Encoding", "gzip");
    res.set_content(gzip(text), "application/json; charset=utf-8");
    return;
  }
  res.set_content(text, "application/json; charset=utf-8");
}

void sendError(http::Response& res, int status, const std::string& code, const std::string& message, const std::string& field) {
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

std::string strParam(const http::Request& req, const std::string& name, const std::string& fallback) {
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

std::optional<double> numeric(const std::string& s) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

json jobSummary(store::Store& db, const store::JobRecord& j) {
  json out = jobJson(db, j, false);
  out["user"] = j.user;
  out["labels"] = j.spec.labels;
  out["framework"] = j.spec.framework;
  out["replicas"] = j.spec.totalReplicas();
  return out;
}

User RouteContext::requireUser(const http::Request& req) { return RequestGuard::user(req); }

bool RouteContext::shared(const std::map<std::string, std::string>& labels) {
  auto it = labels.find(store::kSharedLabel);
  return it != labels.end() && it->second == "true";
}

bool RouteContext::mayRead(const User& u, const std::string& owner, const std::map<std::string, std::string>& labels) {
  return u.admin || owner == u.name || shared(labels);
}

store::JobRecord RouteContext::job(const User& u, const std::string& name, bool write) {
  auto j = timed("get_job", [&] { return db().getJob(name); });
  if (!j) throw ApiError(404, "NotFound", fmt::format("job \"{}\" not found", name));
  bool ok = write ? (u.admin || j->user == u.name) : mayRead(u, j->user, j->spec.labels);
  if (!ok) throw ApiError(403, "Forbidden", fmt::format("job \"{}\" is not yours{}", name, write ? "" : " and is not shared"));
  return *j;
}

store::ExperimentRecord RouteContext::experiment(const User& u, const std::string& name, bool write) {
  auto e = timed("get_experiment", [&] { return db().getExperiment(name); });
  if (!e) throw ApiError(404, "NotFound", fmt::format("experiment \"{}\" not found", name));
  bool ok = write ? (u.admin || e->user == u.name) : mayRead(u, e->user, e->spec.labels);
  if (!ok) throw ApiError(403, "Forbidden", fmt::format("experiment \"{}\" is not yours{}", name, write ? "" : " and is not shared"));
  return *e;
}

// Wraps a handler: authentication, errors as JSON, request metrics.
void RouteContext::route(const char* method, const std::string& pattern, const std::string& label, Handler h, size_t max_body) {
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

// Body: {"yaml": "...", "file": "job.yaml", "baseDir": "/abs", "overrides": ["a=b"]}
// or raw YAML (Content-Type application/yaml or text/yaml).
// (The request guard has already refused any other Content-Type.)
spec::LoadedSpec RouteContext::loadSpecBody(const http::Request& req, const std::string& workspace) {
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
    if (!workspace.empty() && !spec::isInside(base, workspace)) base = workspace;
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


// A workspace: DATA_DIR/workspaces/<dir>, owned by the jobs' Unix user.
std::string RouteContext::makeWorkspace(const std::string& dir) {
  fs::path ws = fs::path(opts.data_dir) / "workspaces" / dir;
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

void RouteContext::requireFreeSpace() {
  if (opts.data_dir.empty() || opts.min_free_disk <= 0) return;
  struct statvfs v {};
  if (statvfs(opts.data_dir.c_str(), &v) != 0) return;
  auto free_bytes = static_cast<int64_t>(v.f_bavail) * static_cast<int64_t>(v.f_frsize);
  if (free_bytes >= opts.min_free_disk) return;
  throw ApiError(507, "InsufficientStorage",
                 fmt::format("the server's data directory {} has {} MiB free, below --min-free-disk ({} MiB): no new work is "
                             "accepted until space is freed (running jobs go on)",
                             opts.data_dir, free_bytes >> 20, opts.min_free_disk >> 20));
}

void RouteContext::wake() {
  if (plane) plane->wake();
}

}  // namespace trainyard::api
