#include "spec/parser.h"
#include "spec/schema.h"
#include "spec/katib_regex.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "spec/kubeflow.h"
#include "spec/overrides.h"
#include "spec/yaml_walker.h"
#include "tune/early_stopping.h"
#include "tune/sampler.h"

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

// An absolute path that is a directory now (a relative one is checked
// against the working directory when the job starts).
bool isDirectory(const std::string& p) {
  std::error_code ec;
  return !p.empty() && p[0] == '/' && std::filesystem::is_directory(p, ec);
}

MetricsCollector parseCollector(const Walker& w, const YAML::Node& n, const std::string& path) {
  MetricsCollector mc;
  w.expectMap(n, path, schema::keysAt("TrainJob", "metricsCollector"));
  if (auto k = n["kind"]) {
    std::string kind = w.str(k, path + ".kind");
    if (kind == "StdOut") mc.kind = MetricsCollector::Kind::StdOut;
    else if (kind == "File") mc.kind = MetricsCollector::Kind::File;
    else if (kind == "None") mc.kind = MetricsCollector::Kind::None;
    else if (kind == "TensorFlowEvent") mc.kind = MetricsCollector::Kind::TensorFlowEvent;
    else if (kind == "Custom") mc.kind = MetricsCollector::Kind::Custom;
    else w.fail(k, path + ".kind", fmt::format("expected one of StdOut, File, TensorFlowEvent, Custom, None, got \"{}\"", kind));
  }
  if (auto c = n["command"]) mc.command = w.command(c, path + ".command");
  if (mc.kind == MetricsCollector::Kind::Custom && mc.command.empty())
    w.fail(n, path + ".command", "the Custom collector needs a command (its output is parsed)");
  if (auto p = n["path"]) mc.path = w.str(p, path + ".path");
  if (mc.kind == MetricsCollector::Kind::File && mc.path.empty())
    w.fail(n, path + ".path", "the File collector needs a path to a JSON-lines file");
  if (mc.kind == MetricsCollector::Kind::TensorFlowEvent && mc.path.empty())
    w.fail(n, path + ".path", "the TensorFlowEvent collector needs the directory its event files are written to");
  if (mc.kind == MetricsCollector::Kind::File && (mc.path.back() == '/' || isDirectory(mc.path)))
    w.fail(n["path"], path + ".path", fmt::format("{} is a directory; the File collector reads one file", mc.path));
  if (auto f = n["filter"]) {
    mc.filter = literalBraces(w.str(f, path + ".filter"));
    try {
      std::regex re(mc.filter);
      if (re.mark_count() < 2) w.fail(f, path + ".filter", "expected a regex with two groups: (name) and (value)");
    } catch (const std::regex_error& e) {
      w.fail(f, path + ".filter", fmt::format("expected a valid regular expression: {}", e.what()));
    }
  }
  return mc;
}


// `volumes: [{hostPath, mountPath, readOnly}]`; a relative hostPath is
// relative to the spec's file, as workingDir.
std::vector<Volume> parseVolumes(const Walker& w, const YAML::Node& n, const std::string& path,
                                 const std::string& base_dir) {
  if (!n.IsSequence()) w.fail(n, path, fmt::format("expected a list of {{hostPath, mountPath, readOnly}}, got {}", typeName(n)));
  if (n.size() > kMaxVolumes) w.fail(n, path, fmt::format("at most {} volumes per replica", kMaxVolumes));
  std::vector<Volume> out;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string at = fmt::format("{}[{}]", path, i);
    const YAML::Node& v = n[i];
    w.expectMap(v, at, schema::keysAt("TrainJob", "volumes[]"));
    if (!v["hostPath"]) w.fail(v, at + ".hostPath", "missing required field 'hostPath' (a directory of the node)");
    Volume vol;
    vol.host_path = resolveDir(base_dir, w.str(v["hostPath"], at + ".hostPath"));
    vol.mount_path = vol.host_path;
    if (auto m = v["mountPath"]) {
      vol.mount_path = w.str(m, at + ".mountPath");
      if (vol.mount_path.empty() || vol.mount_path[0] != '/')
        w.fail(m, at + ".mountPath", fmt::format("expected an absolute path, got \"{}\"", vol.mount_path));
    }
    if (auto r = v["readOnly"]) vol.read_only = w.boolean(r, at + ".readOnly");
    for (const auto& o : out)
      if (o.mount_path == vol.mount_path) w.fail(v, at + ".mountPath", fmt::format("{} is mounted twice", vol.mount_path));
    out.push_back(std::move(vol));
  }
  return out;
}

