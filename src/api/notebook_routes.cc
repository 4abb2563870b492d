// Notebooks: start, stop, list and delete Jupyter servers (each a job of
// one replica, notebook/notebook_job.h), and the proxy in front of them at
// /notebooks/<owner>/<name>/ - HTTP through a client per request, WebSocket
// as a spliced connection (http::Tunnel). Only the owner and admins get
// through; Jupyter's token is added here and never reaches the browser. A
// culler stops notebooks idle for longer than their idleTimeout.
#include "api/route_context.h"

#include <strings.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api/request_guard.h"
#include "api/views.h"
#include "control/admission.h"
#include "control/control_plane.h"
#include "control/job_controller.h"
#include "http/client.h"
#include "http/server.h"
#include "notebook/notebook_job.h"
#include "notebook/proxy_rules.h"
#include "notebook/state_dir.h"
#include "store/store.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {

constexpr const char* kNotebookLabel = "trainyard.dev/notebook";
// Bodies through the proxy: a notebook saved with its outputs, an upload.
constexpr size_t kMaxProxyBody = 64 << 20;

struct Status {
  std::optional<double> last_activity;
  int kernels = 0, connections = 0;
};

class NotebookRoutes final : public RouteGroup, RouteContext {
 public:
  NotebookRoutes(const RouteContext& c, RequestGuard& guard) : RouteContext(c) {
    mount();
    // A notebook's scoped token acts as its owner (never as an admin) while
    // the notebook runs; a stopped notebook's token is worth nothing.
    guard.addTokenVerifier([this](const std::string& token) -> std::optional<User> { return scopedUser(token); });
    if (plane && !opts.data_dir.empty()) culler_ = std::thread([this] { cullLoop(); });
  }
  ~NotebookRoutes() override {
    {
      std::lock_guard lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (culler_.joinable()) culler_.join();
  }

 private:
  void mount() {
    route("GET", "/api/v1/notebooks", "/api/v1/notebooks", [this](const auto& req, auto& res, const User& u) { list(req, res, u); });
    route("POST", "/api/v1/notebooks", "/api/v1/notebooks", [this](const auto& req, auto& res, const User& u) { create(req, res, u); },
          kMaxSubmitBody);
    const std::string one = R"(/api/v1/notebooks/([^/]+)/([^/]+))";
    route("GET", one, "/api/v1/notebooks/{owner}/{name}", [this](const auto& req, auto& res, const User& u) {
      auto j = notebookJob(u, req.matches[1], req.matches[2]);
      sendJson(res, 200, view(j, true));
    });
    route("POST", one + "/stop", "/api/v1/notebooks/{owner}/{name}/stop", [this](const auto& req, auto& res, const User& u) {
      auto j = notebookJob(u, req.matches[1], req.matches[2]);
      if (!store::isTerminal(j.phase)) {
        timed("cancel_job", [&] { db().requestCancel(j.id); });
        db().addEvent(j.id, store::Event{store::nowSeconds(), "Normal", "Stopping", fmt::format("stopped by {}", u.name.empty() ? "the admin" : u.name)});
      }
      wake();
      sendJson(res, 202, view(j, false));
    });
    route("POST", one + "/start", "/api/v1/notebooks/{owner}/{name}/start", [this](const auto& req, auto& res, const User& u) {
      auto j = notebookJob(u, req.matches[1], req.matches[2]);
      if (!store::isTerminal(j.phase)) throw ApiError(409, "NotebookActive", fmt::format("notebook \"{}\" is {} already", req.matches[2].str(), j.phase));
      auto ref = notebook::notebookOf(j.spec);
      requireFreeSpace();
      spec::TrainJobSpec again = j.spec;
      timed("delete_job", [&] { db().deleteJob(j.id); });
      auto created = launch(again, ref->owner, j.user);
      sendJson(res, 201, view(created, false));
    });
    route("DELETE", one, "/api/v1/notebooks/{owner}/{name}", [this](const auto& req, auto& res, const User& u) {
      auto j = notebookJob(u, req.matches[1], req.matches[2]);
      if (!store::isTerminal(j.phase))
        throw ApiError(409, "NotebookActive", fmt::format("notebook \"{}\" is {}; stop it first", req.matches[2].str(), j.phase));
      timed("delete_job", [&] { db().deleteJob(j.id); });
      std::error_code ec;
      fs::remove_all(notebook::stateDir(opts.data_dir, j.name), ec);
      sendJson(res, 200, {{"deleted", req.matches[2].str()}, {"workspaceKept", true}});
    });
    // The proxy: every method Jupyter's pages and API use.
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
      route(m, R"(/notebooks/([^/]+)/([^/]+)(/.*)?)", "/notebooks/{owner}/{name}/...",
            [this](const auto& req, auto& res, const User& u) { proxy(req, res, u); }, kMaxProxyBody);
    }
  }

