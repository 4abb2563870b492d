// Bearer-token authentication for the server (`--auth tokens.yaml`):
//
//   tokens:
//     - token: "…"      # what clients send as Authorization: Bearer …
//       user: alice
//       admin: false    # admins see and manage every user's jobs
//
// Without a token file every caller is the anonymous admin (loopback only).
#pragma once
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
  std::optional<User> lookup(const std::string& token) const;
  size_t size() const { return users_.size(); }

 private:
  std::unordered_map<std::string, User> users_;
};

}  // namespace trainyard::api
