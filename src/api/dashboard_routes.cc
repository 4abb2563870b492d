// The dashboard: the sign-in form (a token checked and throttled by the
// request guard, then an HttpOnly SameSite=Strict cookie) and the embedded
// single-page app, pre-gzipped at build time. Its catch-all GET goes last.
#include "api/route_context.h"

#include <fmt/format.h>

#include "api/assets.h"
#include "api/request_guard.h"
#include "http/server.h"

namespace trainyard::api {
namespace {

class DashboardRoutes final : public RouteGroup, RouteContext {
 public:
  DashboardRoutes(const RouteContext& c, RequestGuard& g) : RouteContext(c), guard(g) { mount(); }

 private:
  void mount() {
    // Dashboard: sign-in, then the embedded single-page app.
    http.Post("/login", [this](const http::Request& req, http::Response& res) {
      bool throttled = false;
      auto u = guard.signIn(req.remote_addr, req.get_param_value("token"), throttled);
      if (throttled) {
        res.set_header("Retry-After", guard.retryAfter());
        res.status = 429;
        res.set_content("too many wrong tokens from this address; wait and retry\n", "text/plain; charset=utf-8");
        return;
      }
      if (!guard.authEnabled() || !u) {
        res.status = 401;
        res.set_content(RequestGuard::kLoginPage, "text/html; charset=utf-8");
        return;
      }
      // Secure when browsers reach the server over https (a TLS proxy in front).
      bool https = opts.access.public_url.rfind("https://", 0) == 0;
      res.set_header("Set-Cookie", "trainyard_token=" + req.get_param_value("token") + "; Path=/; HttpOnly; SameSite=Strict" +
                                       (https ? "; Secure" : ""));
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
  }

  RequestGuard& guard;
};

}  // namespace

std::unique_ptr<RouteGroup> mountDashboardRoutes(const RouteContext& c, RequestGuard& guard) {
  return std::make_unique<DashboardRoutes>(c, guard);
}

}  // namespace trainyard::api