// The per-role fields; at spec level they are the defaults of every role.
void parseRoleFields(const Walker& w, const YAML::Node& n, const std::string& path, ReplicaRole& role,
                     const std::string& base_dir) {
  if (n["command"]) role.command = w.command(n["command"], path + ".command");
  if (n["args"]) role.args = w.strList(n["args"], path + ".args");
  if (n["env"]) {
    auto env = parseEnv(w, n["env"], path + ".env");
    for (auto& kv : env) {  // a role's env adds to (and overrides) the spec's
      std::erase_if(role.env, [&](const auto& e) { return e.first == kv.first; });
      role.env.push_back(std::move(kv));
    }
  }
  if (n["workingDir"]) role.working_dir = resolveDir(base_dir, w.str(n["workingDir"], path + ".workingDir"));
  if (n["image"]) role.image = w.str(n["image"], path + ".image");
  if (n["imagePullPolicy"]) role.image_pull_policy = w.str(n["imagePullPolicy"], path + ".imagePullPolicy");
  if (auto v = n["volumes"]) {
    for (auto& vol : parseVolumes(w, v, path + ".volumes", base_dir)) role.volumes.push_back(std::move(vol));
    if (role.volumes.size() > kMaxVolumes)
      w.fail(v, path + ".volumes", fmt::format("at most {} volumes per replica", kMaxVolumes));
  }
  if (n["resources"]) {
    auto r = n["resources"];
    Resources parsed = parseResources(w, r, path + ".resources");
    if (r["cpu"]) role.resources.cpu_millis = parsed.cpu_millis;
    if (r["memory"]) role.resources.memory_bytes = parsed.memory_bytes;
    if (r["gpu"]) role.resources.gpu = parsed.gpu, role.resources.gpu_share = parsed.gpu_share;
  }
}

// `replicas: N` without roles: the usual shape for each framework.
std::vector<ReplicaRole> expandReplicas(const std::string& framework, const ReplicaRole& base, int n) {
  auto make = [&](const char* name, int count) {
    ReplicaRole r = base;
    r.name = name;
    r.replicas = count;
    return r;
  };
  if (framework == "pytorch") {
    std::vector<ReplicaRole> v{make("master", 1)};
    if (n > 1) v.push_back(make("worker", n - 1));
    return v;
  }
  if (framework == "mpi") return {make("launcher", 1), make("worker", n)};
  return {make("worker", n)};
}

