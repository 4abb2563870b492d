#include "spec/trainjob.h"

#include <filesystem>

#include <nlohmann/json.hpp>

namespace trainyard::spec {

const char* toString(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::Never: return "Never";
    case RestartPolicy::OnFailure: return "OnFailure";
    case RestartPolicy::ExitCode: return "ExitCode";
  }
  return "Never";
}

Resources TrainJobSpec::totalRequest() const {
  Resources total{0, 0, 0};
  for (const auto& r : roles) {
    total.cpu_millis += r.resources.cpu_millis * r.replicas;
    total.memory_bytes += r.resources.memory_bytes * r.replicas;
    total.gpu += r.resources.gpu * r.replicas;
    total.gpu_share += r.resources.gpu_share * r.replicas;
  }
  return total;
}

int TrainJobSpec::totalReplicas() const {
  int n = 0;
  for (const auto& r : roles) n += r.replicas;
  return n;
}

std::string TrainJobSpec::primaryReplica() const {
  for (const char* r : {"master", "chief", "launcher"})
    if (role(r)) return std::string(r) + "-0";
  return roles.empty() ? "worker-0" : roles.front().name + "-0";
}

const ReplicaRole* TrainJobSpec::role(const std::string& name) const {
  for (const auto& r : roles)
    if (r.name == name) return &r;
  return nullptr;
}

const std::vector<std::string>& rolesOf(const std::string& framework) {
  static const std::vector<std::string> kNone{"worker"};
  static const std::vector<std::string> kPyTorch{"master", "worker"};
  static const std::vector<std::string> kTensorFlow{"chief", "master", "ps", "worker", "evaluator"};
  static const std::vector<std::string> kMpi{"launcher", "worker"};
  if (framework == "pytorch") return kPyTorch;
  if (framework == "tensorflow") return kTensorFlow;
  if (framework == "mpi") return kMpi;
  return kNone;
}

bool launchesProcesses(const std::string& framework, const std::string& role) {
  return !(framework == "mpi" && role == "worker");
}

NLOHMANN_JSON_SERIALIZE_ENUM(RestartPolicy, {{RestartPolicy::Never, "Never"},
                                             {RestartPolicy::OnFailure, "OnFailure"},
                                             {RestartPolicy::ExitCode, "ExitCode"}})
NLOHMANN_JSON_SERIALIZE_ENUM(MetricsCollector::Kind, {{MetricsCollector::Kind::StdOut, "StdOut"},
                                                      {MetricsCollector::Kind::File, "File"},
                                                      {MetricsCollector::Kind::None, "None"},
                                                      {MetricsCollector::Kind::TensorFlowEvent, "TensorFlowEvent"},
                                                      {MetricsCollector::Kind::Custom, "Custom"}})
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Resources, cpu_millis, memory_bytes, gpu, gpu_share)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MetricsCollector, kind, path, format, filter, names, command)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Volume, host_path, mount_path, read_only)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ReplicaRole, name, replicas, command, args, env,
                                                working_dir, image, image_pull_policy, volumes, resources, pod_template, main_container)

void to_json(nlohmann::json& j, const TrainJobSpec& s) {
  j = nlohmann::json{{"apiVersion", s.api_version}, {"kind", s.kind},
                     {"name", s.name},              {"labels", s.labels},
                     {"framework", s.framework},    {"roles", s.roles},
                     {"restartPolicy", s.restart_policy}, {"backoffLimit", s.backoff_limit},
                     {"priority", s.priority},      {"queue", s.queue},
                     {"metrics", s.metrics},        {"outputsDir", s.outputs_dir},
                     {"successPolicy", s.success_policy}, {"slotsPerWorker", s.slots_per_worker},
                     {"sourceFile", s.source_file}};
  if (s.active_deadline_seconds) j["activeDeadlineSeconds"] = *s.active_deadline_seconds;
  if (s.ttl_seconds_after_finished) j["ttlSecondsAfterFinished"] = *s.ttl_seconds_after_finished;
  if (s.start_timeout_seconds != 600) j["startTimeoutSeconds"] = s.start_timeout_seconds;
  if (s.placement != "pack") j["placement"] = s.placement;
  if (s.suspend) j["suspend"] = true;
  if (!s.priority_class.empty()) j["priorityClassName"] = s.priority_class;
  if (!s.elastic_env.empty()) j["elasticEnv"] = s.elastic_env;
  if (!s.node_selector.empty()) j["nodeSelector"] = s.node_selector;
  if (s.walltime_seconds) j["walltimeSeconds"] = *s.walltime_seconds;
  if (!s.build.context.empty()) j["build"] = {{"context", s.build.context}, {"containerfile", s.build.containerfile}};
  if (!s.slurm.empty())
    j["slurm"] = {{"partition", s.slurm.partition}, {"account", s.slurm.account}, {"qos", s.slurm.qos},
                  {"constraint", s.slurm.constraint}, {"nodes", s.slurm.nodes}, {"tasksPerNode", s.slurm.tasks_per_node}};
}

