#include "api/request_guard.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/server.h"

namespace trainyard::api {
namespace {
using nlohmann::json;

bool isWrite(const std::string& method) { return method != "GET" && method != "HEAD" && method != "OPTIONS"; }

// "Host: name:port" or "[::1]:port" -> name.
std::string hostName(const std::string& host) {
  if (!host.empty() && host[0] == '[') return host.substr(1, host.find(']') - 1);
  if (std::count(host.begin(), host.end(), ':') > 1) return host;  // a bare IPv6 address
  return host.substr(0, host.find(':'));
}

// "https://Example.org:443/path" -> "https://example.org" (default ports dropped).
std::string originOf(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  std::string scheme = url.substr(0, scheme_end);
  std::string rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('/'));
  std::string out = scheme + "://" + rest;
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme == "http" && out.size() > 3 && out.compare(out.size() - 3, 3, ":80") == 0) out.resize(out.size() - 3);
  if (scheme == "https" && out.size() > 4 && out.compare(out.size() - 4, 4, ":443") == 0) out.resize(out.size() - 4);
  return out;
}

std::string cookieToken(const std::string& cookies) {
  const std::string key = "trainyard_token=";
  size_t pos = 0;
  while ((pos = cookies.find(key, pos)) != std::string::npos) {
    if (pos == 0 || cookies[pos - 1] == ' ' || cookies[pos - 1] == ';') {
      size_t end = cookies.find(';', pos);
      return cookies.substr(pos + key.size(), end == std::string::npos ? std::string::npos : end - pos - key.size());
    }
    pos += key.size();
  }
  return "";
}

bool isWildcard(const std::string& address) { return address == "0.0.0.0" || address == "::" || address.empty(); }

bool protocolPath(const std::string& path) { return path.rfind("/v1/", 0) == 0 || path.rfind("/v2", 0) == 0; }

}  // namespace

void writeError(const http::Request& req, http::Response& res, int status, const std::string& code, const std::string& message,
                const std::string& field) {
  res.status = status;
  json body;
  if (protocolPath(req.path)) {
    body = {{"error", message}};
  } else {
    json e{{"code", code}, {"message", message}};
    if (!field.empty()) e["field"] = field;
    body = {{"error", e}};
  }
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json; charset=utf-8");
}

const char* RequestGuard::kLoginPage = R"html(<!doctype html><html><head><meta charset="utf-8"><title>Trainyard - sign in</title>
<style>body{font-family:system-ui,sans-serif;display:flex;justify-content:center;margin-top:15vh;background:#f6f7f9}
form{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0002;display:flex;flex-direction:column;gap:.8em;min-width:22em}
input,button{font-size:1em;padding:.5em}</style></head><body>
<form method="post" action="/login"><h2>Trainyard</h2><label>Access token<br><input name="token" type="password" autofocus style="width:100%"></label>
<button type="submit">Sign in</button></form></body></html>)html";

RequestGuard::RequestGuard(GuardOptions o) : opts_(std::move(o)) {
  own_hosts_.push_back(opts_.address);
  if (std::string o = originOf(opts_.public_url); !o.empty()) own_hosts_.push_back(hostName(o.substr(o.find("://") + 3)));
  for (auto& o2 : opts_.allowed_origins) o2 = originOf(o2).empty() ? o2 : originOf(o2);
}

bool RequestGuard::hostAllowed(const std::string& host) const {
  if (host.empty()) return false;
  std::string name = hostName(host);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name == "localhost" || isLoopback(name)) return true;
  if (isWildcard(opts_.address) && opts_.public_url.empty()) return true;
  return std::find(own_hosts_.begin(), own_hosts_.end(), name) != own_hosts_.end();
}

bool RequestGuard::originAllowed(const http::Request& req, const std::string& origin) const {
  std::string o = originOf(origin);
  if (o.empty()) return false;  // "null" (sandboxed frames, file://) is never ours
  // Our own origin: the one the browser reached us at.
  std::string host = req.get_header_value("Host");
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (o == originOf("http://" + host) && hostAllowed(host)) return true;
  if (!opts_.public_url.empty() && o == originOf(opts_.public_url)) return true;
  return std::find(opts_.allowed_origins.begin(), opts_.allowed_origins.end(), o) != opts_.allowed_origins.end();
}

bool RequestGuard::throttled(const std::string& addr) {
  std::lock_guard lk(mu_);
  auto it = failures_.find(addr);
  if (it == failures_.end()) return false;
  auto now = std::chrono::steady_clock::now();
  double refill = std::chrono::duration<double>(now - it->second.at) / std::chrono::duration<double>(opts_.failure_refill);
  it->second.tokens = std::min<double>(opts_.failure_burst, it->second.tokens + refill);
  it->second.at = now;
  return it->second.tokens < 1;
}

