#include "metrics/line_parser.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

namespace trainyard::metrics {
namespace {

inline bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '|' || c == '-';
}
inline bool isDigit(char c) { return c >= '0' && c <= '9'; }
// \s in RE2/ECMAScript: space, \t, \n, \v, \f, \r.
inline bool isSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Parses the value part greedily like the regex; returns its length (may be 0).
size_t scanValue(std::string_view s, size_t i) {
  size_t start = i;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  while (i < s.size() && isDigit(s[i])) ++i;
  if (i + 1 < s.size() && s[i] == '.' && isDigit(s[i + 1])) {
    ++i;
    while (i < s.size() && isDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && isDigit(s[j])) {
      while (j < s.size() && isDigit(s[j])) ++j;
      i = j;
    }
  }
  return i - start;
}

bool toDouble(std::string_view v, double& out) {
  if (!v.empty() && v[0] == '+') v.remove_prefix(1);
  if (v.empty()) return false;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size() && std::isfinite(out);
}

}  // namespace

void scanKatibLine(std::string_view s, std::vector<Pair>& out) {
  size_t i = 0;
  while (i < s.size()) {
    if (!isNameChar(s[i])) { ++i; continue; }
    size_t name_start = i;
    while (i < s.size() && isNameChar(s[i])) ++i;
    size_t name_end = i;
    size_t j = i;
    while (j < s.size() && isSpace(s[j])) ++j;
    if (j >= s.size() || s[j] != '=') continue;  // a match starting inside this run would fail the same way
    ++j;
    while (j < s.size() && isSpace(s[j])) ++j;
    size_t len = scanValue(s, j);
    double v;
    if (toDouble(s.substr(j, len), v)) out.push_back({s.substr(name_start, name_end - name_start), v});
    i = j + len;
  }
}

struct LineParser::CompiledRegex {
  std::vector<std::regex> res;  // Katib's metricsFormat is a list: every one applies to every line
};

LineParser::LineParser(Format format, const std::string& regex) : format_(format) {
  if (format_ != Format::Regex) return;
  regex_ = std::make_unique<CompiledRegex>();
  for (size_t at = 0; at <= regex.size();) {
    size_t nl = regex.find('\n', at);
    std::string one = regex.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    if (!one.empty()) regex_->res.emplace_back(one);
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
}
LineParser::~LineParser() = default;

namespace {

// A JSON number, or a string that is wholly one ("0.7646", " 1e-3"); finite only.
std::optional<double> jsonNumber(const nlohmann::json& v) {
  if (v.is_number()) {
    double d = v.get<double>();
    return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
  }
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.empty() || s.size() > 64) return std::nullopt;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  while (end && *end == ' ') ++end;
  if (end == s.c_str() || *end != '\0' || !std::isfinite(d)) return std::nullopt;
  return d;
}

// Seconds since the epoch from a number, a numeric string, or RFC 3339
// ("2021-12-02T14:27:51", with optional fraction and Z or +hh:mm).
std::optional<double> jsonTime(const nlohmann::json& v) {
  if (auto x = jsonNumber(v)) return x;
  if (!v.is_string()) return std::nullopt;
  const std::string& s = v.get_ref<const std::string&>();
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return std::nullopt;
  double t = static_cast<double>(timegm(&tm));
  if (*rest == '.') {
    char* end = nullptr;
    t += std::strtod(rest, &end);
    rest = end;
  }
  if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (std::sscanf(rest + 1, "%2d:%2d", &hh, &mm) == 2) t -= (*rest == '+' ? 1 : -1) * (hh * 3600.0 + mm * 60.0);
  }
  return t;
}

}  // namespace

void LineParser::emit(std::vector<Pair>& pairs, double now, std::vector<MetricPoint>& out) {
  if (pairs.empty()) return;
  // A step outside [0, kMaxStep] (or not a number) is no step: the line
  // gets the series' next implicit one (a cast of 1e300 is undefined).
  auto asStep = [](double v) { return v >= 0 && v <= static_cast<double>(kMaxStep) ? static_cast<int64_t>(v) : int64_t{-1}; };
  int64_t step = -1;
  for (const auto& p : pairs)
    if (p.name == "step") step = asStep(p.value);
  if (step < 0)
    for (const auto& p : pairs)
      if (p.name == "epoch") step = asStep(p.value);
  for (const auto& p : pairs) {
    MetricPoint mp;
    mp.name.assign(p.name);
    mp.value = p.value;
    mp.timestamp = now;
    if (step >= 0) {
      mp.step = step;
    } else {
      auto& idx = next_index_[mp.name];
      mp.step = idx++;
    }
    out.push_back(std::move(mp));
  }
  pairs.clear();
}

