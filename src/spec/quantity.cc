#include "spec/quantity.h"

#include <charconv>
#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace trainyard::spec {
namespace {

// Splits "1.5Gi" into the number 1.5 and the suffix "Gi". Rejects signs,
// empty numbers and trailing garbage; the suffix is validated by the caller.
std::optional<std::pair<double, std::string_view>> splitNumber(std::string_view s) {
  size_t i = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) { ++i; digits = true; }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) { ++i; digits = true; }
  }
  if (!digits) return std::nullopt;
  // Exponent form ("1e9") is only an exponent when digits follow the 'e';
  // otherwise "E" is the exa suffix.
  if (i + 1 < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    size_t k = j;
    while (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) ++k;
    if (k > j && k == s.size()) i = k;
  }
  double value = 0;
  std::string num(s.substr(0, i));
  auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
  if (ec != std::errc() || ptr != num.data() + num.size() || !std::isfinite(value)) return std::nullopt;
  return std::make_pair(value, s.substr(i));
}

std::optional<int64_t> toInt(double v) {
  if (v < 0 || v > 9.2e18 || !std::isfinite(v)) return std::nullopt;
  return static_cast<int64_t>(std::llround(v));
}

}  // namespace

std::optional<int64_t> parseCpuMillis(std::string_view text) {
  auto parts = splitNumber(text);
  if (!parts) return std::nullopt;
  auto [value, suffix] = *parts;
  if (suffix.empty()) return toInt(value * 1000.0);
  if (suffix == "m") return toInt(value);
  return std::nullopt;
}

std::optional<int64_t> parseMemoryBytes(std::string_view text) {
  auto parts = splitNumber(text);
  if (!parts) return std::nullopt;
  auto [value, suffix] = *parts;
  static constexpr std::pair<std::string_view, double> kSuffixes[] = {
      {"", 1.0},       {"Ki", 0x1p10},  {"Mi", 0x1p20}, {"Gi", 0x1p30}, {"Ti", 0x1p40},
      {"Pi", 0x1p50},  {"Ei", 0x1p60},  {"k", 1e3},     {"K", 1e3},     {"M", 1e6},
      {"G", 1e9},      {"T", 1e12},     {"P", 1e15},    {"E", 1e18},
  };
  for (auto [name, factor] : kSuffixes)
    if (suffix == name) return toInt(value * factor);
  return std::nullopt;
}

std::string formatCpuMillis(int64_t millis) {
  if (millis % 1000 == 0) return fmt::format("{}", millis / 1000);
  return fmt::format("{}m", millis);
}

std::string formatBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
  int unit = 0;
  while (unit < 5 && bytes != 0 && bytes % 1024 == 0) { bytes /= 1024; ++unit; }
  return fmt::format("{}{}", bytes, kUnits[unit]);
}

}  // namespace trainyard::spec
