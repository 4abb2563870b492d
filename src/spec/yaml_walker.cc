#include "spec/yaml_walker.h"

#include <cmath>

#include <filesystem>
#include <optional>
#include <regex>

#include <fmt/format.h>

#include "spec/parser.h"
#include "spec/quantity.h"
#include "spec/schema.h"

namespace trainyard::spec {

const char* typeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "null";
    default: return "nothing";
  }
}

std::string Walker::locate(const YAML::Node& at, const std::string& path, const std::string& msg) const {
  YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
  if (m.is_null()) return fmt::format("{}: {}: {}", file_, path, msg);
  return fmt::format("{}:{}:{}: {}: {}", file_, m.line + 1, m.column + 1, path, msg);
}

void Walker::fail(const YAML::Node& at, const std::string& path, const std::string& msg) const {
  for (const auto& o : overridden_)
    if (path == o || path.rfind(o + ".", 0) == 0 || path.rfind(o + "[", 0) == 0)
      throw SpecError(file_ + " (--set " + o + ")", 0, 0, path, msg);
  YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
  if (m.is_null()) throw SpecError(file_, 0, 0, path, msg);
  throw SpecError(file_, m.line + 1, m.column + 1, path, msg);
}

void Walker::expectMap(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) const {
  if (!n.IsMap()) fail(n, path, fmt::format("expected a mapping, got {}", typeName(n)));
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.Scalar();
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(it->first, join(path, key), fmt::format("unknown field '{}' (expected one of: {})", key, list));
    }
  }
}

std::string Walker::str(const YAML::Node& n, const std::string& path) const {
  if (!n.IsScalar()) fail(n, path, fmt::format("expected a string, got {}", typeName(n)));
  return n.Scalar();
}

namespace {
// `s` as a whole read by `conv` (std::stoll, std::stod), or nothing.
template <typename T, typename Conv>
std::optional<T> whole(const std::string& s, Conv conv) {
  size_t used = 0;
  T v{};
  try {
    v = conv(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  if (used == 0 || used != s.size()) return std::nullopt;
  return v;
}
const auto kToInt = [](const std::string& s, size_t* used) { return std::stoll(s, used); };
const auto kToDouble = [](const std::string& s, size_t* used) { return std::stod(s, used); };
}  // namespace

int64_t Walker::integer(const YAML::Node& n, const std::string& path, int64_t min, int64_t max) const {
  if (!n.IsScalar()) fail(n, path, fmt::format("expected an integer, got {}", typeName(n)));
  auto v = whole<int64_t>(n.Scalar(), kToInt);
  if (!v) fail(n, path, fmt::format("expected an integer, got \"{}\"", n.Scalar()));
  if (*v < min || *v > max) fail(n, path, fmt::format("expected an integer in [{}, {}], got {}", min, max, *v));
  return *v;
}

bool Walker::boolean(const YAML::Node& n, const std::string& path) const {
  if (n.IsScalar() && n.Tag() != "!") {
    const std::string& s = n.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  fail(n, path, fmt::format("expected true or false, got {}", n.IsScalar() ? "\"" + n.Scalar() + "\"" : typeName(n)));
}

double Walker::number(const YAML::Node& n, const std::string& path, double min, double max) const {
  if (!n.IsScalar()) fail(n, path, fmt::format("expected a number, got {}", typeName(n)));
  auto v = whole<double>(n.Scalar(), kToDouble);
  if (!v || !std::isfinite(*v)) fail(n, path, fmt::format("expected a number, got \"{}\"", n.Scalar()));
  if (*v < min || *v > max) fail(n, path, fmt::format("expected a number in [{:g}, {:g}], got {:g}", min, max, *v));
  return *v;
}

int64_t parseDuration(const Walker& w, const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) w.fail(n, path, fmt::format("expected a duration such as 90s, 30m or 2h, got {}", typeName(n)));
  std::string s = n.Scalar();
  int64_t unit = 1;
  if (!s.empty() && std::string("smhd").find(s.back()) != std::string::npos) {
    unit = s.back() == 's' ? 1 : s.back() == 'm' ? 60 : s.back() == 'h' ? 3600 : 86400;
    s.pop_back();
  }
  auto v = whole<int64_t>(s, kToInt);
  if (!v || *v < 1 || *v > (int64_t{1} << 40) / unit)
    w.fail(n, path, fmt::format("expected a duration such as 90s, 30m or 2h, got \"{}\"", n.Scalar()));
  return *v * unit;
}

std::vector<std::string> Walker::strList(const YAML::Node& n, const std::string& path) const {
  if (!n.IsSequence()) fail(n, path, fmt::format("expected a list of strings, got {}", typeName(n)));
  std::vector<std::string> out;
  for (size_t i = 0; i < n.size(); ++i) out.push_back(str(n[i], fmt::format("{}[{}]", path, i)));
  return out;
}

std::map<std::string, std::string> Walker::strMap(const YAML::Node& n, const std::string& path) const {
  if (!n.IsMap()) fail(n, path, fmt::format("expected a mapping of strings, got {}", typeName(n)));
  std::map<std::string, std::string> out;
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.Scalar();
    out[key] = str(it->second, join(path, key));
  }
  return out;
}

std::vector<std::string> Walker::command(const YAML::Node& n, const std::string& path) const {
  std::vector<std::string> cmd = n.IsScalar() ? std::vector<std::string>{str(n, path)} : strList(n, path);
  if (cmd.empty() || cmd[0].empty()) fail(n, path, "expected a non-empty command");
  return cmd;
}

std::string Walker::name(const YAML::Node& n, const std::string& path) const {
  std::string v = str(n, path);
  if (!isValidName(v))
    fail(n, path,
         fmt::format("expected a DNS-1123 name (lowercase letters, digits and '-', starting and "
                     "ending with a letter or digit, at most 63 characters), got \"{}\"", v));
  return v;
}

std::vector<std::pair<std::string, std::string>> parseEnv(const Walker& w, const YAML::Node& n, const std::string& path,
                                                          std::vector<std::string>* warnings) {
  static const std::regex kEnvName("[A-Za-z_][A-Za-z0-9_]*");
  std::vector<std::pair<std::string, std::string>> out;
  auto check = [&](const YAML::Node& at, const std::string& p, const std::string& name) {
    if (!std::regex_match(name, kEnvName))
      w.fail(at, p, fmt::format("expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got \"{}\"", name));
  };
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      check(it->first, Walker::join(path, key), key);
      out.emplace_back(key, w.str(it->second, Walker::join(path, key)));
    }
    return out;
  }
  if (!n.IsSequence())
    w.fail(n, path, fmt::format("expected a list of {{name, value}} or a mapping, got {}", typeName(n)));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string p = fmt::format("{}[{}]", path, i);
    if (warnings) w.expectMap(n[i], p, {"name", "value", "valueFrom"});
    else w.expectMap(n[i], p, {"name", "value"});
    if (!n[i]["name"]) w.fail(n[i], p + ".name", "missing required field 'name'");
    std::string name = w.str(n[i]["name"], p + ".name");
    check(n[i]["name"], p + ".name", name);
    if (n[i]["valueFrom"]) {
      warnings->push_back(w.locate(n[i]["valueFrom"], p + ".valueFrom",
                                   fmt::format("not available on the local backend (secrets, config maps and "
                                               "field refs need a cluster); {} is left unset", name)));
      continue;
    }
    out.emplace_back(name, n[i]["value"] ? w.str(n[i]["value"], p + ".value") : "");
  }
  return out;
}

