#include "cli/output.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

namespace trainyard::cli {

OutputFormat parseOutputFormat(const std::string& s) {
  if (s == "table" || s == "wide" || s.empty()) return OutputFormat::Table;
  if (s == "json") return OutputFormat::Json;
  if (s == "yaml") return OutputFormat::Yaml;
  throw std::invalid_argument(fmt::format("--output: expected table, json or yaml, got \"{}\"", s));
}

void printTable(std::ostream& out, const std::vector<std::string>& headers,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(headers.size());
  for (size_t c = 0; c < headers.size(); ++c) width[c] = headers[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cells.size(); ++c) {
      s += cells[c];
      if (c + 1 < cells.size()) s += std::string(width[c] - cells[c].size() + 3, ' ');
    }
    out << s << '\n';
  };
  line(headers);
  for (const auto& r : rows) line(r);
}

void printJson(std::ostream& out, const nlohmann::json& j) { out << j.dump(2) << '\n'; }

namespace {
void emitYaml(YAML::Emitter& e, const nlohmann::json& j) {
  if (j.is_object()) {
    e << YAML::BeginMap;
    for (auto& [k, v] : j.items()) {
      e << YAML::Key << k << YAML::Value;
      emitYaml(e, v);
    }
    e << YAML::EndMap;
  } else if (j.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& v : j) emitYaml(e, v);
    e << YAML::EndSeq;
  } else if (j.is_string()) {
    e << j.get<std::string>();
  } else if (j.is_null()) {
    e << YAML::Null;
  } else {
    e << j.dump();
  }
}
}  // namespace

void printYaml(std::ostream& out, const nlohmann::json& j) {
  YAML::Emitter e;
  emitYaml(e, j);
  out << e.c_str() << '\n';
}

std::string formatTime(double t) {
  if (t <= 0) return "-";
  time_t secs = static_cast<time_t>(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string formatDuration(double s) {
  if (s < 0) s = 0;
  if (s < 60) return fmt::format("{:.1f}s", s);
  long total = std::lround(s);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
}

void printQueues(std::ostream& out, const nlohmann::json& items) {
  auto res = [](const nlohmann::json& usage, const nlohmann::json& quota, const char* key) {
    auto fmt1 = [&](const nlohmann::json& j) {
      if (!j.contains(key)) return std::string("-");
      double v = j[key].get<double>();
      return std::string(key) == "memory" ? fmt::format("{:.1f}Gi", v / 1073741824.0) : formatValue(v);
    };
    return fmt1(usage) + "/" + (quota.contains(key) ? fmt1(quota) : std::string("inf"));
  };
  std::vector<std::vector<std::string>> rows;
  for (const auto& q : items)
    rows.push_back({q["name"].get<std::string>(), q["cohort"].get<std::string>().empty() ? "-" : q["cohort"].get<std::string>(),
                    formatValue(q["weight"].get<double>()), res(q["usage"], q["quota"], "cpu"),
                    res(q["usage"], q["quota"], "memory"), res(q["usage"], q["quota"], "gpu"),
                    q["borrowing"].get<bool>() ? "yes" : "no", std::to_string(q["running"].get<int>()),
                    std::to_string(q["pending"].get<size_t>())});
  printTable(out, {"NAME", "COHORT", "WEIGHT", "CPU", "MEMORY", "GPU", "BORROWING", "RUNNING", "PENDING"}, rows);
}

void printOutputs(std::ostream& out, const nlohmann::json& list) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : list["items"]) {
    double size = e["size"].get<double>();
    std::string human = size >= (1 << 30) ? fmt::format("{:.1f}Gi", size / (1 << 30))
                        : size >= (1 << 20) ? fmt::format("{:.1f}Mi", size / (1 << 20))
                        : size >= 1024 ? fmt::format("{:.1f}Ki", size / 1024)
                                       : fmt::format("{}", static_cast<int64_t>(size));
    rows.push_back({e["path"].get<std::string>(), human, formatTime(e["modified"].get<double>())});
  }
  printTable(out, {"PATH", "SIZE", "MODIFIED"}, rows);
  if (list.value("truncated", false)) out << "(more files than listed)\n";
}

}  // namespace trainyard::cli

namespace trainyard::cli {

void printRunRecord(std::ostream& o, const nlohmann::json& r) {
  if (!r.is_object()) return;
  auto text = [](const nlohmann::json& j, const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  o << "\nReproduce (trainyard rerun):\n";
  for (const auto& g : r.value("git", nlohmann::json::array())) {
    if (text(g, "commit").empty()) {
      o << fmt::format("  Code:         {} ({})\n", text(g, "dir"), text(g, "note"));
      continue;
    }
    o << fmt::format("  Code:         {} at {}{}{}\n", text(g, "dir"), text(g, "commit").substr(0, 12),
                     g.value("dirty", false) ? " + uncommitted changes" : "",
                     text(g, "diff").empty() ? "" : " (outputs: " + text(g, "diff") + ")");
  }
  for (const auto& im : r.value("images", nlohmann::json::array()))
    o << fmt::format("  Image:        {}{}\n", text(im, "image"),
                     text(im, "digest").empty() ? " (" + text(im, "note") + ")" : " @ " + text(im, "digest"));
  if (!text(r, "seed").empty()) o << fmt::format("  Seed:         {}\n", text(r, "seed"));
  std::string versions;
  const nlohmann::json versions_of = r.value("versions", nlohmann::json::object());
  for (const auto& [k, v] : versions_of.items())
    if (v.is_string()) versions += fmt::format("{}{} {}", versions.empty() ? "" : ", ", k, v.get<std::string>());
  if (!versions.empty()) o << fmt::format("  Versions:     {}\n", versions);
  o << fmt::format("  Backend:      {} on {}\n", text(r, "backend"), text(r, "nodes").empty() ? "-" : text(r, "nodes"));
}

}  // namespace trainyard::cli
