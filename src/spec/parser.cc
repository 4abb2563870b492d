#include "spec/parser.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "spec/overrides.h"
#include "spec/quantity.h"

namespace trainyard::spec {

SpecError::SpecError(std::string f, int l, int c, std::string fld, std::string msg)
    : std::runtime_error(
          l > 0 ? fmt::format("{}:{}:{}: {}: {}", f, l, c, fld.empty() ? "(document)" : fld, msg)
                : fmt::format("{}: {}: {}", f, fld.empty() ? "(document)" : fld, msg)),
      file(std::move(f)), line(l), column(c), field(std::move(fld)), message(std::move(msg)) {}

bool isValidName(const std::string& name) {
  static const std::regex kName("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return !name.empty() && name.size() <= 63 && std::regex_match(name, kName);
}

namespace {

const char* typeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "null";
    default: return "nothing";
  }
}

// Walks the YAML tree keeping the field path, so each error can say where.
class Walker {
 public:
  Walker(std::string file, std::vector<std::string> overridden)
      : file_(std::move(file)), overridden_(std::move(overridden)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& path, const std::string& msg) const {
    for (const auto& o : overridden_)
      if (path == o || path.rfind(o + ".", 0) == 0 || path.rfind(o + "[", 0) == 0)
        throw SpecError(file_ + " (--set " + o + ")", 0, 0, path, msg);
    YAML::Mark m = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
    if (m.is_null()) throw SpecError(file_, 0, 0, path, msg);
    throw SpecError(file_, m.line + 1, m.column + 1, path, msg);
  }

  // Map with a closed set of keys: an unknown key is an error at that key.
  void expectMap(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) const {
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

  std::string str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(n, path, fmt::format("expected a string, got {}", typeName(n)));
    return n.Scalar();
  }