  // --- Resources -----------------------------------------------------------

  // The notebook's job, if `u` may see and change it: its owner and admins only.
  store::JobRecord notebookJob(const User& u, const std::string& owner_seg, const std::string& name) {
    std::string owner = owner_seg == "_" ? "" : owner_seg;
    if (!u.admin && owner != u.name)
      throw ApiError(403, "Forbidden", fmt::format("notebook {}/{} is not yours", owner_seg, name));
    std::string job_name;
    try {
      job_name = notebook::jobName(owner, name);
    } catch (const std::invalid_argument&) {
      throw ApiError(404, "NotFound", fmt::format("notebook {}/{} not found", owner_seg, name));
    }
    auto j = timed("get_job", [&] { return db().getJob(job_name); });
    auto ref = j ? notebook::notebookOf(j->spec) : std::nullopt;
    if (!j || !ref || ref->owner != owner || ref->name != name)
      throw ApiError(404, "NotFound", fmt::format("notebook {}/{} not found", owner_seg, name));
    return *j;
  }

  // `ask_jupyter`: its activity now (one notebook's page); else as the
  // culler last saw it (lists: they are polled, and Jupyter is not asked
  // once per notebook per poll).
  json view(const store::JobRecord& j, bool ask_jupyter) {
    auto ref = notebook::notebookOf(j.spec);
    const auto& r = j.spec.roles.at(0);
    json out{{"name", ref->name},
             {"owner", ref->owner},
             {"job", j.name},
             {"phase", j.phase},
             {"reason", j.reason},
             {"message", j.message},
             {"url", notebook::basePath(ref->owner, ref->name) + "tree"},
             {"image", r.image},
             {"workingDir", r.working_dir},
             {"resources", {{"cpu", r.resources.cpu_millis / 1000.0}, {"memoryBytes", r.resources.memory_bytes}, {"gpu", r.resources.gpu}}},
             {"queue", j.spec.queue},
             {"idleTimeoutSeconds", ref->idle_timeout_seconds},
             {"createdAt", j.created_at},
             {"startedAt", j.started_at},
             {"finishedAt", j.finished_at}};
    std::optional<Status> st;
    if (ask_jupyter && j.phase == store::kRunning) st = status(j.name, std::chrono::milliseconds(1000));
    {
      std::lock_guard lk(mu_);
      if (st && st->last_activity) last_seen_[j.name] = *st;
      if (auto it = last_seen_.find(j.name); it != last_seen_.end()) st = it->second;
    }
    if (store::isTerminal(j.phase))
      for (const auto& e : db().events(j.id))
        if (e.reason == "IdleCulled") out["culled"] = true, out["culledMessage"] = e.message;
    // What a user means: Starting (queued or restarting), Running, Stopped
    // (by someone), Culled (idle), or Failed.
    std::string state = j.phase == store::kRunning ? "Running" : !store::isTerminal(j.phase) ? "Starting" : j.phase;
    // Until Jupyter has said where it listens, Open would only say "starting".
    if (state == "Running" && !notebook::jupyterPort(notebook::stateDir(opts.data_dir, j.name))) state = "Starting";
    if (store::isTerminal(j.phase) && j.reason == "Cancelled") state = "Stopped";
    if (out.value("culled", false)) state = "Culled";
    out["state"] = state;
    out["lastActivity"] = st && st->last_activity ? json(*st->last_activity) : json(nullptr);
    out["kernels"] = st ? st->kernels : 0;
    out["connections"] = st ? st->connections : 0;
    return out;
  }