void checkRoles(const Walker& w, const YAML::Node& spec, TrainJobSpec& job) {
  auto count = [&](const char* name) {
    const ReplicaRole* r = job.role(name);
    return r ? r->replicas : 0;
  };
  YAML::Node at = spec["roles"] ? spec["roles"] : spec["replicas"] ? spec["replicas"] : spec;
  std::string path = spec["roles"] ? "spec.roles" : "spec.replicas";
  if (job.framework == "none" && job.totalReplicas() > 1)
    w.fail(at, path, "several replicas need a framework (pytorch, tensorflow or mpi) to wire them together");
  for (const char* single : {"master", "chief", "launcher"})
    if (count(single) > 1) w.fail(at, path, fmt::format("a job has at most one {} replica", single));
  if (job.framework == "tensorflow" && count("chief") && count("master"))
    w.fail(at, path, "a TensorFlow job has a chief or a master, not both");
  if (job.framework == "mpi" && count("launcher") != 1) w.fail(at, path, "an MPI job needs exactly one launcher");
  if (job.framework == "mpi" && count("worker") < 1) w.fail(at, path, "an MPI job needs at least one worker");
  if (job.success_policy == "AllWorkers" && !count("worker"))
    w.fail(spec["successPolicy"], "spec.successPolicy", "AllWorkers needs worker replicas");
  for (const auto& r : job.roles)
    if (r.command.empty() && r.image.empty() && job.build.context.empty() && launchesProcesses(job.framework, r.name))
      w.fail(spec, spec["roles"] && spec["roles"][r.name] ? "spec.roles." + r.name + ".command" : "spec.command",
             "missing required field 'command' (the program to run, as a list; or an image whose entrypoint runs)");
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
  job.name = w.name(meta["name"], "metadata.name");
  if (meta["labels"]) job.labels = w.strMap(meta["labels"], "metadata.labels");

  YAML::Node spec = root["spec"];
  if (!spec) w.fail(root, "spec", "missing required field 'spec'");
  w.expectMap(spec, "spec", schema::keysAt("TrainJob", ""));

  if (spec["framework"]) {
    job.framework = w.str(spec["framework"], "spec.framework");
    static const std::set<std::string> kFrameworks{"none", "pytorch", "tensorflow", "mpi"};
    if (!kFrameworks.count(job.framework))
      w.fail(spec["framework"], "spec.framework",
             fmt::format("expected one of none, pytorch, tensorflow, mpi, got \"{}\"", job.framework));
  }

  ReplicaRole base;
  base.working_dir = resolveDir(base_dir, "");
  parseRoleFields(w, spec, "spec", base, base_dir);

  if (spec["roles"] && spec["replicas"])
    w.fail(spec["replicas"], "spec.replicas", "give either replicas (a count) or roles (per-role replicas), not both");
  if (auto roles = spec["roles"]) {
    if (!roles.IsMap()) w.fail(roles, "spec.roles", fmt::format("expected a mapping of role names, got {}", typeName(roles)));
    const auto& allowed = rolesOf(job.framework);
    for (auto it = roles.begin(); it != roles.end(); ++it) {
      std::string name = it->first.Scalar();
      std::string path = "spec.roles." + name;
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        w.fail(it->first, path, fmt::format("'{}' is not a role of framework {} (expected one of: {})", name,
                                            job.framework, list));
      }
      const YAML::Node& rn = it->second;
      w.expectMap(rn, path, schema::keysAt("TrainJob", "roles.*"));
      ReplicaRole role = base;
      role.name = name;
      role.replicas = rn["replicas"] ? static_cast<int>(w.integer(rn["replicas"], path + ".replicas", 1, 1024)) : 1;
      parseRoleFields(w, rn, path, role, base_dir);
      job.roles.push_back(std::move(role));
    }
    // Rank order is the framework's role order, whatever the file's order.
    std::stable_sort(job.roles.begin(), job.roles.end(), [&](const ReplicaRole& a, const ReplicaRole& b) {
      return std::find(allowed.begin(), allowed.end(), a.name) < std::find(allowed.begin(), allowed.end(), b.name);
    });
  } else {
    int n = spec["replicas"] ? static_cast<int>(w.integer(spec["replicas"], "spec.replicas", 1, 1024)) : 1;
    job.roles = expandReplicas(job.framework, base, n);
  }

  if (auto rp = spec["restartPolicy"]) job.restart_policy = parseRestartPolicy(w, rp, "spec.restartPolicy");
  if (spec["backoffLimit"])
    job.backoff_limit = static_cast<int>(w.integer(spec["backoffLimit"], "spec.backoffLimit", 0, 1000));
  if (spec["ttlSecondsAfterFinished"])
    job.ttl_seconds_after_finished =
        w.integer(spec["ttlSecondsAfterFinished"], "spec.ttlSecondsAfterFinished", 0, int64_t{1} << 40);
  if (spec["activeDeadlineSeconds"])
    job.active_deadline_seconds =
        w.integer(spec["activeDeadlineSeconds"], "spec.activeDeadlineSeconds", 1, int64_t{1} << 40);
  if (spec["suspend"]) job.suspend = w.boolean(spec["suspend"], "spec.suspend");
  if (spec["priorityClassName"]) job.priority_class = w.name(spec["priorityClassName"], "spec.priorityClassName");
  if (spec["priority"])
    job.priority = static_cast<int>(w.integer(spec["priority"], "spec.priority", -1000000, 1000000));
  if (spec["queue"]) {
    job.queue = w.str(spec["queue"], "spec.queue");
    if (!isValidName(job.queue)) w.fail(spec["queue"], "spec.queue", "expected a DNS-1123 queue name");
  }
  if (auto p = spec["placement"]) {
    job.placement = w.str(p, "spec.placement");
    if (job.placement != "pack" && job.placement != "spread")
      w.fail(p, "spec.placement", fmt::format("expected pack or spread, got \"{}\"", job.placement));
  }
  if (spec["nodeSelector"]) job.node_selector = w.strMap(spec["nodeSelector"], "spec.nodeSelector");
  if (spec["startTimeoutSeconds"])
    job.start_timeout_seconds = w.integer(spec["startTimeoutSeconds"], "spec.startTimeoutSeconds", 1, int64_t{1} << 40);
  if (auto wt = spec["walltime"]) job.walltime_seconds = parseDuration(w, wt, "spec.walltime");
  if (auto b = spec["build"]) {
    w.expectMap(b, "spec.build", schema::keysAt("TrainJob", "build"));
    if (!b["context"]) w.fail(b, "spec.build.context", "missing required field 'context' (the build context directory)");
    job.build.context = resolveDir(base_dir, w.str(b["context"], "spec.build.context"));
    if (b["containerfile"]) {
      job.build.containerfile = w.str(b["containerfile"], "spec.build.containerfile");
      if (job.build.containerfile.empty() || job.build.containerfile[0] == '/' ||
          job.build.containerfile.find("..") != std::string::npos)
        w.fail(b["containerfile"], "spec.build.containerfile", "expected a path inside the context, without '..'");
    }
  }
  if (auto sl = spec["slurm"]) {
    w.expectMap(sl, "spec.slurm", schema::keysAt("TrainJob", "slurm"));
    // Slurm's own names: letters, digits and - _ . , (a constraint may also use & | [ ] * : !).
    auto word = [&](const char* key, const char* extra) {
      if (!sl[key]) return std::string();
      std::string v = w.str(sl[key], fmt::format("spec.slurm.{}", key));
      for (char c : v)
        if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr("-_.,", c) && !std::strchr(extra, c))
          w.fail(sl[key], fmt::format("spec.slurm.{}", key), fmt::format("unexpected character '{}' in \"{}\"", c, v));
      return v;
    };
    job.slurm.partition = word("partition", "");
    job.slurm.account = word("account", "");
    job.slurm.qos = word("qos", "");
    job.slurm.constraint = word("constraint", "&|[]*:!");
    if (sl["nodes"]) job.slurm.nodes = static_cast<int>(w.integer(sl["nodes"], "spec.slurm.nodes", 1, 100000));
    if (sl["tasksPerNode"])
      job.slurm.tasks_per_node = static_cast<int>(w.integer(sl["tasksPerNode"], "spec.slurm.tasksPerNode", 1, 1024));
  }
  if (auto sp = spec["successPolicy"]) {
    job.success_policy = w.str(sp, "spec.successPolicy");
    if (job.success_policy != "Default" && job.success_policy != "AllWorkers")
      w.fail(sp, "spec.successPolicy", fmt::format("expected Default or AllWorkers, got \"{}\"", job.success_policy));
  }
  if (spec["slotsPerWorker"])
    job.slots_per_worker = static_cast<int>(w.integer(spec["slotsPerWorker"], "spec.slotsPerWorker", 1, 1024));
  if (spec["metricsCollector"]) job.metrics = parseCollector(w, spec["metricsCollector"], "spec.metricsCollector");
  if (auto out = spec["outputs"]) {
    w.expectMap(out, "spec.outputs", schema::keysAt("TrainJob", "outputs"));
    if (out["dir"]) job.outputs_dir = resolveDir(base.working_dir, w.str(out["dir"], "spec.outputs.dir"));
  }
  checkRoles(w, spec, job);
  return job;
}

