#include "http/message.h"

#include <strings.h>

namespace trainyard::http {

bool CaseLess::operator()(const std::string& a, const std::string& b) const {
  return strcasecmp(a.c_str(), b.c_str()) < 0;
}

std::string Request::get_header_value(const std::string& key) const {
  auto it = headers.find(key);
  return it == headers.end() ? "" : it->second;
}

std::string Request::get_param_value(const std::string& key) const {
  auto it = params.find(key);
  return it == params.end() ? "" : it->second;
}

void Response::set_header(const std::string& key, const std::string& value) {
  headers.erase(key);
  headers.emplace(key, value);
}

void Response::set_content(std::string text, const std::string& content_type) {
  body = std::move(text);
  set_header("Content-Type", content_type);
}

void Response::set_content(const char* data, size_t n, const std::string& content_type) {
  set_content(std::string(data, n), content_type);
}

void Response::set_redirect(const std::string& url, int code) {
  status = code;
  set_header("Location", url);
}

void Response::set_chunked_content_provider(const std::string& content_type, StreamProducer producer) {
  set_header("Content-Type", content_type);
  stream = std::move(producer);
}

namespace {
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string percentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

void parseQuery(std::string_view query, Params& out) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = percentDecode(part.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? "" : percentDecode(part.substr(eq + 1), true);
    out.emplace(std::move(key), std::move(value));
  }
}

}  // namespace trainyard::http