  void list(const http::Request& req, http::Response& res, const User& u) {
    store::JobQuery q;
    q.label_key = kNotebookLabel;
    q.limit = intParam(req, "limit", 200, 1, 1000);
    q.offset = intParam(req, "offset", 0, 0, INT64_MAX / 2);
    q.newest_first = true;
    if (!u.admin) q.viewer = u.name;
    auto page_ = timed("query_jobs", [&] { return db().queryJobs(q); });
    json items = json::array();
    for (const auto& j : page_.items) {
      auto ref = notebook::notebookOf(j.spec);
      if (!ref || (!u.admin && ref->owner != u.name)) continue;  // (a notebook labelled shared stays its owner's)
      items.push_back(view(j, false));
    }
    sendJson(res, 200, page(std::move(items), page_.total, q.offset, q.limit), &req);
  }

  void create(const http::Request& req, http::Response& res, const User& u) {
    if (!plane) throw ApiError(503, "ReadOnly", "this server does not run notebooks");
    if (opts.data_dir.empty()) throw ApiError(503, "Unavailable", "this server has no data directory for notebooks");
    requireFreeSpace();
    if (opts.backend != "local")
      throw ApiError(400, "Unsupported",
                     fmt::format("notebooks run on the local backend (this server's is {}): its proxy reaches Jupyter on loopback; "
                                 "see docs/notebooks.md",
                                 opts.backend));
    bool confined = opts.access.auth && !u.admin;
    std::string workspace = makeWorkspace(notebook::ownerSegment(u.name));
    auto loaded = loadSpecBody(req, confined ? workspace : "");
    if (!loaded.notebook) throw ApiError(400, "WrongKind", fmt::format("this is a {}: POST a Notebook here", loaded.kind), "kind");
    auto& nb = *loaded.notebook;
    if (!nb.working_dir_given) nb.job.roles.at(0).working_dir = workspace;
    if (confined && !spec::isInside(nb.job.roles.at(0).working_dir, workspace))
      throw ApiError(403, "OutsideWorkspace", fmt::format("{} is outside your workspace {}", nb.job.roles.at(0).working_dir, workspace),
                     "spec.workingDir");
    notebook::Launch at;
    at.working_dir = nb.job.roles.at(0).working_dir;
    spec::TrainJobSpec job;
    try {
      job = notebook::notebookJob(nb, u.name, at);
    } catch (const std::invalid_argument& e) {
      throw ApiError(400, "InvalidName", e.what(), "metadata.name");
    }
    if (auto old = db().getJob(job.name)) {
      if (!store::isTerminal(old->phase))
        throw ApiError(409, "NotebookActive", fmt::format("notebook \"{}\" is {} already", nb.name, old->phase), "metadata.name");
      if (!notebook::notebookOf(old->spec)) throw ApiError(409, "AlreadyExists", fmt::format("a job named {} exists", job.name), "metadata.name");
      timed("delete_job", [&] { db().deleteJob(old->id); });
    }
    auto created = launch(job, u.name, u.name);
    json out = view(created, false);
    out["warnings"] = loaded.warnings;
    sendJson(res, 201, out);
  }

  // Fresh secrets and port, then the job: the scheduler places it like any.
  store::JobRecord launch(spec::TrainJobSpec job, const std::string& owner, const std::string& user) {
    std::string dir = notebook::stateDir(opts.data_dir, job.name);
    try {
      notebook::prepareStateDir(dir, job.name, opts.workspace_uid, opts.workspace_gid);
    } catch (const std::exception& e) {
      throw ApiError(500, "Internal", e.what());
    }
    auto ref = notebook::notebookOf(job);
    spec::NotebookSpec nb;
    nb.name = ref->name;
    nb.job = job;
    nb.idle_timeout_seconds = ref->idle_timeout_seconds;
    notebook::Launch at;
    at.state_dir = dir;
    at.working_dir = job.roles.at(0).working_dir;
    at.port = notebook::freeLoopbackPort();
    bool wildcard = opts.address.empty() || opts.address == "0.0.0.0" || opts.address == "::";
    at.server_url = fmt::format("http://{}:{}", wildcard ? "127.0.0.1" : opts.address, opts.port);
    std::error_code ec;
    at.trainyard_bin = fs::read_symlink("/proc/self/exe", ec).string();
    job = notebook::notebookJob(nb, owner, at);
    const auto& o = plane->options();
    if (auto no = control::refuseAtSubmit(job, user, plane->status().nodes, db().queueDefs(), o.scheduling))
      throw ApiError(no->code == "Forbidden" ? 403 : 400, no->code, no->message, no->field);
    auto created = timed("create_job", [&] { return control::submitJob(db(), job, o, user); });
    wake();
    return created;
  }

