#include "notebook/proxy_rules.h"

#include <strings.h>

#include <cstdlib>
#include <ctime>

#include <fmt/format.h>

namespace trainyard::notebook {

bool hopByHop(const std::string& name) {
  static const char* kNames[] = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
                                 "content-length", "host"};
  for (const char* n : kNames)
    if (strcasecmp(name.c_str(), n) == 0) return true;
  return false;
}

http::Headers upstreamHeaders(const http::Headers& in, const std::string& jupyter_token, const std::string& client_addr) {
  http::Headers out;
  std::string cookies;
  for (const auto& [k, v] : in) {
    if (strcasecmp(k.c_str(), "cookie") == 0) cookies += (cookies.empty() ? "" : "; ") + v;
    if (hopByHop(k) || strcasecmp(k.c_str(), "authorization") == 0 || strcasecmp(k.c_str(), "origin") == 0 ||
        strcasecmp(k.c_str(), "cookie") == 0 || strcasecmp(k.c_str(), "x-forwarded-for") == 0)
      continue;
    out.emplace(k, v);
  }
  if (std::string c = withoutOwnCookie(cookies); !c.empty()) out.emplace("Cookie", c);
  out.emplace("Authorization", "token " + jupyter_token);
  out.emplace("X-Forwarded-For", client_addr);
  return out;
}

std::string withoutOwnCookie(const std::string& cookies) {
  std::string out;
  size_t pos = 0;
  while (pos < cookies.size()) {
    size_t end = cookies.find(';', pos);
    std::string part = cookies.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? cookies.size() : end + 1;
    size_t start = part.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    part = part.substr(start);
    if (part.rfind("trainyard_token=", 0) == 0) continue;
    out += (out.empty() ? "" : "; ") + part;
  }
  return out;
}

std::string withoutAccessToken(const std::string& target) {
  auto q = target.find('?');
  if (q == std::string::npos || target.find("access_token=", q) == std::string::npos) return target;
  std::string out = target.substr(0, q);
  std::string query = target.substr(q + 1), kept;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    std::string part = query.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (!part.empty() && part.rfind("access_token=", 0) != 0) kept += (kept.empty() ? "" : "&") + part;
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return kept.empty() ? out : out + "?" + kept;
}

std::string scrub(const std::string& text, const std::string& secret) {
  if (secret.empty()) return text;
  std::string out;
  size_t pos = 0;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, pos)) {
    out.append(text, pos, at - pos);
    pos = at + secret.size();
  }
  if (pos == 0) return text;
  out.append(text, pos, std::string::npos);
  return out;
}

std::string websocketHead(const std::string& method, const std::string& target, int port, const http::Headers& headers) {
  std::string head = fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n", method, target, port);
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  return head + "\r\n";
}

std::optional<double> parseIsoUtc(const std::string& s) {
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  double frac = 0;
  if (*rest == '.') frac = std::strtod(rest, nullptr);
  return static_cast<double>(timegm(&tm)) + frac;
}

}  // namespace trainyard::notebook