void from_json(const nlohmann::json& j, TrainJobSpec& s) {
  s.api_version = j.value("apiVersion", s.api_version);
  s.kind = j.value("kind", s.kind);
  s.name = j.at("name").get<std::string>();
  s.labels = j.value("labels", s.labels);
  s.framework = j.value("framework", s.framework);
  s.roles = j.at("roles").get<std::vector<ReplicaRole>>();
  s.restart_policy = j.value("restartPolicy", s.restart_policy);
  s.backoff_limit = j.value("backoffLimit", s.backoff_limit);
  s.priority = j.value("priority", s.priority);
  s.queue = j.value("queue", s.queue);
  s.suspend = j.value("suspend", s.suspend);
  s.priority_class = j.value("priorityClassName", s.priority_class);
  s.elastic_env = j.value("elasticEnv", s.elastic_env);
  s.metrics = j.value("metrics", s.metrics);
  s.outputs_dir = j.value("outputsDir", s.outputs_dir);
  s.success_policy = j.value("successPolicy", s.success_policy);
  s.slots_per_worker = j.value("slotsPerWorker", s.slots_per_worker);
  s.source_file = j.value("sourceFile", s.source_file);
  if (j.contains("ttlSecondsAfterFinished")) s.ttl_seconds_after_finished = j["ttlSecondsAfterFinished"].get<int64_t>();
  if (j.contains("activeDeadlineSeconds"))
    s.active_deadline_seconds = j["activeDeadlineSeconds"].get<int64_t>();
  s.start_timeout_seconds = j.value("startTimeoutSeconds", s.start_timeout_seconds);
  s.placement = j.value("placement", s.placement);
  s.node_selector = j.value("nodeSelector", s.node_selector);
  if (j.contains("walltimeSeconds")) s.walltime_seconds = j["walltimeSeconds"].get<int64_t>();
  if (j.contains("build") && j["build"].is_object()) {
    s.build.context = j["build"].value("context", "");
    s.build.containerfile = j["build"].value("containerfile", "");
  }
  if (j.contains("slurm")) {
    const auto& sl = j["slurm"];
    s.slurm.partition = sl.value("partition", "");
    s.slurm.account = sl.value("account", "");
    s.slurm.qos = sl.value("qos", "");
    s.slurm.constraint = sl.value("constraint", "");
    s.slurm.nodes = sl.value("nodes", 0);
    s.slurm.tasks_per_node = sl.value("tasksPerNode", 0);
  }
}

std::string imageRepository(const std::string& image) {
  std::string repo = image.substr(0, image.find('@'));
  // A colon after the last '/' is a tag's; one before it is a registry's port.
  if (size_t colon = repo.rfind(':'); colon != std::string::npos && repo.find('/', colon) == std::string::npos) repo.resize(colon);
  return repo;
}

bool isInside(const std::string& path, const std::string& root) {
  namespace fs = std::filesystem;
  fs::path rel = fs::absolute(path).lexically_normal().lexically_relative(fs::path(root).lexically_normal());
  return !rel.empty() && *rel.begin() != "..";
}

std::pair<std::string, std::string> pathOutside(const TrainJobSpec& job, const std::string& root) {
  namespace fs = std::filesystem;
  fs::path base = fs::path(root).lexically_normal();
  auto inside = [&](const fs::path& p) { return isInside(p.string(), root); };
  for (const auto& r : job.roles) {
    fs::path wd = r.working_dir.empty() ? base : fs::path(r.working_dir);
    if (!inside(wd)) return {"spec.roles." + r.name + ".workingDir", wd.string()};
    if ((job.metrics.kind == MetricsCollector::Kind::File || job.metrics.kind == MetricsCollector::Kind::TensorFlowEvent) &&
        !job.metrics.path.empty()) {
      fs::path f = fs::path(job.metrics.path).is_absolute() ? fs::path(job.metrics.path) : wd / job.metrics.path;
      if (!inside(f)) return {"spec.metricsCollector.path", f.string()};
    }
  }
  if (!job.outputs_dir.empty() && !inside(job.outputs_dir)) return {"spec.outputs.dir", job.outputs_dir};
  return {};
}

}  // namespace trainyard::spec
