// Bearer-token authentication for the server (`--auth tokens.yaml`):
//
//   tokens:
//     - token: "…"      # what clients send as Authorization: Bearer …
//       user: alice
//       admin: false    # admins see and manage every user's jobs
//
// Without a token file every caller is the anonymous admin (loopback only).
//
// Or tokens are checked elsewhere (`--auth kubernetes`: the cluster's
// TokenReview and SubjectAccessReview); then each answer, a refusal too, is
// kept for a minute, so a request does not cost two calls to the cluster.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace trainyard::api {

struct User {
  std::string name;
  bool admin = false;
};

class TokenAuth {
 public:
  // Throws std::runtime_error naming the file, line and field on bad input.
  static TokenAuth load(const std::string& path);
  using Verifier = std::function<std::optional<User>(const std::string& token)>;
  static TokenAuth external(Verifier verify);
  // Thread-safe.
  std::optional<User> lookup(const std::string& token) const;
  size_t size() const { return users_.size(); }

 private:
  std::unordered_map<std::string, User> users_;
  Verifier verify_;
  struct Cache;
  std::shared_ptr<Cache> cache_;
};

}  // namespace trainyard::api