// Makes the sampler, the early stopper and one trial job from the template,
// so that every mistake shows before the first trial starts.
void validateExperiment(const Walker& w, const YAML::Node& root, const ExperimentSpec& e,
                        std::vector<std::string>& warnings) {
  YAML::Node spec = root["spec"];
  bool katib = e.api_version == "kubeflow.org/v1beta1";
  try {
    tune::makeSampler({e.algorithm, e.algorithm_settings, e.seed, e.objectives.size()}, e.space);
  } catch (const std::invalid_argument& err) {
    YAML::Node at = spec["algorithm"] ? spec["algorithm"] : spec;
    w.fail(at, katib ? "spec.algorithm" : "spec.algorithm", err.what());
  }
  if (!e.early_stopping.empty()) {
    try {
      tune::makeEarlyStopper({e.early_stopping, e.early_stopping_settings});
    } catch (const std::invalid_argument& err) {
      YAML::Node at = spec["earlyStopping"] ? spec["earlyStopping"] : spec;
      w.fail(at, "spec.earlyStopping", err.what());
    }
  }
  std::vector<std::string> template_warnings;
  e.sampleTrial(&template_warnings);
  warnings.insert(warnings.end(), template_warnings.begin(), template_warnings.end());
}

// The first byte that does not start or continue a UTF-8 sequence (or an
// overlong, surrogate or out-of-range one), as an offset; npos when valid.
size_t invalidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return i;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return std::string::npos;
}

