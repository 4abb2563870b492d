#include "tune/settings.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

namespace trainyard::tune {

Settings::Settings(std::string context, const std::map<std::string, std::string>& values,
                   std::initializer_list<const char*> known)
    : context_(std::move(context)), values_(values) {
  for (const auto& kv : values_) {
    const std::string& k = kv.first;  // (a lambda cannot capture a structured binding before clang 16)
    if (std::any_of(known.begin(), known.end(), [&](const char* n) { return k == n; })) continue;
    std::string list;
    for (const char* n : known) list += (list.empty() ? "" : ", ") + std::string(n);
    throw std::invalid_argument(fmt::format("{}: unknown setting {} (known: {})", context_, k, list.empty() ? "none" : list));
  }
}

double Settings::number(const char* key, double def, double min) const {
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end || !(v >= min))
    throw std::invalid_argument(
        fmt::format("{}: setting {} must be a number >= {}, got \"{}\"", context_, key, min, it->second));
  return v;
}

bool Settings::flag(const char* key, bool def) const {
  auto it = values_.find(key);
  if (it == values_.end()) return def;
  if (it->second == "true" || it->second == "True") return true;
  if (it->second == "false" || it->second == "False") return false;
  throw std::invalid_argument(fmt::format("{}: setting {} must be true or false", context_, key));
}

}  // namespace trainyard::tune
