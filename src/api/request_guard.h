// The checks every request to `trainyard server` and `trainyard serve` passes
// before any route sees it (docs/security.md):
//  - Host names a loopback address, the listening address or the public URL
//    (DNS rebinding); skipped when listening on a wildcard address, where
//    --auth is mandatory.
//  - State-changing methods (and WebSocket upgrades): an Origin, when sent, is this server's own or
//    listed in allowed_origins; a body is application/json or
//    application/yaml (a browser sends neither cross-origin without a
//    preflight, which is never granted) - but for the inference protocols
//    (/v1/, /v2/), whose published examples post with `curl -d`; a
//    cookie-authenticated write needs a same-origin Origin (CSRF).
//  - With --auth, a token (Authorization: Bearer, the dashboard's cookie or
//    ?access_token=) on every path but the open ones; wrong tokens are
//    throttled per client address.
//  - Security headers on every answer.
#pragma once
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/auth.h"
#include "http/message.h"

namespace trainyard::api {

struct GuardOptions {
  std::optional<TokenAuth> auth;
  std::string address = "127.0.0.1";     // where the server listens
  std::string public_url;                 // e.g. https://trainyard.example.org (behind a proxy)
  std::vector<std::string> allowed_origins;
  // Answered without a token: health, and the KServe V2 probes (Kubernetes and
  // load balancers probe without credentials; they say only "up").
  std::vector<std::string> open_paths = {"/healthz", "/v2/health/live", "/v2/health/ready"};
  bool dashboard = false;  // unauthenticated page GETs get the sign-in form, not JSON
  // Wrong tokens per client address: a burst, then one per refill period.
  int failure_burst = 10;
  std::chrono::milliseconds failure_refill{6000};
};

class RequestGuard {
 public:
  explicit RequestGuard(GuardOptions o);
  // The server's pre-routing hook: true when it has answered (refused).
  bool check(http::Request& req, http::Response& res);
  // The caller the guard let through (the anonymous admin without --auth).
  static User user(const http::Request& req);
  // A token from the sign-in form, throttled like the others. nullopt with
  // `throttled` set when this address has guessed too often.
  std::optional<User> signIn(const std::string& remote_addr, const std::string& token, bool& throttled);
  bool authEnabled() const { return opts_.auth.has_value(); }
  // Another kind of token (a notebook's scoped one), asked when the token
  // file does not know a token. Added before the server serves.
  void addTokenVerifier(TokenAuth::Verifier v) { verifiers_.push_back(std::move(v)); }
  // Seconds a throttled address should wait (the Retry-After header).
  std::string retryAfter() const;

  static const char* kLoginPage;

 private:
  bool hostAllowed(const std::string& host) const;
  bool originAllowed(const http::Request& req, const std::string& origin) const;
  bool throttled(const std::string& addr);
  void failed(const std::string& addr);

  GuardOptions opts_;
  std::vector<TokenAuth::Verifier> verifiers_;
  std::vector<std::string> own_hosts_;
  std::mutex mu_;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  std::unordered_map<std::string, Bucket> failures_;
};

// Writes {"error": {"code", "message", "field"}} (the REST API's shape), or
// {"error": "message"} on the inference protocols' paths (/v1/, /v2/).
void writeError(const http::Request& req, http::Response& res, int status, const std::string& code, const std::string& message,
                const std::string& field = "");

}  // namespace trainyard::api