// yaml-cpp keeps the first of two equal keys; a spec that says a thing twice
// is refused with both places. Aliased nodes are visited once (by position),
// so an alias bomb costs no more than its text.
void rejectDuplicateKeys(const std::string& file, const YAML::Node& n, const std::string& path,
                         std::set<std::pair<int, int>>& seen, int depth = 0) {
  if (!n.IsMap() && !n.IsSequence()) return;
  if (!seen.insert({n.Mark().line, n.Mark().column}).second) return;
  if (depth > 200) throw SpecError(file, n.Mark().line + 1, n.Mark().column + 1, path, "nested more than 200 levels deep");
  if (n.IsSequence()) {
    for (size_t i = 0; i < n.size(); ++i) rejectDuplicateKeys(file, n[i], fmt::format("{}[{}]", path, i), seen, depth + 1);
    return;
  }
  std::map<std::string, YAML::Mark> keys;
  for (const auto& kv : n) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    std::string child = path.empty() ? key : path + "." + key;
    if (kv.first.IsScalar()) {
      auto [it, fresh] = keys.emplace(key, kv.first.Mark());
      if (!fresh)
        throw SpecError(file, kv.first.Mark().line + 1, kv.first.Mark().column + 1, child,
                        fmt::format("duplicate key \"{}\" (first at line {}, column {})", key, it->second.line + 1, it->second.column + 1));
    }
    rejectDuplicateKeys(file, kv.second, child, seen, depth + 1);
  }
}

// The line (1-based) where a second YAML document starts: a "---" marker at
// the start of a line after content, with content after it; 0 when there
// is one document. Textual on purpose: yaml-cpp's LoadAll loops forever on
// some inputs (a lone ","), and a document marker cannot occur inside a
// scalar at column 0.
int secondDocumentLine(const std::string& text) {
  bool content = false;
  int marker = 0, line = 1;
  for (size_t pos = 0; pos < text.size(); ++line) {
    size_t end = text.find('\n', pos);
    std::string_view l(text.data() + pos, (end == std::string::npos ? text.size() : end) - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    auto markerOf = [&](const char* m) { return l.substr(0, 3) == m && (l.size() == 3 || l[3] == ' ' || l[3] == '\t'); };
    bool start = markerOf("---"), stop = markerOf("...");
    std::string_view rest = start || stop ? l.substr(3) : l;
    size_t first = rest.find_first_not_of(" \t");
    bool has_content = first != std::string_view::npos && rest[first] != '#';
    if (start && content && !marker) marker = line;
    if (has_content) {
      if (marker) return marker;
      content = true;
    }
  }
  return 0;
}

// Line and column (1-based) of a byte offset.
std::pair<int, int> position(const std::string& text, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line, col = 1;
    else ++col;
  }
  return {line, col};
}
}  // namespace