  // --- Scoped tokens -------------------------------------------------------

  std::optional<User> scopedUser(const std::string& token) {
    auto job_name = notebook::jobOfUserToken(token);
    if (!job_name || opts.data_dir.empty()) return std::nullopt;
    std::string want = notebook::readSecret(notebook::stateDir(opts.data_dir, *job_name), "user-token");
    if (want.empty() || !notebook::sameSecret(want, token)) return std::nullopt;
    auto j = db().getJob(*job_name);
    if (!j || store::isTerminal(j->phase)) return std::nullopt;
    auto ref = notebook::notebookOf(j->spec);
    if (!ref) return std::nullopt;
    return User{ref->owner, false};
  }

  // --- The proxy -----------------------------------------------------------

  struct Upstream {
    int port;
    std::string token;
  };

  Upstream upstreamOf(const store::JobRecord& j, const std::string& name) {
    if (j.phase != store::kRunning)
      throw ApiError(503, "NotebookNotRunning",
                     fmt::format("notebook {} is {}{}", name, j.phase,
                                 store::isTerminal(j.phase) ? " (start it again from the Notebooks page or `trainyard notebook start`)" : ""));
    std::string dir = notebook::stateDir(opts.data_dir, j.name);
    auto port = notebook::jupyterPort(dir);
    std::string token = notebook::readSecret(dir, "jupyter-token");
    if (!port || token.empty()) {
      throw ApiError(503, "NotebookStarting", fmt::format("notebook {} is starting; retry in a moment", name));
    }
    return {*port, token};
  }

  void proxy(const http::Request& req, http::Response& res, const User& u) {
    std::string owner_seg = req.matches[1], name = req.matches[2], rest = req.matches[3];
    auto j = notebookJob(u, owner_seg, name);
    if (rest.empty()) return res.set_redirect(notebook::basePath(notebook::notebookOf(j.spec)->owner, name) + "tree", 302);
    Upstream up = upstreamOf(j, name);
    // What Jupyter sees: notebook/proxy_rules.h.
    http::Headers out = notebook::upstreamHeaders(req.headers, up.token, req.remote_addr);
    std::string target = notebook::withoutAccessToken(req.target);
    if (strcasecmp(req.get_header_value("Upgrade").c_str(), "websocket") == 0) {
      res.tunnel = http::Tunnel{"127.0.0.1", up.port, notebook::websocketHead(req.method, target, up.port, out)};
      return;
    }
    http::Client client(fmt::format("127.0.0.1:{}", up.port));
    client.set_timeouts(std::chrono::milliseconds(5000), std::chrono::milliseconds(300000));
    client.set_max_body(256 << 20);
    http::ClientResponse r;
    try {
      std::string type = req.get_header_value("Content-Type");
      out.erase("Content-Type");
      r = client.request(req.method, target, req.body, type, out);
    } catch (const http::ClientError& e) {
      throw ApiError(502, "BadGateway", fmt::format("notebook {} did not answer: {}", name, e.what()));
    }
    res.status = r.status;
    // Jupyter's pages need their own inline scripts: its security headers
    // replace the dashboard's strict policy on these paths.
    res.headers.erase("Content-Security-Policy");
    for (const auto& [k, v] : r.headers)
      if (!notebook::hopByHop(k) && strcasecmp(k.c_str(), "server") != 0) res.headers.emplace(k, notebook::scrub(v, up.token));
    // Jupyter writes its token into its pages (data-jupyter-api-token, a
    // ?token= link) for its scripts' API calls. The browser must not have
    // it: it is taken out, and this proxy adds it to every request instead.
    res.body = notebook::scrub(r.body, up.token);
  }

  // --- Idle culling --------------------------------------------------------

