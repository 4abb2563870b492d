#include "api/auth.h"

#include <chrono>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace trainyard::api {

TokenAuth TokenAuth::load(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::runtime_error(fmt::format("{}: cannot read the token file", path));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("{}:{}:{}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  auto where = [&](const YAML::Node& n) { return fmt::format("{}:{}:{}", path, n.Mark().line + 1, n.Mark().column + 1); };
  YAML::Node tokens = root && root.IsMap() ? root["tokens"] : YAML::Node();
  if (!tokens || !tokens.IsSequence())
    throw std::runtime_error(fmt::format("{}: expected a list under \"tokens\" (each with token and user)", path));
  TokenAuth auth;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const YAML::Node& t = tokens[i];
    std::string field = fmt::format("tokens[{}]", i);
    if (!t.IsMap()) throw std::runtime_error(fmt::format("{}: {}: expected a mapping with token and user", where(t), field));
    if (!t["token"] || !t["token"].IsScalar() || t["token"].as<std::string>().size() < 8)
      throw std::runtime_error(fmt::format("{}: {}.token: expected a string of at least 8 characters", where(t), field));
    if (!t["user"] || !t["user"].IsScalar() || t["user"].as<std::string>().empty())
      throw std::runtime_error(fmt::format("{}: {}.user: expected a user name", where(t), field));
    User u{t["user"].as<std::string>(), false};
    // A user name names a workspace directory: no path tricks.
    if (u.name == "." || u.name == ".." || u.name.size() > 64 ||
        u.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-") != std::string::npos)
      throw std::runtime_error(fmt::format("{}: {}.user: expected letters, digits, '.', '_', '@' or '-' (at most 64), got \"{}\"",
                                           where(t["user"]), field, u.name));
    if (t["admin"]) {
      try {
        u.admin = t["admin"].as<bool>();
      } catch (const YAML::Exception&) {
        throw std::runtime_error(fmt::format("{}: {}.admin: expected true or false", where(t["admin"]), field));
      }
    }
    if (!auth.users_.emplace(t["token"].as<std::string>(), u).second)
      throw std::runtime_error(fmt::format("{}: {}.token: the same token is listed twice", where(t), field));
  }
  return auth;
}

struct TokenAuth::Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::pair<std::optional<User>, std::chrono::steady_clock::time_point>> answers;
};

TokenAuth TokenAuth::external(Verifier verify) {
  TokenAuth a;
  a.verify_ = std::move(verify);
  a.cache_ = std::make_shared<Cache>();
  return a;
}

std::optional<User> TokenAuth::lookup(const std::string& token) const {
  auto it = users_.find(token);
  if (it != users_.end()) return it->second;
  if (!verify_) return std::nullopt;
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(cache_->mu);
    auto hit = cache_->answers.find(token);
    if (hit != cache_->answers.end() && now - hit->second.second < std::chrono::minutes(1)) return hit->second.first;
    if (cache_->answers.size() > 10000) cache_->answers.clear();  // bounded: tokens are the clients' to invent
  }
  auto answer = verify_(token);
  std::lock_guard lk(cache_->mu);
  cache_->answers[token] = {answer, now};
  return answer;
}

}  // namespace trainyard::api