  int64_t integer(const YAML::Node& n, const std::string& path, int64_t min, int64_t max) const {
    if (!n.IsScalar()) fail(n, path, fmt::format("expected an integer, got {}", typeName(n)));
    const std::string& s = n.Scalar();
    int64_t v = 0;
    size_t used = 0;
    try {
      v = std::stoll(s, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != s.size()) fail(n, path, fmt::format("expected an integer, got \"{}\"", s));
    if (v < min || v > max) fail(n, path, fmt::format("expected an integer in [{}, {}], got {}", min, max, v));
    return v;
  }

  std::vector<std::string> strList(const YAML::Node& n, const std::string& path) const {
    if (!n.IsSequence()) fail(n, path, fmt::format("expected a list of strings, got {}", typeName(n)));
    std::vector<std::string> out;
    for (size_t i = 0; i < n.size(); ++i) out.push_back(str(n[i], fmt::format("{}[{}]", path, i)));
    return out;
  }

  std::map<std::string, std::string> strMap(const YAML::Node& n, const std::string& path) const {
    if (!n.IsMap()) fail(n, path, fmt::format("expected a mapping of strings, got {}", typeName(n)));
    std::map<std::string, std::string> out;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      out[key] = str(it->second, join(path, key));
    }
    return out;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  std::string file_;
  std::vector<std::string> overridden_;
};

// env: either Kubernetes' list of {name, value} or a plain mapping.
std::vector<std::pair<std::string, std::string>> parseEnv(const Walker& w, const YAML::Node& n,
                                                          const std::string& path) {
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
    w.expectMap(n[i], p, {"name", "value"});
    if (!n[i]["name"]) w.fail(n[i], p + ".name", "missing required field 'name'");
    std::string name = w.str(n[i]["name"], p + ".name");
    check(n[i]["name"], p + ".name", name);
    out.emplace_back(name, n[i]["value"] ? w.str(n[i]["value"], p + ".value") : "");
  }
  return out;
}

Resources parseResources(const Walker& w, const YAML::Node& n, const std::string& path) {
  Resources r;
  w.expectMap(n, path, {"cpu", "memory", "gpu"});
  if (auto c = n["cpu"]) {
    auto v = c.IsScalar() ? parseCpuMillis(c.Scalar()) : std::nullopt;
    if (!v || *v == 0)
      w.fail(c, path + ".cpu",
             fmt::format("expected a positive CPU quantity like 2, 0.5 or 500m, got \"{}\"",
                         c.IsScalar() ? c.Scalar() : typeName(c)));
    r.cpu_millis = *v;
  }
  if (auto m = n["memory"]) {
    auto v = m.IsScalar() ? parseMemoryBytes(m.Scalar()) : std::nullopt;
    if (!v)
      w.fail(m, path + ".memory",
             fmt::format("expected a memory quantity like 512Mi, 2Gi or 1G, got \"{}\"",
                         m.IsScalar() ? m.Scalar() : typeName(m)));
    r.memory_bytes = *v;
  }
  if (auto g = n["gpu"]) r.gpu = static_cast<int>(w.integer(g, path + ".gpu", 0, 64));
  return r;
}

MetricsCollector parseCollector(const Walker& w, const YAML::Node& n, const std::string& path) {
  MetricsCollector mc;
  w.expectMap(n, path, {"kind", "path", "filter"});
  if (auto k = n["kind"]) {
    std::string kind = w.str(k, path + ".kind");
    if (kind == "StdOut") mc.kind = MetricsCollector::Kind::StdOut;
    else if (kind == "File") mc.kind = MetricsCollector::Kind::File;
    else if (kind == "None") mc.kind = MetricsCollector::Kind::None;
    else w.fail(k, path + ".kind", fmt::format("expected one of StdOut, File, None, got \"{}\"", kind));
  }
  if (auto p = n["path"]) mc.path = w.str(p, path + ".path");
  if (mc.kind == MetricsCollector::Kind::File && mc.path.empty())
    w.fail(n, path + ".path", "the File collector needs a path to a JSON-lines file");
  if (auto f = n["filter"]) {
    mc.filter = w.str(f, path + ".filter");
    try {
      std::regex re(mc.filter);
      if (re.mark_count() < 2) w.fail(f, path + ".filter", "expected a regex with two groups: (name) and (value)");
    } catch (const std::regex_error& e) {
      w.fail(f, path + ".filter", fmt::format("expected a valid regular expression: {}", e.what()));
    }
  }
  return mc;
}

TrainJobSpec parseTrainJob(const Walker& w, const YAML::Node& root, const std::string& base_dir) {
  TrainJobSpec job;
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec"});
  job.api_version = w.str(root["apiVersion"], "apiVersion");
  job.kind = "TrainJob";

  YAML::Node meta = root["metadata"];
  if (!meta) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  w.expectMap(meta, "metadata", {"name", "labels", "annotations", "namespace"});
  if (!meta["name"]) w.fail(meta, "metadata.name", "missing required field 'name'");
  job.name = w.str(meta["name"], "metadata.name");
  if (!isValidName(job.name))
    w.fail(meta["name"], "metadata.name",
           fmt::format("expected a DNS-1123 name (lowercase letters, digits and '-', starting and "
                       "ending with a letter or digit, at most 63 characters), got \"{}\"", job.name));
  if (meta["labels"]) job.labels = w.strMap(meta["labels"], "metadata.labels");

  YAML::Node spec = root["spec"];
  if (!spec) w.fail(root, "spec", "missing required field 'spec'");
  w.expectMap(spec, "spec",
              {"command", "args", "env", "workingDir", "image", "framework", "replicas", "resources",
               "restartPolicy", "backoffLimit", "activeDeadlineSeconds", "priority", "queue",
               "metricsCollector", "outputs"});

  ReplicaRole role;
  if (!spec["command"]) w.fail(spec, "spec.command", "missing required field 'command' (the program to run, as a list)");
  if (spec["command"].IsScalar()) role.command = {w.str(spec["command"], "spec.command")};
  else role.command = w.strList(spec["command"], "spec.command");
  if (role.command.empty() || role.command[0].empty())
    w.fail(spec["command"], "spec.command", "expected a non-empty command");
  if (spec["args"]) role.args = w.strList(spec["args"], "spec.args");
  if (spec["env"]) role.env = parseEnv(w, spec["env"], "spec.env");
  std::filesystem::path wd = base_dir.empty() ? std::filesystem::current_path() : std::filesystem::path(base_dir);
  if (spec["workingDir"]) wd = wd / w.str(spec["workingDir"], "spec.workingDir");
  role.working_dir = std::filesystem::weakly_canonical(std::filesystem::absolute(wd)).string();
  if (spec["image"]) role.image = w.str(spec["image"], "spec.image");
  if (spec["resources"]) role.resources = parseResources(w, spec["resources"], "spec.resources");
  if (spec["replicas"]) role.replicas = static_cast<int>(w.integer(spec["replicas"], "spec.replicas", 1, 1024));

  if (spec["framework"]) {
    job.framework = w.str(spec["framework"], "spec.framework");
    static const std::set<std::string> kFrameworks{"none", "pytorch", "tensorflow", "mpi"};
    if (!kFrameworks.count(job.framework))
      w.fail(spec["framework"], "spec.framework",
             fmt::format("expected one of none, pytorch, tensorflow, mpi, got \"{}\"", job.framework));
  }
  if (role.replicas > 1 && job.framework == "none")
    w.fail(spec["replicas"], "spec.replicas",
           "several replicas need a framework (pytorch, tensorflow or mpi) to wire them together");
  job.roles.push_back(std::move(role));

  if (auto rp = spec["restartPolicy"]) {
    std::string p = w.str(rp, "spec.restartPolicy");
    if (p == "Never") job.restart_policy = RestartPolicy::Never;
    else if (p == "OnFailure") job.restart_policy = RestartPolicy::OnFailure;
    else if (p == "ExitCode") job.restart_policy = RestartPolicy::ExitCode;
    else w.fail(rp, "spec.restartPolicy", fmt::format("expected one of Never, OnFailure, ExitCode, got \"{}\"", p));
  }
  if (spec["backoffLimit"])
    job.backoff_limit = static_cast<int>(w.integer(spec["backoffLimit"], "spec.backoffLimit", 0, 1000));
  if (spec["activeDeadlineSeconds"])
    job.active_deadline_seconds =
        w.integer(spec["activeDeadlineSeconds"], "spec.activeDeadlineSeconds", 1, int64_t{1} << 40);
  if (spec["priority"])
    job.priority = static_cast<int>(w.integer(spec["priority"], "spec.priority", -1000000, 1000000));
  if (spec["queue"]) {
    job.queue = w.str(spec["queue"], "spec.queue");
    if (!isValidName(job.queue)) w.fail(spec["queue"], "spec.queue", "expected a DNS-1123 queue name");
  }
  if (spec["metricsCollector"]) job.metrics = parseCollector(w, spec["metricsCollector"], "spec.metricsCollector");
  if (auto out = spec["outputs"]) {
    w.expectMap(out, "spec.outputs", {"dir"});
    if (out["dir"]) {
      std::filesystem::path dir = w.str(out["dir"], "spec.outputs.dir");
      if (dir.is_relative()) dir = std::filesystem::path(job.roles[0].working_dir) / dir;
      job.outputs_dir = std::filesystem::weakly_canonical(dir).string();
    }
  }
  return job;
}

}  // namespace