int64_t parseCpuField(const Walker& w, const YAML::Node& c, const std::string& path) {
  auto v = c.IsScalar() ? parseCpuMillis(c.Scalar()) : std::nullopt;
  if (!v || *v == 0)
    w.fail(c, path, fmt::format("expected a positive CPU quantity like 2, 0.5 or 500m, got \"{}\"",
                                c.IsScalar() ? c.Scalar() : typeName(c)));
  return *v;
}

int64_t parseMemoryField(const Walker& w, const YAML::Node& m, const std::string& path) {
  auto v = m.IsScalar() ? parseMemoryBytes(m.Scalar()) : std::nullopt;
  if (!v)
    w.fail(m, path, fmt::format("expected a memory quantity like 512Mi, 2Gi or 1G, got \"{}\"",
                                m.IsScalar() ? m.Scalar() : typeName(m)));
  return *v;
}

Resources parseResources(const Walker& w, const YAML::Node& n, const std::string& path) {
  Resources r;
  w.expectMap(n, path, schema::keysAt("TrainJob", "resources"));
  if (auto c = n["cpu"]) r.cpu_millis = parseCpuField(w, c, path + ".cpu");
  if (auto m = n["memory"]) r.memory_bytes = parseMemoryField(w, m, path + ".memory");
  if (auto g = n["gpu"]) {
    double v = w.number(g, path + ".gpu", 0, 64);
    if (v == static_cast<int>(v)) r.gpu = static_cast<int>(v);
    else if (v < 1 && v >= 0.001) r.gpu_share = static_cast<int>(v * 1000 + 0.5);
    else w.fail(g, path + ".gpu", fmt::format("expected a whole number of GPUs or a share of one below 1 (0.25), got {}", g.Scalar()));
  }
  return r;
}

RestartPolicy parseRestartPolicy(const Walker& w, const YAML::Node& n, const std::string& path) {
  std::string p = w.str(n, path);
  if (p == "Never") return RestartPolicy::Never;
  if (p == "OnFailure") return RestartPolicy::OnFailure;
  if (p == "ExitCode") return RestartPolicy::ExitCode;
  w.fail(n, path, fmt::format("expected one of Never, OnFailure, ExitCode, got \"{}\"", p));
}

std::string resolveDir(const std::string& base, const std::string& dir) {
  std::filesystem::path p = base.empty() ? std::filesystem::current_path() : std::filesystem::path(base);
  if (!dir.empty()) p = p / dir;
  return std::filesystem::weakly_canonical(std::filesystem::absolute(p)).string();
}

}  // namespace trainyard::spec
