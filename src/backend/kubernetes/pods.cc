#include "backend/kubernetes/pods.h"

#include <algorithm>
#include <ctime>
#include <functional>
#include <map>

#include <fmt/format.h>

namespace trainyard::backend::k8s {
using json = nlohmann::json;

namespace {

// A DNS-1123 label (Service names must be one): lowercase alphanumerics and
// '-', at most 63 characters; longer names keep a hash of the whole.
std::string dnsLabel(const std::string& raw) {
  std::string s;
  for (char c : raw) {
    unsigned char u = static_cast<unsigned char>(c);
    s += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '-';
  }
  while (!s.empty() && s.front() == '-') s.erase(s.begin());
  while (!s.empty() && s.back() == '-') s.pop_back();
  if (s.empty()) s = "job";
  if (s.size() > 63) {
    s = s.substr(0, 54) + fmt::format("-{:08x}", static_cast<uint32_t>(std::hash<std::string>{}(raw)));
  }
  return s;
}

std::string quantityCpu(int64_t millis) { return millis % 1000 == 0 ? std::to_string(millis / 1000) : fmt::format("{}m", millis); }

double parseTime(const json& t) {
  if (!t.is_string()) return 0;
  std::tm tm{};
  const std::string s = t.get<std::string>();
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<double>(timegm(&tm));
}

// The replica that is rank 0 and decides the job (as spec::primaryReplica):
// master, chief or launcher, else worker-0.
std::string primaryReplica(const PlacedJob& job) {
  for (const char* role : {"master", "chief", "launcher"})
    for (const auto& r : job.replicas)
      if (r.role == role) return r.name;
  return "worker-0";
}

json labelsFor(const PlacedJob& job, const ReplicaLaunch& r) {
  json l = {{kManagedBy, "trainyard"},
            {"trainyard.dev/job-name", dnsLabel(job.name)},
            {kJobUid, job.uid},
            {"trainyard.dev/replica-type", dnsLabel(r.role)},
            {"trainyard.dev/replica-index", std::to_string(r.index)},
            {kReplicaName, dnsLabel(r.name)},
            {kAttempt, std::to_string(job.attempt)}};
  const bool master = r.name == primaryReplica(job);
  if (master) l["trainyard.dev/job-role"] = "master";
  // Kubeflow's training operator labels its pods so; tools written for it
  // (dashboards, `kubectl get pods -l training.kubeflow.org/job-name=...`)
  // find the pods of Kubeflow YAML run here.
  static const std::map<std::string, std::string> kKubeflowOperators = {
      {"PyTorchJob", "pytorchjob-controller"}, {"TFJob", "tfjob-controller"}, {"MPIJob", "mpijob-controller"}};
  if (auto op = kKubeflowOperators.find(job.kind); op != kKubeflowOperators.end()) {
    l["training.kubeflow.org/operator-name"] = op->second;
    l["training.kubeflow.org/job-name"] = dnsLabel(job.name);
    l["training.kubeflow.org/replica-type"] = dnsLabel(r.role);
    l["training.kubeflow.org/replica-index"] = std::to_string(r.index);
    if (master) l["training.kubeflow.org/job-role"] = "master";
  }
  return l;
}

}  // namespace

json ownerReferencesFor(const PlacedJob& job, const std::string& ns) {
  auto label = [&](const char* key) {
    auto it = job.labels.find(key);
    return it == job.labels.end() ? std::string() : it->second;
  };
  std::string kind = label(kOwnerKindLabel), name = label(kOwnerNameLabel), uid = label(kOwnerUidLabel);
  if (label(kOwnerNamespaceLabel) != ns || kind.empty() || name.empty() || uid.empty()) return json::array();
  // "Kind.version.group" back to a kind and an apiVersion.
  auto dot = kind.find('.');
  auto dot2 = dot == std::string::npos ? std::string::npos : kind.find('.', dot + 1);
  if (dot2 == std::string::npos) return json::array();
  std::string group = kind.substr(dot2 + 1), version = kind.substr(dot + 1, dot2 - dot - 1);
  // blockOwnerDeletion false: the finalizer, not the garbage collector,
  // holds a deleted resource until its job has stopped.
  return json::array({{{"apiVersion", group == "core" ? version : group + "/" + version},
                       {"kind", kind.substr(0, dot)},
                       {"name", name},
                       {"uid", uid},
                       {"controller", true},
                       {"blockOwnerDeletion", false}}});
}

std::string serviceName(const PlacedJob& job, const ReplicaLaunch& r) { return dnsLabel(job.name + "-" + r.name); }
std::string podName(const PlacedJob& job, const ReplicaLaunch& r) {
  return dnsLabel(fmt::format("{}-{}-{}", job.name, r.name, job.attempt));
}
std::string configMapName(const PlacedJob& job) { return dnsLabel(fmt::format("{}-config-{}", job.name, job.attempt)); }


json podFor(const PlacedJob& job, const ReplicaLaunch& r, size_t index, const KubernetesOptions& o) {
  if (r.image.empty())
    throw BackendError(fmt::format("replica {}: the kubernetes backend runs containers, and this replica has no image "
                                   "(set spec.image, or the role's image)",
                                   r.name),
                       false);
  json env = json::array();
  // First, so that $(TRAINYARD_CONFIG_DIR) in later values expands (the
  // kubelet expands references to variables defined before).
  if (!job.files.empty()) env.push_back({{"name", "TRAINYARD_CONFIG_DIR"}, {"value", kConfigDir}});
  env.push_back({{"name", "TRAINYARD_ATTEMPT"}, {"value", std::to_string(job.attempt)}});
  for (const auto& [k, v] : r.env) env.push_back({{"name", k}, {"value", v}});
  json resources = json::object();
  json requests = json::object(), limits = json::object();
  if (r.resources.cpu_millis > 0) requests["cpu"] = quantityCpu(r.resources.cpu_millis);
  if (r.resources.memory_bytes > 0) requests["memory"] = limits["memory"] = std::to_string(r.resources.memory_bytes);
  if (r.resources.gpu > 0) requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = std::to_string(r.resources.gpu);
  if (!requests.empty()) resources["requests"] = requests;
  if (!limits.empty()) resources["limits"] = limits;
  (void)index;
  // Kubeflow's pod template as written (volumes, tolerations, affinity,
  // securityContext, sidecars...), else a pod of one container.
  json tmpl = json::object();
  if (!r.pod_template.empty()) {
    try {
      tmpl = json::parse(r.pod_template);
    } catch (const json::exception&) {
      tmpl = json::object();
    }
  }
  json spec = tmpl.contains("spec") && tmpl["spec"].is_object() ? tmpl["spec"] : json::object();
  if (!spec.contains("containers") || !spec["containers"].is_array() || spec["containers"].empty())
    spec["containers"] = json::array({json::object()});
  size_t main = static_cast<size_t>(std::max(0, r.main_container));
  if (main >= spec["containers"].size()) main = 0;
  json& container = spec["containers"][main];
  // The main container as Trainyard resolved it: command and args, the
  // environment (wiring included; the template's valueFrom entries kept),
  // resources, working directory.
  json kept_env = json::array();
  if (container.contains("env") && container["env"].is_array())
    for (const auto& e : container["env"])
      if (e.contains("valueFrom")) kept_env.push_back(e);
  for (auto& e : kept_env) env.push_back(e);
  if (!container.contains("name")) container["name"] = "trainyard";
  container["image"] = r.image;
  if (r.image_entrypoint) {  // args alone: the image's entrypoint runs them
    container["args"] = r.argv;
    container.erase("command");
  } else {
    container["command"] = r.argv;
    container.erase("args");
  }
  container["env"] = env;
  container["resources"] = resources;
  if (!container.contains("imagePullPolicy")) container["imagePullPolicy"] = "IfNotPresent";
  if (!r.working_dir.empty()) container["workingDir"] = r.working_dir;
  spec["restartPolicy"] = "Never";  // restarts are the controller's: a new attempt is new pods
  if (o.gang == "default") {
    // Another scheduler places the pods: it must know the job's node
    // labels, and a PodGroup's scheduler its group.
    if (!r.node_selector.empty()) {
      if (!spec.contains("nodeSelector") || !spec["nodeSelector"].is_object()) spec["nodeSelector"] = json::object();
      for (const auto& [k, v] : r.node_selector) spec["nodeSelector"][k] = v;
    }
    if (o.pod_group == "volcano" && !spec.contains("schedulerName")) spec["schedulerName"] = "volcano";
  } else {
    // Trainyard places the gang and binds each pod (pods/binding):
    // kube-scheduler leaves pods of another scheduler alone.
    spec["schedulerName"] = "trainyard";
  }
  if (!spec.contains("enableServiceLinks")) spec["enableServiceLinks"] = false;
  if (o.host_network) spec["hostNetwork"] = true, spec["dnsPolicy"] = "ClusterFirstWithHostNet";
  if (!spec.contains("tolerations") || !spec["tolerations"].is_array()) spec["tolerations"] = json::array();
  for (const char* taint : {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
    spec["tolerations"].push_back(
        {{"key", taint}, {"operator", "Exists"}, {"effect", "NoExecute"}, {"tolerationSeconds", o.eviction_seconds}});
  auto addVolume = [&](json volume, json mount) {
    if (!spec.contains("volumes") || !spec["volumes"].is_array()) spec["volumes"] = json::array();
    json& c = spec["containers"][main];
    if (!c.contains("volumeMounts") || !c["volumeMounts"].is_array()) c["volumeMounts"] = json::array();
    spec["volumes"].push_back(std::move(volume));
    c["volumeMounts"].push_back(std::move(mount));
  };
  // The spec's `volumes:` as hostPath volumes: the node's directories (a
  // shared filesystem on a real cluster, as for Slurm).
  // A pod template's own hostPath mounts are among them, and are there already.
  auto mounted = [&](const std::string& path) {
    const json& c = spec["containers"][main];
    if (c.contains("volumeMounts") && c["volumeMounts"].is_array())
      for (const auto& vm : c["volumeMounts"])
        if (vm.is_object() && vm.value("mountPath", "") == path) return true;
    return false;
  };
  for (size_t i = 0; i < r.mounts.size(); ++i) {
    const Mount& m = r.mounts[i];
    if (mounted(m.mount_path)) continue;
    std::string name = fmt::format("trainyard-volume-{}", i);
    json mount = {{"name", name}, {"mountPath", m.mount_path}};
    if (m.read_only) mount["readOnly"] = true;
    addVolume({{"name", name}, {"hostPath", {{"path", m.host_path}}}}, mount);
  }
  if (!job.files.empty())
    addVolume({{"name", "trainyard-config"}, {"configMap", {{"name", configMapName(job)}}}},
              {{"name", "trainyard-config"}, {"mountPath", kConfigDir}});
  // The template's labels and annotations, with Trainyard's over them.
  json meta = tmpl.contains("metadata") && tmpl["metadata"].is_object() ? tmpl["metadata"] : json::object();
  json labels = meta.contains("labels") && meta["labels"].is_object() ? meta["labels"] : json::object();
  labels.update(labelsFor(job, r));
  json annotations = meta.contains("annotations") && meta["annotations"].is_object() ? meta["annotations"] : json::object();
  annotations["trainyard.dev/replica"] = r.name;  // the replica's own name (labels are DNS-shaped)
  annotations["trainyard.dev/container"] = spec["containers"][main].value("name", "trainyard");
  if (o.pod_group == "volcano") annotations["scheduling.k8s.io/group-name"] = podGroupName(job);
  if (o.pod_group == "coscheduling") labels["scheduling.x-k8s.io/pod-group"] = podGroupName(job);
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", podName(job, r)}, {"labels", labels}, {"annotations", annotations}}},
          {"spec", spec}};
}

std::string podGroupName(const PlacedJob& job) { return dnsLabel(fmt::format("{}-{}", job.name, job.attempt)); }

std::string podGroupPath(const std::string& ns, const std::string& kind) {
  return kind == "volcano" ? fmt::format("/apis/scheduling.volcano.sh/v1beta1/namespaces/{}/podgroups", ns)
                           : fmt::format("/apis/scheduling.x-k8s.io/v1alpha1/namespaces/{}/podgroups", ns);
}

json podGroupFor(const PlacedJob& job, const KubernetesOptions& o) {
  int members = 0;
  for (const auto& r : job.replicas) members += r.run ? 1 : 0;
  json labels = {{kManagedBy, "trainyard"}, {kJobUid, job.uid}, {kAttempt, std::to_string(job.attempt)}};
  return {{"apiVersion", o.pod_group == "volcano" ? "scheduling.volcano.sh/v1beta1" : "scheduling.x-k8s.io/v1alpha1"},
          {"kind", "PodGroup"},
          {"metadata", {{"name", podGroupName(job)}, {"labels", labels}}},
          {"spec", {{"minMember", members}}}};
}

json serviceFor(const PlacedJob& job, const ReplicaLaunch& r) {
  json labels = labelsFor(job, r);
  labels.erase(kAttempt);  // one Service for every attempt of the replica
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", serviceName(job, r)}, {"labels", labels}}},
          {"spec", {{"clusterIP", "None"}, {"selector", {{kJobUid, job.uid}, {kReplicaName, dnsLabel(r.name)}}}}}};
}

json configMapFor(const PlacedJob& job) {
  json data = json::object();
  for (const auto& f : job.files) data[f.name] = f.content;
  json labels = {{kManagedBy, "trainyard"}, {kJobUid, job.uid}, {kAttempt, std::to_string(job.attempt)}};
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", configMapName(job)}, {"labels", labels}}},
          {"data", data}};
}