void RequestGuard::failed(const std::string& addr) {
  std::lock_guard lk(mu_);
  if (failures_.size() > 100000) failures_.clear();  // bounded: an address flood resets, never grows
  auto [it, fresh] = failures_.try_emplace(addr, Bucket{double(opts_.failure_burst), std::chrono::steady_clock::now()});
  it->second.tokens = std::max(0.0, it->second.tokens - 1);
}

std::optional<User> RequestGuard::signIn(const std::string& addr, const std::string& token, bool& is_throttled) {
  is_throttled = false;
  if (!opts_.auth) return User{"", true};
  if (throttled(addr)) {
    is_throttled = true;
    return std::nullopt;
  }
  auto u = opts_.auth->lookup(token);
  if (!u) failed(addr);
  return u;
}

std::string RequestGuard::retryAfter() const {
  return std::to_string(std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(opts_.failure_refill).count()));
}

User RequestGuard::user(const http::Request& req) {
  if (auto* u = std::any_cast<User>(&req.context)) return *u;
  return User{"", true};
}

bool RequestGuard::check(http::Request& req, http::Response& res) {
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "same-origin");
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                 "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
  std::string host = req.get_header_value("Host");
  if (!hostAllowed(host)) {
    writeError(req, res, 403, "ForbiddenHost",
               fmt::format("Host \"{}\" is not this server's name (a loopback address, {}{}); DNS rebinding is refused", host,
                           opts_.address, opts_.public_url.empty() ? "" : " or " + opts_.public_url));
    return true;
  }
  // A WebSocket is opened by a GET, but it is a channel that changes things
  // (a kernel runs code) and browsers open one cross-site with the cookie:
  // it passes the write rules (cross-site WebSocket hijacking).
  bool write = isWrite(req.method) || strcasecmp(req.get_header_value("Upgrade").c_str(), "websocket") == 0;
  std::string origin = req.get_header_value("Origin");
  if (write && !origin.empty() && !originAllowed(req, origin)) {
    writeError(req, res, 403, "ForbiddenOrigin",
               fmt::format("requests from origin {} may not change anything here (list it in --allowed-origins to allow it)", origin));
    return true;
  }
  // The inference protocols are exempt: their published examples use
  // `curl -d` (a form type), a prediction changes nothing, and the Origin
  // rule above still refuses other sites' pages.
  if (write && !req.body.empty() && !protocolPath(req.path)) {
    std::string type = req.get_header_value("Content-Type");
    type = type.substr(0, type.find(';'));
    type.erase(std::remove(type.begin(), type.end(), ' '), type.end());
    std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
    bool login_form = req.path == "/login" && type == "application/x-www-form-urlencoded";
    if (type != "application/json" && type != "application/yaml" && !login_form) {
      writeError(req, res, 415, "UnsupportedMediaType",
                 fmt::format("Content-Type \"{}\" is not accepted: send application/json or application/yaml",
                             req.get_header_value("Content-Type")));
      return true;
    }
  }
  if (!opts_.auth) return false;
  bool open = req.path == "/login" || std::find(opts_.open_paths.begin(), opts_.open_paths.end(), req.path) != opts_.open_paths.end();
  if (open) return false;

  std::string token, h = req.get_header_value("Authorization");
  bool from_cookie = false;
  if (h.size() > 7 && strncasecmp(h.c_str(), "bearer ", 7) == 0) token = h.substr(h.find_first_not_of(' ', 7));
  if (token.empty()) {
    token = cookieToken(req.get_header_value("Cookie"));
    from_cookie = !token.empty();
  }
  if (token.empty()) token = req.get_param_value("access_token");
  auto pagePath = [&] {
    return opts_.dashboard && req.method == "GET" && req.path.rfind("/api/", 0) != 0 && !protocolPath(req.path) && req.path != "/metrics";
  };
  if (token.empty()) {
    if (pagePath()) {
      res.status = 401;
      res.set_content(kLoginPage, "text/html; charset=utf-8");
    } else {
      writeError(req, res, 401, "Unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)");
    }
    return true;
  }
  if (throttled(req.remote_addr)) {
    res.set_header("Retry-After", retryAfter());
    writeError(req, res, 429, "TooManyAttempts", "too many wrong tokens from this address; wait and retry");
    return true;
  }
  auto u = opts_.auth->lookup(token);
  for (size_t i = 0; !u && i < verifiers_.size(); ++i) u = verifiers_[i](token);
  if (!u) {
    failed(req.remote_addr);
    if (pagePath()) {
      res.status = 401;
      res.set_content(kLoginPage, "text/html; charset=utf-8");
    } else {
      writeError(req, res, 401, "Unauthorized", "the token is not valid (Authorization: Bearer <token>)");
    }
    return true;
  }
  // A cookie rides along with any request the browser makes to this host:
  // writes with it must come from our own pages (CSRF).
  if (write && from_cookie && (origin.empty() || !originAllowed(req, origin))) {
    writeError(req, res, 403, "ForbiddenOrigin", "a cookie-authenticated change must come from this server's own pages");
    return true;
  }
  req.context = *u;
  return false;
}

}  // namespace trainyard::api
