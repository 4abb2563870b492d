#include "spec/overrides.h"

#include <cctype>
#include <stdexcept>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace trainyard::spec {
namespace {

using Segment = std::variant<std::string, size_t>;

std::vector<Segment> splitPath(const std::string& path) {
  std::vector<Segment> out;
  std::string key;
  auto flush = [&] {
    if (!key.empty()) out.emplace_back(key);
    key.clear();
  };
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '.') {
      if (key.empty() && (out.empty() || std::holds_alternative<std::string>(out.back())))
        throw std::invalid_argument("empty path segment");
      flush();
    } else if (c == '[') {
      flush();
      size_t close = path.find(']', i);
      if (close == std::string::npos || close == i + 1) throw std::invalid_argument("unclosed '['");
      std::string digits = path.substr(i + 1, close - i - 1);
      for (char d : digits)
        if (!std::isdigit(static_cast<unsigned char>(d)))
          throw std::invalid_argument(fmt::format("index '{}' is not a number", digits));
      out.emplace_back(static_cast<size_t>(std::stoull(digits)));
      i = close;
    } else {
      key += c;
    }
  }
  flush();
  if (out.empty()) throw std::invalid_argument("empty path");
  return out;
}

}  // namespace

Override parseOverride(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument(fmt::format("--set {}: expected path=value", arg));
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

void applyOverride(YAML::Node& root, const Override& o) {
  std::vector<Segment> segments;
  try {
    segments = splitPath(o.path);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(fmt::format("--set {}={}: bad path: {}", o.path, o.value, e.what()));
  }
  YAML::Node value;
  try {
    value = YAML::Load(o.value);
  } catch (const YAML::Exception& e) {
    value = YAML::Node(o.value);  // not YAML: take it as a plain string
  }
  if (!value.IsDefined() || value.IsNull()) value = YAML::Node(o.value);

  // yaml-cpp nodes are handles: walking with reset() would rebind, so keep a
  // chain of handles and assign through the last one.
  YAML::Node cur = root;
  for (size_t i = 0; i < segments.size(); ++i) {
    bool last = i + 1 == segments.size();
    if (auto* key = std::get_if<std::string>(&segments[i])) {
      if (cur.IsDefined() && !cur.IsNull() && !cur.IsMap())
        throw std::invalid_argument(
            fmt::format("--set {}: '{}' is not inside a mapping", o.path, *key));
      if (last) {
        cur[*key] = value;
        return;
      }
      YAML::Node next = cur[*key];
      cur.reset(next);
    } else {
      size_t idx = std::get<size_t>(segments[i]);
      if (!cur.IsSequence())
        throw std::invalid_argument(fmt::format("--set {}: [{}] applied to something that is not a list",
                                                o.path, idx));
      if (idx > cur.size())
        throw std::invalid_argument(fmt::format("--set {}: index {} is out of range (the list has {} items)",
                                                o.path, idx, cur.size()));
      if (idx == cur.size()) {
        if (!last)
          throw std::invalid_argument(fmt::format("--set {}: index {} is out of range", o.path, idx));
        cur.push_back(value);
        return;
      }
      if (last) {
        cur[idx] = value;
        return;
      }
      YAML::Node next = cur[idx];
      cur.reset(next);
    }
  }
}

}  // namespace trainyard::spec