LoadedSpec loadSpecString(const std::string& text, const std::string& file_name, const std::string& base_dir,
                          const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw SpecError(file_name, e.mark.line + 1, e.mark.column + 1, "", "malformed YAML: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull()) throw SpecError(file_name, 0, 0, "", "the file is empty; expected a TrainJob");
  if (!root.IsMap()) throw SpecError(file_name, root.Mark().line + 1, root.Mark().column + 1, "",
                                     fmt::format("expected a mapping with apiVersion, kind, metadata and spec, got {}", typeName(root)));

  std::vector<std::string> overridden;
  for (const auto& arg : overrides) {
    try {
      Override o = parseOverride(arg);
      applyOverride(root, o);
      overridden.push_back(o.path);
    } catch (const std::invalid_argument& e) {
      throw SpecError(file_name, 0, 0, arg.substr(0, arg.find('=')), e.what());
    }
  }

  Walker w(file_name, overridden);
  if (!root["apiVersion"]) w.fail(root, "apiVersion", "missing required field 'apiVersion' (trainyard.dev/v1)");
  if (!root["kind"]) w.fail(root, "kind", "missing required field 'kind' (TrainJob)");
  std::string api = w.str(root["apiVersion"], "apiVersion");
  std::string kind = w.str(root["kind"], "kind");
  if (api != "trainyard.dev/v1")
    w.fail(root["apiVersion"], "apiVersion", fmt::format("expected trainyard.dev/v1, got \"{}\"", api));
  if (kind != "TrainJob") w.fail(root["kind"], "kind", fmt::format("expected TrainJob, got \"{}\"", kind));

  LoadedSpec out;
  out.kind = kind;
  out.job = parseTrainJob(w, root, base_dir);
  out.job.source_file = file_name;
  return out;
}

LoadedSpec loadSpecFile(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SpecError(path, 0, 0, "", "cannot read the file: " + std::string(std::strerror(errno)));
  std::stringstream buf;
  buf << in.rdbuf();
  auto dir = std::filesystem::absolute(path).parent_path().string();
  return loadSpecString(buf.str(), path, dir, overrides);
}

}  // namespace trainyard::spec