ReplicaStatus statusOf(const json& pod) {
  ReplicaStatus s;
  const json& meta = pod.value("metadata", json::object());
  const json& labels = meta.value("labels", json::object());
  s.name = meta.value("annotations", json::object()).value("trainyard.dev/replica", labels.value(kReplicaName, ""));
  s.attempt = std::atoi(labels.value(kAttempt, "0").c_str());
  s.handle = meta.value("uid", "");
  s.log_ref = fmt::format("pod:{}/{}", meta.value("namespace", ""), meta.value("name", ""));
  const json& st = pod.value("status", json::object());
  s.started_at = parseTime(st.value("startTime", json()));
  // Evicted from a node that stopped answering (the taint manager marks it
  // DisruptionTarget): no kubelet will ever report its end, so it ends here.
  if (meta.contains("deletionTimestamp") && st.contains("conditions") && st["conditions"].is_array())
    for (const auto& c : st["conditions"])
      if (c.value("type", "") == "DisruptionTarget" && c.value("status", "") == "True") {
        s.phase = ReplicaPhase::Exited;
        s.signal = 9;
        s.reason = c.value("reason", "") == "DeletionByTaintManager" ? "NodeLost" : c.value("reason", "Evicted");
        s.message = c.value("message", "evicted");
        return s;
      }
  std::string phase = st.value("phase", "Pending");
  // The main container's status (a pod may have sidecars).
  std::string main_name = meta.value("annotations", json::object()).value("trainyard.dev/container", "trainyard");
  const json* container = nullptr;
  if (st.contains("containerStatuses") && st["containerStatuses"].is_array())
    for (const auto& c : st["containerStatuses"])
      if (!container || c.value("name", "") == main_name) container = &c;
  const json state = container ? container->value("state", json::object()) : json::object();
  if (phase == "Succeeded" || phase == "Failed" || state.contains("terminated")) {
    s.phase = ReplicaPhase::Exited;
    const json term = state.value("terminated", json::object());
    s.finished_at = parseTime(term.value("finishedAt", json()));
    if (term.contains("exitCode")) s.exit_code = term["exitCode"].get<int>();
    if (term.contains("signal")) s.signal = term["signal"].get<int>(), s.exit_code.reset();
    s.reason = term.value("reason", phase == "Succeeded" ? "Completed" : "Error");
    s.message = term.value("message", "");
    if (st.value("reason", "") == "Evicted") s.reason = "Evicted", s.message = st.value("message", "");
    if (!s.exit_code && !s.signal) s.exit_code = phase == "Succeeded" ? 0 : 1;
    return s;
  }
  if (phase == "Running") {
    s.phase = ReplicaPhase::Running;
    return s;
  }
  s.phase = ReplicaPhase::Pending;
  // Why: the container's waiting reason, else the scheduling condition.
  if (state.contains("waiting")) {
    s.reason = state["waiting"].value("reason", "");
    s.message = state["waiting"].value("message", "");
  }
  if (s.reason.empty() && st.contains("conditions") && st["conditions"].is_array())
    for (const auto& c : st["conditions"])
      if (c.value("type", "") == "PodScheduled" && c.value("status", "") == "False")
        s.reason = c.value("reason", "Unschedulable"), s.message = c.value("message", "");
  return s;
}

}  // namespace trainyard::backend::k8s