TrainJobSpec parseJobNode(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                          std::vector<std::string>& warnings) {
  if (!root.IsMap()) w.fail(root, "", fmt::format("expected a job manifest (a mapping), got {}", typeName(root)));
  if (!root["apiVersion"]) w.fail(root, "apiVersion", "missing required field 'apiVersion' (trainyard.dev/v1)");
  if (!root["kind"]) w.fail(root, "kind", "missing required field 'kind' (TrainJob)");
  std::string api = w.str(root["apiVersion"], "apiVersion");
  std::string kind = w.str(root["kind"], "kind");
  if (api == "kubeflow.org/v1") return translateKubeflowJob(w, root, base_dir, warnings);
  if (api == "batch/v1") {
    if (kind != "Job") w.fail(root["kind"], "kind", fmt::format("expected Job for batch/v1, got \"{}\"", kind));
    return translateBatchJob(w, root, base_dir, warnings);
  }
  if (api != "trainyard.dev/v1")
    w.fail(root["apiVersion"], "apiVersion",
           fmt::format("expected trainyard.dev/v1 (or kubeflow.org/v1 for PyTorchJob, TFJob, MPIJob; "
                       "kubeflow.org/v1beta1 for a Katib Experiment), got \"{}\"", api));
  if (kind != "TrainJob")
    w.fail(root["kind"], "kind", fmt::format("expected TrainJob, Experiment, Notebook, Queue or Cohort, got \"{}\"", kind));
  return parseTrainJob(w, root, base_dir);
}

namespace {
// scheduling.k8s.io/v1 PriorityClass, as Kubernetes has it.
QueueDef parsePriorityClass(const Walker& w, const YAML::Node& root) {
  QueueDef q;
  q.kind = "PriorityClass";
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "value", "globalDefault", "description", "preemptionPolicy"});
  YAML::Node meta = root["metadata"];
  if (!meta) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  w.expectMap(meta, "metadata", {"name", "labels", "annotations"});
  if (!meta["name"]) w.fail(meta, "metadata.name", "missing required field 'name'");
  q.name = w.name(meta["name"], "metadata.name");
  if (!root["value"]) w.fail(root, "value", "missing required field 'value' (the priority, higher first)");
  q.value = w.integer(root["value"], "value", -1000000000, 1000000000);
  if (auto g = root["globalDefault"]) q.global_default = w.boolean(g, "globalDefault");
  if (auto p = root["preemptionPolicy"]) {
    std::string v = w.str(p, "preemptionPolicy");
    if (v != "PreemptLowerPriority" && v != "Never")
      w.fail(p, "preemptionPolicy", fmt::format("expected PreemptLowerPriority or Never, got \"{}\"", v));
  }
  return q;
}

LoadedSpec loadParsed(const Walker& w, const YAML::Node& root, const std::string& text, const std::string& file_name,
                      const std::string& base_dir, const std::vector<std::string>& overrides, LoadedSpec out,
                      const std::string& api, const std::string& kind);
}  // namespace

LoadedSpec loadSpecString(const std::string& text, const std::string& file_name, const std::string& base_dir,
                          const std::vector<std::string>& overrides) {
  if (text.size() > kMaxSpecBytes)
    throw SpecError(file_name, 0, 0, "", fmt::format("the spec is {} bytes; at most {} bytes (1 MiB) are accepted", text.size(), kMaxSpecBytes));
  if (size_t bad = invalidUtf8(text); bad != std::string::npos) {
    auto [line, col] = position(text, bad);
    throw SpecError(file_name, line, col, "", fmt::format("invalid UTF-8 (byte 0x{:02x}); a spec must be UTF-8 text", static_cast<unsigned char>(text[bad])));
  }
  if (int line = secondDocumentLine(text))
    throw SpecError(file_name, line, 1, "", "the file holds more than one YAML document; expected one spec per file (submit each on its own)");
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw SpecError(file_name, e.mark.line + 1, e.mark.column + 1, "", "malformed YAML: " + e.msg);
  } catch (const YAML::Exception& e) {  // yaml-cpp's own limits (nesting depth)
    throw SpecError(file_name, e.mark.line + 1, e.mark.column + 1, "", "malformed YAML: " + e.msg);
  }
  {
    std::set<std::pair<int, int>> seen;
    rejectDuplicateKeys(file_name, root, "", seen);
  }
  if (!root.IsDefined() || root.IsNull()) throw SpecError(file_name, 0, 0, "", "the file is empty; expected a TrainJob");
  if (!root.IsMap())
    throw SpecError(file_name, root.Mark().line + 1, root.Mark().column + 1, "",
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
  if (!root["kind"]) w.fail(root, "kind", "missing required field 'kind' (TrainJob or Experiment)");
  std::string api = w.str(root["apiVersion"], "apiVersion");
  std::string kind = w.str(root["kind"], "kind");

  LoadedSpec out;
  out.kind = kind;
  // A translator that indexes a node of the wrong shape gets a yaml-cpp
  // exception; the user gets file:line:column, never an internal error.
  try {
    return loadParsed(w, root, text, file_name, base_dir, overrides, std::move(out), api, kind);
  } catch (const YAML::Exception& e) {
    throw SpecError(file_name, e.mark.line + 1, e.mark.column + 1, "", fmt::format("unexpected structure: {}", e.msg));
  }
}