void LineParser::parseLine(std::string_view line, double now, std::vector<MetricPoint>& out) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pairs_.clear();
  switch (format_) {
    case Format::Katib:
      scanKatibLine(line, pairs_);
      break;
    case Format::Regex: {
      owned_.clear();
      std::vector<std::pair<std::string, double>> found;
      for (const auto& re : regex_->res) {
        auto begin = std::cregex_iterator(line.data(), line.data() + line.size(), re);
        for (auto it = begin; it != std::cregex_iterator(); ++it) {
          double v;
          if ((*it).size() > 2 && toDouble(std::string_view((*it)[2].first, (*it)[2].length()), v))
            found.emplace_back((*it)[1].str(), v);
        }
      }
      owned_.reserve(found.size());
      for (auto& [n, v] : found) {
        owned_.push_back(std::move(n));
        pairs_.push_back({owned_.back(), v});
      }
      break;
    }
    case Format::JsonLines: {
      // Katib's JSON format: one object per line, a value a number or a
      // string holding one (cloudml-hypertune writes {"loss": "0.76",
      // "global_step": "1", "trial": "0", "timestamp": 1.7e9}); the
      // timestamp a number or an RFC 3339 time. global_step is the step;
      // hypertune's trial id is not a metric.
      auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
      if (!j.is_object()) return;  // not a metrics line; JSON-lines files may hold other records
      owned_.clear();
      owned_.reserve(j.size());
      for (auto& [k, v] : j.items()) {
        if (k == "timestamp" || k == "trial") continue;
        auto x = jsonNumber(v);
        if (!x) continue;
        owned_.push_back(k == "global_step" ? "step" : k);
        pairs_.push_back({owned_.back(), *x});
      }
      if (j.contains("timestamp"))
        if (auto t = jsonTime(j["timestamp"])) now = *t;
      break;
    }
  }
  emit(pairs_, now, out);
}

void LineParser::feed(std::string_view bytes, double now, std::vector<MetricPoint>& out) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    if (skipping_) {
      if (nl == std::string_view::npos) return;
      skipping_ = false;
      bytes.remove_prefix(nl + 1);
      continue;
    }
    if (nl == std::string_view::npos) {
      if (partial_.size() + bytes.size() > kMaxLine) {
        partial_.clear();
        skipping_ = true;
        return;
      }
      partial_.append(bytes);
      return;
    }
    if (partial_.empty()) {
      if (nl <= kMaxLine) parseLine(bytes.substr(0, nl), now, out);
    } else {
      if (partial_.size() + nl <= kMaxLine) {
        partial_.append(bytes.substr(0, nl));
        parseLine(partial_, now, out);
      }
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void LineParser::finish(double now, std::vector<MetricPoint>& out) {
  if (!partial_.empty() && !skipping_) parseLine(partial_, now, out);
  partial_.clear();
  skipping_ = false;
}

// Stored as text in any database: "" (nothing pending), "skip" (inside an
// overlong line) or "hex:" and the pending bytes in hex (log bytes need not
// be UTF-8, which PostgreSQL's TEXT requires).
std::string LineParser::carry() const {
  if (skipping_) return "skip";
  if (partial_.empty()) return "";
  static const char* digits = "0123456789abcdef";
  std::string out = "hex:";
  out.reserve(4 + 2 * partial_.size());
  for (unsigned char c : partial_) out += digits[c >> 4], out += digits[c & 15];
  return out;
}

void LineParser::restoreCarry(const std::string& carry) {
  partial_.clear();
  skipping_ = carry == "skip";
  if (carry.rfind("hex:", 0) != 0) return;
  auto nibble = [](char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; };
  for (size_t i = 4; i + 1 < carry.size() && partial_.size() < kMaxLine; i += 2)
    partial_ += static_cast<char>(nibble(carry[i]) << 4 | nibble(carry[i + 1]));
}

}  // namespace trainyard::metrics
