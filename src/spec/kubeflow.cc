#include "spec/kubeflow.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <tuple>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "spec/parser.h"
#include "spec/yaml_walker.h"

namespace trainyard::spec {
namespace {

// YAML as Kubernetes reads it into JSON: a plain (unquoted) scalar that is
// a number, a boolean or null is one; a quoted one is a string.
nlohmann::json yamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& kv : n) j[kv.first.Scalar()] = yamlToJson(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& item : n) j.push_back(yamlToJson(item));
      return j;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
      if (s == "null" || s == "~" || s.empty()) return nullptr;
      char* end = nullptr;
      errno = 0;
      long long i = std::strtoll(s.c_str(), &end, 10);
      if (end && !*end && errno == 0) return i;
      double d = std::strtod(s.c_str(), &end);
      if (end && !*end && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.')) return d;
      return s;
    }
    default:
      return nullptr;
  }
}

struct Flavor {
  const char* kind;
  const char* framework;
  const char* replica_specs;      // the spec field holding the replica specs
  const char* default_container;  // the container Kubeflow treats as the main one
};

const Flavor kFlavors[] = {
    {"PyTorchJob", "pytorch", "pytorchReplicaSpecs", "pytorch"},
    {"TFJob", "tensorflow", "tfReplicaSpecs", "tensorflow"},
    {"MPIJob", "mpi", "mpiReplicaSpecs", "mpi"},
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

class Translator {
 public:
  Translator(const Walker& w, std::vector<std::string>& warnings) : w_(w), warnings_(warnings) {}

  void warn(const YAML::Node& at, const std::string& path, const std::string& msg) {
    warnings_.push_back(w_.locate(at, path, msg));
  }

  // Every key of `n` not in `handled` is reported once as not applying here.
  void warnOthers(const YAML::Node& n, const std::string& path, const std::set<std::string>& handled,
                  const std::string& why) {
    if (!n.IsMap()) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      if (!handled.count(key)) warn(it->first, Walker::join(path, key), why);
    }
  }

  Resources containerResources(const YAML::Node& n, const std::string& path) {
    Resources r;
    w_.expectMap(n, path, {"limits", "requests", "claims"});
    if (n["claims"]) warn(n["claims"], path + ".claims", "resource claims need a cluster; ignored on the local backend");
    YAML::Node limits = n["limits"], requests = n["requests"];
    for (const auto& [node, p] : {std::pair{limits, path + ".limits"}, std::pair{requests, path + ".requests"}}) {
      if (!node) continue;
      if (!node.IsMap()) w_.fail(node, p, fmt::format("expected a mapping of resource names, got {}", typeName(node)));
      for (auto it = node.begin(); it != node.end(); ++it) {
        std::string key = it->first.Scalar();
        if (key != "cpu" && key != "memory" && key != "nvidia.com/gpu")
          warn(it->first, p + "." + key, fmt::format("resource {} is not managed on the local backend", key));
      }
    }
    // Scheduling uses the request (else the limit); memory is enforced at the limit (else the request).
    auto pick = [&](const YAML::Node& first, const std::string& first_path, const YAML::Node& second,
                    const std::string& second_path, const char* key) -> std::pair<YAML::Node, std::string> {
      if (first && first[key]) return {first[key], first_path + "." + key};
      if (second && second[key]) return {second[key], second_path + "." + key};
      return {YAML::Node(YAML::NodeType::Undefined), ""};
    };
    if (auto [c, p] = pick(requests, path + ".requests", limits, path + ".limits", "cpu"); !p.empty())
      r.cpu_millis = parseCpuField(w_, c, p);
    if (auto [m, p] = pick(limits, path + ".limits", requests, path + ".requests", "memory"); !p.empty())
      r.memory_bytes = parseMemoryField(w_, m, p);
    for (const auto& [node, p] : {std::pair{limits, path + ".limits"}, std::pair{requests, path + ".requests"}})
      if (node && node["nvidia.com/gpu"]) {
        r.gpu = static_cast<int>(w_.integer(node["nvidia.com/gpu"], p + ".nvidia.com/gpu", 0, 64));
        break;
      }
    return r;
  }

  ReplicaRole role(const Flavor& f, const std::string& type, const YAML::Node& rs, const std::string& path,
                   const std::string& base_dir, std::optional<RestartPolicy>& policy) {
    ReplicaRole role;
    role.name = lower(type);
    w_.expectMap(rs, path, {"replicas", "template", "restartPolicy"});
    role.replicas = rs["replicas"] ? static_cast<int>(w_.integer(rs["replicas"], path + ".replicas", 1, 1024)) : 1;
    if (auto rp = rs["restartPolicy"]) {
      std::string p = w_.str(rp, path + ".restartPolicy");
      // Kubernetes' Always keeps restarting a container whatever its exit: for
      // a training replica that is OnFailure bounded by backoffLimit.
      if (p == "Always") policy = RestartPolicy::OnFailure;
      else policy = parseRestartPolicy(w_, rp, path + ".restartPolicy");
    }
    bool launched = launchesProcesses(f.framework, role.name);
    YAML::Node tmpl = rs["template"];
    if (!tmpl) {
      if (launched) w_.fail(rs, path + ".template", "missing required field 'template' (a pod template with containers)");
      return role;
    }
    std::string tpath = path + ".template";
    w_.expectMap(tmpl, tpath, {"metadata", "spec"});
    if (tmpl["metadata"]) warnOthers(tmpl["metadata"], tpath + ".metadata", {"name"}, "pod metadata does not apply on the local backend");
    YAML::Node pod = tmpl["spec"];
    if (!pod) w_.fail(tmpl, tpath + ".spec", "missing required field 'spec' (the pod spec)");
    std::string ppath = tpath + ".spec";
    if (!pod.IsMap()) w_.fail(pod, ppath, fmt::format("expected a mapping, got {}", typeName(pod)));
    warnOthers(pod, ppath, {"containers", "restartPolicy", "nodeSelector", "volumes"}, "not applied on the local backend (it needs a cluster)");
    if (pod["nodeSelector"]) {
      // One selector per job: the scheduler places the gang as a whole.
      for (const auto& [k, v] : w_.strMap(pod["nodeSelector"], ppath + ".nodeSelector")) {
        auto [it, fresh] = selector.emplace(k, v);
        if (!fresh && it->second != v)
          warn(pod["nodeSelector"], ppath + ".nodeSelector." + k,
               fmt::format("replica types disagree on nodeSelector {}; the job uses \"{}\"", k, it->second));
      }
    }
    YAML::Node containers = pod["containers"];
    if (!containers) w_.fail(pod, ppath + ".containers", "missing required field 'containers'");
    if (!containers.IsSequence() || containers.size() == 0)
      w_.fail(containers, ppath + ".containers", "expected a non-empty list of containers");
    size_t main = 0;
    for (size_t i = 0; i < containers.size(); ++i) {
      if (!containers[i].IsMap())
        w_.fail(containers[i], fmt::format("{}.containers[{}]", ppath, i), fmt::format("expected a container (a mapping), got {}", typeName(containers[i])));
      if (containers[i]["name"] && containers[i]["name"].IsScalar() && containers[i]["name"].Scalar() == f.default_container) main = i;
    }
    for (size_t i = 0; i < containers.size(); ++i)
      if (i != main)
        warn(containers[i], fmt::format("{}.containers[{}]", ppath, i),
             fmt::format("only the {} container runs on the local backend; this one is not started",
                         containers[main]["name"] ? containers[main]["name"].Scalar() : "first"));
    std::string cpath = fmt::format("{}.containers[{}]", ppath, main);
    const YAML::Node& c = containers[main];
    // The whole template goes to the Kubernetes backend as written.
    role.pod_template = yamlToJson(tmpl).dump();
    role.main_container = static_cast<int>(main);
    if (!c.IsMap()) w_.fail(c, cpath, fmt::format("expected a container mapping, got {}", typeName(c)));
    if (!launched) {
      warn(c, cpath, "MPI workers are slots for the launcher's mpirun on the local backend; their containers are not started");
      if (c["resources"]) role.resources = containerResources(c["resources"], cpath + ".resources");
      return role;
    }
    warnOthers(c, cpath, {"name", "image", "imagePullPolicy", "command", "args", "env", "workingDir", "resources", "volumeMounts"},
               "not applied on the local backend");
    if (c["image"]) role.image = w_.str(c["image"], cpath + ".image");
    if (auto p = c["imagePullPolicy"]) {
      role.image_pull_policy = w_.str(p, cpath + ".imagePullPolicy");
      if (role.image_pull_policy != "IfNotPresent" && role.image_pull_policy != "Never" && role.image_pull_policy != "Always")
        w_.fail(p, cpath + ".imagePullPolicy",
                fmt::format("expected IfNotPresent, Never or Always, got \"{}\"", role.image_pull_policy));
    }
    if (!c["command"] && role.image.empty())
      w_.fail(c, cpath + ".command", "missing required field 'command' (and no image whose entrypoint could run)");
    if (c["command"]) role.command = w_.command(c["command"], cpath + ".command");
    role.volumes = hostPathMounts(pod, c, ppath, cpath);
    if (c["args"]) role.args = w_.strList(c["args"], cpath + ".args");
    if (c["env"]) role.env = parseEnv(w_, c["env"], cpath + ".env", &warnings_);
    role.working_dir = resolveDir(base_dir, c["workingDir"] ? w_.str(c["workingDir"], cpath + ".workingDir") : "");
    if (c["resources"]) role.resources = containerResources(c["resources"], cpath + ".resources");
    return role;
  }

  // The container's volumeMounts of the pod's hostPath volumes, as the
  // local backend mounts them into a Podman container (other kinds of
  // volume need a cluster: warned).
  std::vector<Volume> hostPathMounts(const YAML::Node& pod, const YAML::Node& c, const std::string& ppath,
                                     const std::string& cpath) {
    std::vector<Volume> out;
    const YAML::Node& mounts = c["volumeMounts"];
    if (!mounts) return out;
    if (!mounts.IsSequence()) w_.fail(mounts, cpath + ".volumeMounts", fmt::format("expected a list, got {}", typeName(mounts)));
    if (mounts.size() > kMaxVolumes) w_.fail(mounts, cpath + ".volumeMounts", fmt::format("at most {} volume mounts", kMaxVolumes));
    for (size_t i = 0; i < mounts.size(); ++i) {
      const YAML::Node& m = mounts[i];
      std::string mpath = fmt::format("{}.volumeMounts[{}]", cpath, i);
      w_.expectMap(m, mpath, {"name", "mountPath", "readOnly", "subPath", "mountPropagation", "subPathExpr"});
      std::string name = m["name"] ? w_.str(m["name"], mpath + ".name") : "";
      if (!m["mountPath"]) w_.fail(m, mpath + ".mountPath", "missing required field 'mountPath'");
      std::string at = w_.str(m["mountPath"], mpath + ".mountPath");
      YAML::Node volume;
      bool found = false;
      const YAML::Node& vols = pod["volumes"];
      if (vols && vols.IsSequence())
        for (size_t k = 0; k < vols.size() && !found; ++k)
          if (vols[k].IsMap() && vols[k]["name"] && vols[k]["name"].IsScalar() && vols[k]["name"].Scalar() == name)
            volume = vols[k], found = true;
      if (!found) w_.fail(m, mpath + ".name", fmt::format("no volume \"{}\" in {}.volumes", name, ppath));
      if (!volume["hostPath"] || !volume["hostPath"].IsMap() || !volume["hostPath"]["path"]) {
        warn(m, mpath, fmt::format("volume \"{}\" is not a hostPath volume: not mounted on the local backend", name));
        continue;
      }
      if (m["subPath"]) warn(m["subPath"], mpath + ".subPath", "subPath is not applied on the local backend");
      Volume v;
      v.host_path = w_.str(volume["hostPath"]["path"], fmt::format("{}.volumes[{}].hostPath.path", ppath, name));
      v.mount_path = at;
      v.read_only = m["readOnly"] && w_.boolean(m["readOnly"], mpath + ".readOnly");
      if (v.host_path.empty() || v.host_path[0] != '/' || at.empty() || at[0] != '/')
        w_.fail(m, mpath, "expected absolute paths for the hostPath and the mountPath");
      out.push_back(std::move(v));
    }
    return out;
  }

  // PyTorchJob's elasticPolicy, as far as a launch of a fixed size honours
  // it: the replicas start as written, and torchrun (which reads PET_*)
  // rendezvouses them through the master's (else worker-0's) address, with
  // the min:max range, backend, id, restarts and config the policy gives.
  // Scaling between min and max (HPA metrics) is not done: a warning says so.
  void elastic(const YAML::Node& e, const std::string& path, TrainJobSpec& job) {
    w_.expectMap(e, path, {"minReplicas", "maxReplicas", "rdzvBackend", "rdzvPort", "rdzvHost", "rdzvId", "rdzvConf",
                           "nProcPerNode", "maxRestarts", "metrics"});
    int replicas = job.totalReplicas();
    int lo = e["minReplicas"] ? static_cast<int>(w_.integer(e["minReplicas"], path + ".minReplicas", 1, 10000)) : replicas;
    int hi = e["maxReplicas"] ? static_cast<int>(w_.integer(e["maxReplicas"], path + ".maxReplicas", 1, 10000)) : replicas;
    if (lo > hi) w_.fail(e["minReplicas"], path + ".minReplicas", fmt::format("minReplicas {} is above maxReplicas {}", lo, hi));
    if (replicas < lo || replicas > hi)
      w_.fail(e, path, fmt::format("the job has {} replicas, outside minReplicas..maxReplicas {}..{}", replicas, lo, hi));
    auto& env = job.elastic_env;
    env["PET_NNODES"] = fmt::format("{}:{}", lo, hi);
    std::string backend = e["rdzvBackend"] ? w_.str(e["rdzvBackend"], path + ".rdzvBackend") : "c10d";
    if (backend != "c10d" && backend != "static")
      w_.fail(e["rdzvBackend"], path + ".rdzvBackend", fmt::format("expected c10d or static (etcd needs a cluster), got \"{}\"", backend));
    env["PET_RDZV_BACKEND"] = backend;
    if (e["rdzvId"]) env["PET_RDZV_ID"] = w_.str(e["rdzvId"], path + ".rdzvId");
    if (e["maxRestarts"]) env["PET_MAX_RESTARTS"] = std::to_string(w_.integer(e["maxRestarts"], path + ".maxRestarts", 0, 1000));
    if (e["nProcPerNode"]) {
      auto n = w_.integer(e["nProcPerNode"], path + ".nProcPerNode", 1, 1024);
      env["PET_NPROC_PER_NODE"] = std::to_string(n);
    }
    if (auto c = e["rdzvConf"]) {
      if (!c.IsSequence()) w_.fail(c, path + ".rdzvConf", "expected a list of {key, value}");
      std::string conf;
      for (size_t i = 0; i < c.size(); ++i) {
        std::string at = fmt::format("{}.rdzvConf[{}]", path, i);
        w_.expectMap(c[i], at, {"key", "value"});
        if (!c[i]["key"] || !c[i]["value"]) w_.fail(c[i], at, "each entry needs key and value");
        conf += fmt::format("{}{}={}", conf.empty() ? "" : ",", w_.str(c[i]["key"], at + ".key"), w_.str(c[i]["value"], at + ".value"));
      }
      env["PET_RDZV_CONF"] = conf;
    }
    for (const char* k : {"rdzvHost", "rdzvPort"})
      if (e[k]) warn(e[k], path + "." + k, "the rendezvous is at the master's (else worker-0's) address and port, given by Trainyard");
    if (e["metrics"]) warn(e["metrics"], path + ".metrics", "autoscaling on metrics is not done; the job keeps its replicas");
    if (lo != hi)
      warn(e, path, fmt::format("the job runs with its {} replicas (a launch of fixed size); it is not scaled within {}..{}",
                                replicas, lo, hi));
  }

  // Trainyard's gangs are all or nothing: every replica starts together.
  void checkMinAvailable(const TrainJobSpec& job) {
    if (!min_available_) return;
    const auto& [at, path, min] = *min_available_;
    if (min > job.totalReplicas())
      w_.fail(at, path, fmt::format("minAvailable {} is more than the job's {} replicas", min, job.totalReplicas()));
    if (min < job.totalReplicas())
      warn(at, path, fmt::format("the gang starts all {} replicas together (all or nothing), not {}", job.totalReplicas(), min));
  }

  void runPolicy(const YAML::Node& rp, const std::string& path, TrainJobSpec& job) {
    w_.expectMap(rp, path, {"cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit",
                            "schedulingPolicy", "suspend", "managedBy"});
    if (rp["backoffLimit"]) job.backoff_limit = static_cast<int>(w_.integer(rp["backoffLimit"], path + ".backoffLimit", 0, 1000));
    if (rp["activeDeadlineSeconds"])
      job.active_deadline_seconds = w_.integer(rp["activeDeadlineSeconds"], path + ".activeDeadlineSeconds", 1, int64_t{1} << 40);
    if (auto c = rp["cleanPodPolicy"]) {
      std::string v = w_.str(c, path + ".cleanPodPolicy");
      if (v != "None" && v != "Running" && v != "All")
        w_.fail(c, path + ".cleanPodPolicy", fmt::format("expected None, Running or All, got \"{}\"", v));
      if (v == "None")
        warn(c, path + ".cleanPodPolicy",
             "None keeps pods after the job on a cluster; locally every replica process is stopped when the job ends");
    }
    if (rp["ttlSecondsAfterFinished"])
      job.ttl_seconds_after_finished =
          w_.integer(rp["ttlSecondsAfterFinished"], path + ".ttlSecondsAfterFinished", 0, int64_t{1} << 40);
    if (auto s = rp["schedulingPolicy"]) {
      if (s["priorityClass"]) job.priority_class = w_.name(s["priorityClass"], path + ".schedulingPolicy.priorityClass");
      if (s["queue"]) {
        job.queue = w_.str(s["queue"], path + ".schedulingPolicy.queue");
        if (!isValidName(job.queue)) w_.fail(s["queue"], path + ".schedulingPolicy.queue", "expected a DNS-1123 queue name");
      }
      // How long the gang may take to be scheduled: Trainyard's start timeout
      // (a gang not all started by then is torn down; on a backend whose own
      // scheduler places pods, queued again).
      if (s["scheduleTimeoutSeconds"])
        job.start_timeout_seconds = w_.integer(s["scheduleTimeoutSeconds"], path + ".schedulingPolicy.scheduleTimeoutSeconds",
                                               1, int64_t{1} << 40);
      if (auto m = s["minAvailable"])  // checked once the replicas are known (checkMinAvailable)
        min_available_ = {m, path + ".schedulingPolicy.minAvailable", w_.integer(m, path + ".schedulingPolicy.minAvailable", 1, 100000)};
      warnOthers(s, path + ".schedulingPolicy", {"priorityClass", "queue", "scheduleTimeoutSeconds", "minAvailable"},
                 "gang scheduling is built in");
    }
    if (rp["suspend"]) job.suspend = w_.boolean(rp["suspend"], path + ".suspend");
    if (rp["managedBy"]) warn(rp["managedBy"], path + ".managedBy", "ignored on the local backend");
  }

  std::map<std::string, std::string> selector;  // merged over the replica types
  std::optional<std::tuple<YAML::Node, std::string, int64_t>> min_available_;

 private:
  const Walker& w_;
  std::vector<std::string>& warnings_;
};

}  // namespace