  std::optional<Status> status(const std::string& job_name, std::chrono::milliseconds timeout) {
    std::string dir = notebook::stateDir(opts.data_dir, job_name);
    auto port = notebook::jupyterPort(dir);
    std::string token = notebook::readSecret(dir, "jupyter-token");
    if (!port || token.empty()) return std::nullopt;
    try {
      http::Client c(fmt::format("127.0.0.1:{}", *port));
      c.set_timeouts(timeout, timeout);
      c.set_max_body(1 << 20);
      auto ref_base = db().getJob(job_name);
      if (!ref_base) return std::nullopt;
      auto ref = notebook::notebookOf(ref_base->spec);
      auto r = c.request("GET", notebook::basePath(ref->owner, ref->name) + "api/status", "", "", {{"Authorization", "token " + token}});
      if (r.status != 200) return std::nullopt;
      auto j = json::parse(r.body, nullptr, false);
      if (j.is_discarded()) return std::nullopt;
      Status s;
      if (j.contains("last_activity") && j["last_activity"].is_string()) s.last_activity = notebook::parseIsoUtc(j["last_activity"].get<std::string>());
      if (j.contains("kernels") && j["kernels"].is_number_integer()) s.kernels = j["kernels"].get<int>();
      if (j.contains("connections") && j["connections"].is_number_integer()) s.connections = j["connections"].get<int>();
      return s;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

  // Each running notebook is asked for its last activity every 10 s (what
  // lists show), or every tenth of its idle timeout when that is shorter
  // (at least 1 s); one idle for longer than its timeout is stopped (its
  // workspace stays) with reason IdleCulled.
  void cullLoop() {
    std::unordered_map<std::string, double> next_check;
    for (;;) {
      {
        std::unique_lock lk(mu_);
        if (cv_.wait_for(lk, std::chrono::seconds(1), [&] { return quit_ || stopping.load(); })) return;
      }
      try {
        store::JobQuery q;
        q.label_key = kNotebookLabel;
        q.phase = "active";
        q.limit = 1000;
        auto running = db().queryJobs(q);
        double now = store::nowSeconds();
        // What is known of notebooks that no longer run goes (a stopped
        // one's list entry shows no activity; deleted ones are forgotten).
        std::set<std::string> live;
        for (const auto& j : running.items)
          if (j.phase == store::kRunning) live.insert(j.name);
        std::erase_if(next_check, [&](const auto& kv) { return !live.count(kv.first); });
        {
          std::lock_guard lk(mu_);
          std::erase_if(last_seen_, [&](const auto& kv) { return !live.count(kv.first); });
        }
        for (const auto& j : running.items) {
          auto ref = notebook::notebookOf(j.spec);
          if (!ref || j.phase != store::kRunning || j.cancel_requested) continue;
          double& due = next_check[j.name];
          if (now < due) continue;
          double every = ref->idle_timeout_seconds > 0 ? std::clamp(ref->idle_timeout_seconds / 10.0, 1.0, 10.0) : 10.0;
          due = now + every;
          auto st = status(j.name, std::chrono::milliseconds(2000));
          if (!st || !st->last_activity) continue;
          {
            std::lock_guard lk(mu_);
            last_seen_[j.name] = *st;
          }
          double idle = now - *st->last_activity;
          if (ref->idle_timeout_seconds <= 0 || idle <= static_cast<double>(ref->idle_timeout_seconds)) continue;
          spdlog::info("notebook {}/{}: idle for {:.0f} s (idleTimeout {} s): stopping it", notebook::ownerSegment(ref->owner), ref->name,
                       idle, ref->idle_timeout_seconds);
          db().addEvent(j.id, store::Event{now, "Normal", "IdleCulled",
                                           fmt::format("no activity for {:.0f} s (idleTimeout {} s): stopped; the workspace is kept", idle,
                                                       ref->idle_timeout_seconds)});
          db().requestCancel(j.id);
          wake();
        }
      } catch (const std::exception& e) {
        spdlog::warn("notebook culler: {}", e.what());
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::unordered_map<std::string, Status> last_seen_;  // by job name
  std::thread culler_;
};

}  // namespace

std::unique_ptr<RouteGroup> mountNotebookRoutes(const RouteContext& c, RequestGuard& guard) {
  return std::make_unique<NotebookRoutes>(c, guard);
}

}  // namespace trainyard::api