namespace {
QuotaDef parseQuota(const Walker& w, const YAML::Node& n, const std::string& path) {
  QuotaDef q;
  if (!n.IsMap()) w.fail(n, path, fmt::format("expected a mapping of resources (cpu, memory, gpu), got {}", typeName(n)));
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.Scalar();
    if (key != "cpu" && key != "memory" && key != "gpu")
      w.fail(it->first, path + "." + key, fmt::format("unknown resource \"{}\" (expected cpu, memory or gpu)", key));
  }
  auto zero = [](const YAML::Node& v) { return v.IsScalar() && (v.Scalar() == "0" || v.Scalar() == "0.0"); };
  if (auto c = n["cpu"]) q.cpu_millis = zero(c) ? 0 : parseCpuField(w, c, path + ".cpu");
  if (auto m = n["memory"]) q.memory_bytes = zero(m) ? 0 : parseMemoryField(w, m, path + ".memory");
  if (auto g = n["gpu"]) q.gpu_milli = static_cast<int64_t>(w.number(g, path + ".gpu", 0, 1e6) * 1000 + 0.5);
  return q;
}

QueueDef parseQueue(const Walker& w, const YAML::Node& root, const std::string& kind) {
  QueueDef q;
  q.kind = kind;
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec"});
  YAML::Node meta = root["metadata"];
  if (!meta) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  w.expectMap(meta, "metadata", {"name", "labels", "annotations"});
  if (!meta["name"]) w.fail(meta, "metadata.name", "missing required field 'name'");
  q.name = w.name(meta["name"], "metadata.name");
  const YAML::Node spec = root["spec"] ? root["spec"] : YAML::Node(YAML::NodeType::Map);
  if (!spec.IsMap()) w.fail(spec, "spec", fmt::format("expected a mapping, got {}", typeName(spec)));
  auto mark = [&](const YAML::Node& n) { q.parent_line = n.Mark().line + 1, q.parent_column = n.Mark().column + 1; };
  if (kind == "Cohort") {
    w.expectMap(spec, "spec", {"parent"});
    if (auto p = spec["parent"]) q.parent = w.name(p, "spec.parent"), mark(p);
    if (q.parent == q.name) w.fail(spec["parent"], "spec.parent", "a cohort cannot be its own parent");
    return q;
  }
  w.expectMap(spec, "spec", schema::keysAt("Queue", ""));
  if (auto c = spec["cohort"]) q.cohort = w.name(c, "spec.cohort"), mark(c);
  if (auto wt = spec["weight"]) {
    q.weight = w.number(wt, "spec.weight", 0, 1e6);
    if (q.weight <= 0) w.fail(wt, "spec.weight", "expected a weight above 0");
  }
  if (auto n = spec["quota"]) q.quota = parseQuota(w, n, "spec.quota");
  if (auto n = spec["borrowingLimit"]) q.borrowing_limit = parseQuota(w, n, "spec.borrowingLimit");
  if (auto n = spec["lendingLimit"]) q.lending_limit = parseQuota(w, n, "spec.lendingLimit");
  if ((spec["borrowingLimit"] || spec["lendingLimit"]) && q.cohort.empty())
    w.fail(spec["borrowingLimit"] ? spec["borrowingLimit"] : spec["lendingLimit"],
           spec["borrowingLimit"] ? "spec.borrowingLimit" : "spec.lendingLimit",
           "borrowing and lending need a cohort (spec.cohort)");
  if (auto p = spec["preemption"]) {
    w.expectMap(p, "spec.preemption", schema::keysAt("Queue", "preemption"));
    if (auto v = p["withinQueue"]) {
      q.within_queue = w.str(v, "spec.preemption.withinQueue");
      if (q.within_queue != "LowerPriority" && q.within_queue != "Never")
        w.fail(v, "spec.preemption.withinQueue", fmt::format("expected LowerPriority or Never, got \"{}\"", q.within_queue));
    }
    if (auto v = p["reclaimWithinCohort"]) {
      q.reclaim_within_cohort = w.str(v, "spec.preemption.reclaimWithinCohort");
      if (q.reclaim_within_cohort != "Any" && q.reclaim_within_cohort != "Never")
        w.fail(v, "spec.preemption.reclaimWithinCohort", fmt::format("expected Any or Never, got \"{}\"", q.reclaim_within_cohort));
    }
  }
  if (auto u = spec["users"]) q.users = w.strList(u, "spec.users");
  if (auto uw = spec["userWeights"]) {
    if (!uw.IsMap()) w.fail(uw, "spec.userWeights", "expected a map of user name to weight");
    for (const auto& kv : uw) {
      std::string user = w.str(kv.first, "spec.userWeights");
      std::string path = "spec.userWeights." + user;
      double weight = w.number(kv.second, path, 0, 1e6);
      if (weight <= 0) w.fail(kv.second, path, "expected a weight above 0");
      q.user_weights[user] = weight;
    }
  }
  return q;
}