TrainJobSpec translateKubeflowJob(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                                  std::vector<std::string>& warnings) {
  std::string kind = w.str(root["kind"], "kind");
  const Flavor* f = nullptr;
  for (const auto& fl : kFlavors)
    if (kind == fl.kind) f = &fl;
  if (!f) {
    bool known = kind == "XGBoostJob" || kind == "PaddleJob" || kind == "MXJob" || kind == "JAXJob";
    w.fail(root["kind"], "kind",
           known ? fmt::format("{} is not supported: Trainyard runs the training operator's PyTorchJob, TFJob and MPIJob "
                               "(and Katib's Experiment, batch/v1 Job)",
                               kind)
                 : fmt::format("expected PyTorchJob, TFJob or MPIJob for kubeflow.org/v1, got \"{}\"", kind));
  }

  Translator t(w, warnings);
  TrainJobSpec job;
  job.api_version = "kubeflow.org/v1";
  job.kind = kind;
  job.framework = f->framework;
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec", "status"});
  if (root["status"]) t.warn(root["status"], "status", "status is ignored; Trainyard keeps its own");
  YAML::Node meta = root["metadata"];
  if (!meta) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  if (!meta.IsMap()) w.fail(meta, "metadata", fmt::format("expected a mapping, got {}", typeName(meta)));
  if (!meta["name"]) w.fail(meta, "metadata.name", "missing required field 'name'");
  job.name = w.name(meta["name"], "metadata.name");
  if (meta["labels"]) job.labels = w.strMap(meta["labels"], "metadata.labels");
  t.warnOthers(meta, "metadata", {"name", "labels"}, "not used on the local backend");

  YAML::Node spec = root["spec"];
  if (!spec) w.fail(root, "spec", "missing required field 'spec'");
  std::set<std::string> keys{f->replica_specs, "runPolicy"};
  if (kind == "PyTorchJob") keys.insert({"elasticPolicy", "nprocPerNode"});
  if (kind == "TFJob") keys.insert({"successPolicy", "enableDynamicWorker"});
  if (kind == "MPIJob") keys.insert({"slotsPerWorker", "cleanPodPolicy", "mainContainer", "sshAuthMountPath", "mpiImplementation", "launcherCreationPolicy"});
  w.expectMap(spec, "spec", keys);

  if (spec["runPolicy"]) t.runPolicy(spec["runPolicy"], "spec.runPolicy", job);

  if (auto n = spec["nprocPerNode"]) {
    std::string v = w.str(n, "spec.nprocPerNode");
    if (v != "1" && v != "auto" && v != "cpu")
      w.fail(n, "spec.nprocPerNode", fmt::format("only one process per replica is supported locally, got \"{}\"", v));
  }
  if (auto sp = spec["successPolicy"]) {
    std::string v = w.str(sp, "spec.successPolicy");
    if (v == "AllWorkers") job.success_policy = "AllWorkers";
    else if (!v.empty() && v != "Default") w.fail(sp, "spec.successPolicy", fmt::format("expected \"\" or AllWorkers, got \"{}\"", v));
  }
  if (spec["enableDynamicWorker"]) t.warn(spec["enableDynamicWorker"], "spec.enableDynamicWorker", "not supported on the local backend");
  if (spec["slotsPerWorker"]) job.slots_per_worker = static_cast<int>(w.integer(spec["slotsPerWorker"], "spec.slotsPerWorker", 1, 1024));
  for (const char* k : {"mainContainer", "sshAuthMountPath", "launcherCreationPolicy"})
    if (spec[k]) t.warn(spec[k], std::string("spec.") + k, "not used on the local backend (mpirun runs the ranks on this machine)");
  if (auto impl = spec["mpiImplementation"]) {
    std::string v = w.str(impl, "spec.mpiImplementation");
    if (v != "OpenMPI") w.fail(impl, "spec.mpiImplementation", fmt::format("only OpenMPI (Debian's) is available locally, got \"{}\"", v));
  }
  if (auto c = spec["cleanPodPolicy"]) {  // MPIJob v1 kept it at spec level
    YAML::Node rp;
    rp["cleanPodPolicy"] = c;
    t.runPolicy(rp, "spec", job);
  }

  YAML::Node specs = spec[f->replica_specs];
  std::string spath = std::string("spec.") + f->replica_specs;
  if (!specs) w.fail(spec, spath, fmt::format("missing required field '{}'", f->replica_specs));
  if (!specs.IsMap()) w.fail(specs, spath, fmt::format("expected a mapping of replica types, got {}", typeName(specs)));
  const auto& allowed = rolesOf(f->framework);
  std::optional<RestartPolicy> primary_policy, other_policy;
  for (auto it = specs.begin(); it != specs.end(); ++it) {
    std::string type = it->first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), lower(type)) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      w.fail(it->first, spath + "." + type, fmt::format("unknown replica type '{}' for {} (expected one of: {})", type, kind, list));
    }
    std::optional<RestartPolicy> policy;
    job.roles.push_back(t.role(*f, type, it->second, spath + "." + type, base_dir, policy));
    bool primary = lower(type) == "master" || lower(type) == "chief" || lower(type) == "launcher";
    auto& slot = primary ? primary_policy : other_policy;
    if (policy) {
      if (slot && *slot != *policy)
        t.warn(it->second["restartPolicy"], spath + "." + type + ".restartPolicy",
               "replica types disagree on restartPolicy; the job uses the master's/chief's (else the first)");
      if (!slot) slot = policy;
    }
  }
  std::stable_sort(job.roles.begin(), job.roles.end(), [&](const ReplicaRole& a, const ReplicaRole& b) {
    return std::find(allowed.begin(), allowed.end(), a.name) < std::find(allowed.begin(), allowed.end(), b.name);
  });
  job.restart_policy = primary_policy.value_or(other_policy.value_or(RestartPolicy::Never));
  job.node_selector = t.selector;
  if (f->framework == std::string("mpi")) {
    if (!job.role("launcher")) w.fail(specs, spath + ".Launcher", "an MPIJob needs a Launcher");
    if (!job.role("worker")) w.fail(specs, spath + ".Worker", "an MPIJob needs Workers");
  }
  if (f->framework == std::string("pytorch") && !job.role("master") && !job.role("worker"))
    w.fail(specs, spath, "a PyTorchJob needs a Master or Workers");
  t.checkMinAvailable(job);
  if (auto e = spec["elasticPolicy"]) t.elastic(e, "spec.elasticPolicy", job);
  return job;
}