LoadedSpec loadParsed(const Walker& w, const YAML::Node& root, const std::string& text, const std::string& file_name,
                      const std::string& base_dir, const std::vector<std::string>& overrides, LoadedSpec out,
                      const std::string& api, const std::string& kind) {
  if ((kind == "Queue" || kind == "Cohort") && api == "trainyard.dev/v1") {
    out.queue = parseQueue(w, root, kind);
    out.queue->source_file = file_name;
    return out;
  }
  if (kind == "Notebook" && api == "trainyard.dev/v1") {
    out.notebook = parseNotebook(w, root, base_dir, out.warnings);
    out.notebook->source_file = file_name;
    return out;
  }
  if (kind == "PriorityClass" && api == "scheduling.k8s.io/v1") {
    out.queue = parsePriorityClass(w, root);
    out.queue->source_file = file_name;
    return out;
  }
  if (kind == "Experiment" && (api == "trainyard.dev/v1" || api == "kubeflow.org/v1beta1")) {
    ExperimentSpec e = api == "trainyard.dev/v1"
                           ? parseExperiment(w, root, text, out.warnings)
                           : translateKatibExperiment(w, root, text, out.warnings);
    e.source_file = file_name;
    e.base_dir = base_dir;
    e.overrides = overrides;
    validateExperiment(w, root, e, out.warnings);
    out.experiment = std::move(e);
    return out;
  }
  out.job = parseJobNode(w, root, base_dir, out.warnings);
  out.job.source_file = file_name;
  return out;
}
}  // namespace

LoadedSpec loadSpecFile(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SpecError(path, 0, 0, "", "cannot read the file: " + std::string(std::strerror(errno)));
  std::error_code ec;
  if (auto size = std::filesystem::file_size(path, ec); !ec && size > kMaxSpecBytes)
    throw SpecError(path, 0, 0, "", fmt::format("the spec is {} bytes; at most {} bytes (1 MiB) are accepted", size, kMaxSpecBytes));
  std::stringstream buf;
  buf << in.rdbuf();
  auto dir = std::filesystem::absolute(path).parent_path().string();
  return loadSpecString(buf.str(), path, dir, overrides);
}

}  // namespace trainyard::spec