TrainJobSpec translateBatchJob(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                               std::vector<std::string>& warnings) {
  static const Flavor kJob{"Job", "none", "template", ""};
  Translator t(w, warnings);
  TrainJobSpec job;
  job.api_version = "batch/v1";
  job.kind = "Job";
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec"});
  YAML::Node meta = root["metadata"];
  if (!meta || !meta["name"]) w.fail(root, "metadata.name", "missing required field 'name'");
  job.name = w.name(meta["name"], "metadata.name");
  t.warnOthers(meta, "metadata", {"name", "labels"}, "not used on the local backend");
  YAML::Node spec = root["spec"];
  if (!spec) w.fail(root, "spec", "missing required field 'spec'");
  w.expectMap(spec, "spec", {"template", "backoffLimit", "activeDeadlineSeconds", "completions", "parallelism",
                             "ttlSecondsAfterFinished", "suspend", "backoffLimitPerIndex", "podFailurePolicy",
                             "completionMode", "manualSelector", "selector", "maxFailedIndexes", "podReplacementPolicy"});
  t.warnOthers(spec, "spec", {"template", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "suspend"},
               "not applied on the local backend");
  if (spec["suspend"]) job.suspend = w.boolean(spec["suspend"], "spec.suspend");
  if (spec["ttlSecondsAfterFinished"])
    job.ttl_seconds_after_finished = w.integer(spec["ttlSecondsAfterFinished"], "spec.ttlSecondsAfterFinished", 0, int64_t{1} << 40);
  job.restart_policy = RestartPolicy::OnFailure;
  job.backoff_limit = spec["backoffLimit"] ? static_cast<int>(w.integer(spec["backoffLimit"], "spec.backoffLimit", 0, 1000)) : 6;
  if (spec["activeDeadlineSeconds"])
    job.active_deadline_seconds = w.integer(spec["activeDeadlineSeconds"], "spec.activeDeadlineSeconds", 1, int64_t{1} << 40);
  if (!spec["template"]) w.fail(spec, "spec.template", "missing required field 'template'");
  YAML::Node pod = spec["template"]["spec"];
  if (pod && pod["restartPolicy"] && w.str(pod["restartPolicy"], "spec.template.spec.restartPolicy") == "OnFailure") {
    // Restarting the container in place: still a retry, bounded by backoffLimit.
    job.restart_policy = RestartPolicy::OnFailure;
  }
  YAML::Node rs(YAML::NodeType::Map);
  rs["template"] = spec["template"];
  std::optional<RestartPolicy> policy;
  ReplicaRole role = t.role(kJob, "worker", rs, "spec", base_dir, policy);
  role.name = "worker";
  role.replicas = 1;
  job.roles.push_back(role);
  job.node_selector = t.selector;
  return job;
}

}  // namespace trainyard::spec
