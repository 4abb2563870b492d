#include "spec/schema.h"

#include <map>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace trainyard::spec::schema {
namespace {
using json = nlohmann::json;
using T = Type;

Field f(std::string name, Type t, std::string description, std::vector<Field> fields = {}) {
  return Field{std::move(name), t, std::move(description), std::move(fields), {}};
}
Field oneOf(std::string name, std::vector<std::string> values, std::string description) {
  Field x = f(std::move(name), T::String, std::move(description));
  x.values = std::move(values);
  return x;
}
Field listOf(std::string name, Field item, std::string description) {
  return f(std::move(name), T::List, std::move(description), {std::move(item)});
}
Field mapOf(std::string name, Field value, std::string description) {
  return f(std::move(name), T::Map, std::move(description), {std::move(value)});
}

std::vector<Field> resourceFields() {
  return {f("cpu", T::IntOrString, "cores: 2, 0.5 or \"500m\""),
          f("memory", T::IntOrString, "bytes: 4Gi, 512Mi or a number"),
          f("gpu", T::Any, "devices: 1, or a share such as 0.25 with GPU sharing on")};
}

// The fields a role has, which at spec level are every role's defaults.
std::vector<Field> roleFields() {
  Field volume = f("", T::Object, "", {f("name", T::String, "a name for it (optional)"),
                                       f("hostPath", T::String, "the node's directory (relative: to the spec's file)"),
                                       f("mountPath", T::String, "where the container sees it (default: hostPath)"),
                                       f("readOnly", T::Boolean, "mounted read-only")});
  return {f("command", T::Any, "the program and its arguments: a list, or one string"),
          listOf("args", f("", T::Any, ""), "appended to command"),
          f("env", T::Any, "a list of {name, value} or a mapping"),
          f("workingDir", T::String, "relative to the spec's file"),
          f("image", T::String, "the container image (Kubernetes; locally with Podman)"),
          oneOf("imagePullPolicy", {"IfNotPresent", "Never", "Always"}, "when the image is pulled (default IfNotPresent)"),
          listOf("volumes", volume, "node directories mounted into the container"),
          f("resources", T::Object, "what one replica requests", resourceFields())};
}

Field trainJobSpec() {
  std::vector<Field> spec = roleFields();
  Field role = f("", T::Object, "", roleFields());
  role.fields.insert(role.fields.begin(), f("replicas", T::Integer, "how many replicas of this role"));
  Field collector = f("metricsCollector", T::Object, "where metrics come from",
                      {oneOf("kind", {"StdOut", "File", "TensorFlowEvent", "Custom", "None"},
                             "StdOut (Katib's name=value lines), File, TensorFlowEvent, Custom or None"),
                       f("path", T::String, "File: the file; TensorFlowEvent: the directory (relative to workingDir)"),
                       f("command", T::Any, "Custom: a command run beside the program; its output is parsed"),
                       f("filter", T::String, "StdOut: a regex with two groups, name and value")});
  std::vector<Field> rest = {
      oneOf("framework", {"none", "pytorch", "tensorflow", "mpi"}, "how replicas are wired together"),
      f("replicas", T::Integer, "replicas in the framework's usual roles"),
      mapOf("roles", role, "per-role replicas and fields (master, worker, chief, ps, evaluator, launcher)"),
      oneOf("restartPolicy", {"Never", "OnFailure", "ExitCode"}, "as Kubeflow's"),
      f("backoffLimit", T::Integer, "restarts before the job fails"),
      f("activeDeadlineSeconds", T::Integer, "the job fails after this long"),
      f("ttlSecondsAfterFinished", T::Integer, "deleted this long after it finished (outputs kept)"),
      f("startTimeoutSeconds", T::Integer, "a replica may stay pending this long"),
      f("priority", T::Integer, "higher runs first and may preempt"),
      f("queue", T::String, "the queue it is admitted through"),
      f("suspend", T::Boolean, "stays queued until `trainyard resume`"),
      f("priorityClassName", T::String, "a PriorityClass (trainyard apply) whose value is the priority"),
      collector,
      f("outputs", T::Object, "where the job writes its results", {f("dir", T::String, "$TRAINYARD_OUTPUT_DIR")}),
      oneOf("successPolicy", {"Default", "AllWorkers"}, "when the job has succeeded"),
      f("slotsPerWorker", T::Integer, "MPI: processes per worker"),
      oneOf("placement", {"pack", "spread"}, "fewest nodes, or one replica per node"),
      mapOf("nodeSelector", f("", T::String, ""), "labels every replica's node must have"),
      f("walltime", T::IntOrString, "how long it runs about: seconds or 90m, 2h"),
      f("build", T::Object, "build the image first (Podman, locally), cached by the context's content",
        {f("context", T::String, "the build context directory (relative: to the spec's file)"),
         f("containerfile", T::String, "its Containerfile, relative to the context (default Containerfile, else Dockerfile)")}),
      f("slurm", T::Object, "on a Slurm cluster (--backend slurm)",
        {f("partition", T::String, "sbatch --partition"), f("account", T::String, "sbatch --account"),
         f("qos", T::String, "sbatch --qos"), f("constraint", T::String, "sbatch --constraint (node features)"),
         f("nodes", T::Integer, "sbatch --nodes: the replicas over this many nodes"),
         f("tasksPerNode", T::Integer, "sbatch --ntasks-per-node: replicas per node")}),
  };
  spec.insert(spec.end(), rest.begin(), rest.end());
  return f("spec", T::Object, "a TrainJob: the same YAML `trainyard run` takes", spec);
}

Field experimentSpec() {
  Field objective = f("", T::Object, "", {f("metric", T::String, "the metric's name"),
                                          oneOf("goal", {"maximize", "minimize"}, ""),
                                          oneOf("strategy", {"min", "max", "latest"}, "which of a trial's values counts")});
  Field single = objective;
  single.name = "objective";
  single.description = "what is optimised: one metric, or objectives (several: a Pareto front)";
  single.fields.push_back(f("target", T::Any, "a number: reaching it ends the experiment"));
  single.fields.push_back(listOf("additionalMetrics", f("", T::String, ""), "more metrics recorded per trial"));
  single.fields.push_back(listOf("objectives", objective, "several objectives"));
  Field algorithm = f("", T::Object, "", {f("name", T::String, "random, grid, tpe, gp, cmaes, hyperband..."),
                                          mapOf("settings", f("", T::Any, ""), "the algorithm's settings")});
  Field stopping = algorithm;
  algorithm.name = "algorithm";
  algorithm.description = "the search algorithm";
  stopping.name = "earlyStopping";
  stopping.description = "median, asha or hyperband";
  Field param = f("", T::Object, "", {f("name", T::String, ""),
                                      oneOf("type", {"double", "int", "categorical", "discrete"}, ""),
                                      f("min", T::Any, "a number"), f("max", T::Any, "a number"), f("step", T::Any, "a number"),
                                      oneOf("scale", {"linear", "log"}, ""),
                                      listOf("values", f("", T::Any, ""), "categorical or discrete values")});
  return f("spec", T::Object, "an Experiment: the same YAML `trainyard run` takes",
           {single, algorithm, stopping, listOf("parameters", param, "the search space"),
            f("parallelTrials", T::Integer, "trials at once"), f("maxTrials", T::Integer, "trials in all"),
            f("maxFailedTrials", T::Integer, "failures that end the experiment"),
            f("seed", T::Integer, "makes the search repeatable"),
            f("trialTemplate", T::Any, "a TrainJob spec, or a Kubeflow job, with ${trialParameters.NAME}")});
}

Field queueSpec() {
  auto quota = [](const char* name, const char* what) { return f(name, T::Object, what, resourceFields()); };
  return f("spec", T::Object, "a Queue: a share of the cluster",
           {f("cohort", T::String, "queues of a cohort lend each other unused quota"),
            f("weight", T::Number, "its fair share against other queues"),
            quota("quota", "what it is guaranteed"), quota("borrowingLimit", "at most this much borrowed"),
            quota("lendingLimit", "at most this much lent"),
            f("preemption", T::Object, "",
              {oneOf("withinQueue", {"LowerPriority", "Never"}, ""), oneOf("reclaimWithinCohort", {"Any", "Never"}, "")}),
            listOf("users", f("", T::String, ""), "who may submit to it (empty: everyone)"),
            mapOf("userWeights", f("", T::Number, ""), "fair share between its users")});
}

Field notebookSpec() {
  std::vector<Field> fields;
  for (auto& r : roleFields())
    if (r.name != "command" && r.name != "args") fields.push_back(r);
  fields.push_back(f("idleTimeout", T::IntOrString, "stopped after this long without kernel activity: 3600, \"30m\", \"2h\"; 0: never"));
  fields.push_back(f("queue", T::String, "the queue whose share it holds"));
  fields.push_back(f("priority", T::Integer, "higher is scheduled first"));
  return f("spec", T::Object, "a Notebook: a Jupyter server holding resources, proxied behind the server's auth", fields);
}

const std::map<std::string, Field>& specs() {
  static const std::map<std::string, Field> all = {{"TrainJob", trainJobSpec()},
                                                   {"Experiment", experimentSpec()},
                                                   {"Queue", queueSpec()},
                                                   {"Notebook", notebookSpec()}};
  return all;
}

}  // namespace

const Field& specOf(const std::string& kind) {
  auto it = specs().find(kind);
  if (it == specs().end()) throw std::logic_error("schema: no kind " + kind);
  return it->second;
}

std::set<std::string> keysAt(const std::string& kind, const std::string& path) {
  const Field* at = &specOf(kind);
  size_t i = 0;
  while (i < path.size()) {
    size_t end = path.find('.', i);
    std::string part = path.substr(i, end == std::string::npos ? std::string::npos : end - i);
    i = end == std::string::npos ? path.size() : end + 1;
    bool item = part.size() > 2 && part.ends_with("[]");
    if (item) part.resize(part.size() - 2);
    if (part == "*") {
      if (at->type != T::Map) throw std::logic_error("schema: " + path + " is not a map");
      at = &at->fields[0];
      continue;
    }
    const Field* next = nullptr;
    for (const auto& c : at->fields)
      if (c.name == part) next = &c;
    if (!next) throw std::logic_error("schema: " + kind + " has no " + path);
    at = item ? &next->fields.at(0) : next;
  }
  if (at->type != T::Object) throw std::logic_error("schema: " + path + " is not a mapping");
  std::set<std::string> keys;
  for (const auto& c : at->fields) keys.insert(c.name);
  return keys;
}

json openApi(const Field& f) {
  json s = json::object();
  switch (f.type) {
    case T::String:
      s["type"] = "string";
      if (!f.values.empty()) s["enum"] = f.values;
      break;
    case T::Integer: s["type"] = "integer"; break;
    case T::Number: s["type"] = "number"; break;
    case T::Boolean: s["type"] = "boolean"; break;
    case T::IntOrString: s["x-kubernetes-int-or-string"] = true; break;
    case T::Any: s["x-kubernetes-preserve-unknown-fields"] = true; break;
    case T::List: s["type"] = "array", s["items"] = openApi(f.fields.at(0)); break;
    case T::Map: s["type"] = "object", s["additionalProperties"] = openApi(f.fields.at(0)); break;
    case T::Object: {
      s["type"] = "object";
      json props = json::object();
      for (const auto& c : f.fields) props[c.name] = openApi(c);
      s["properties"] = props;
      break;
    }
  }
  if (!f.description.empty()) s["description"] = f.description;
  return s;
}

const std::vector<std::string>& crdKinds() {
  static const std::vector<std::string> kinds = {"TrainJob", "Experiment", "Queue"};
  return kinds;
}

namespace {
struct CrdInfo {
  const char* plural;
  const char* singular;
  std::vector<std::string> short_names;
  bool namespaced;
  json columns;
};

CrdInfo infoOf(const std::string& kind) {
  auto col = [](const char* name, const char* type, const char* path, int priority = 0) {
    json c = {{"name", name}, {"type", type}, {"jsonPath", path}};
    if (priority) c["priority"] = priority;
    return c;
  };
  json age = col("Age", "date", ".metadata.creationTimestamp");
  if (kind == "TrainJob")
    return {"trainjobs", "trainjob", {"tj"}, true,
            {col("Phase", "string", ".status.phase"), col("Restarts", "integer", ".status.restarts"),
             col("Reason", "string", ".status.reason", 1), age}};
  if (kind == "Experiment")
    return {"experiments", "experiment", {"tyexp"}, true,
            {col("Phase", "string", ".status.phase"), col("Trials", "integer", ".status.trials"),
             col("Best", "string", ".status.best"), age}};
  return {"queues", "queue", {"tyq"}, false,
          {col("Phase", "string", ".status.phase"), col("Message", "string", ".status.message", 1), age}};
}
}  // namespace

std::string crdFileName(const std::string& kind) { return fmt::format("trainyard.dev_{}.yaml", infoOf(kind).plural); }

std::string crdYaml(const std::string& kind) {
  const Field& spec = specOf(kind);
  CrdInfo info = infoOf(kind);
  json status = {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true},
                 {"description", "written by Trainyard: phase, reason, message, conditions as Kubeflow's"}};
  json version = {{"name", "v1"},
                  {"served", true},
                  {"storage", true},
                  {"subresources", {{"status", json::object()}}},
                  {"additionalPrinterColumns", info.columns},
                  {"schema", {{"openAPIV3Schema", {{"type", "object"}, {"properties", {{"spec", openApi(spec)}, {"status", status}}}}}}}};
  json crd = {{"apiVersion", "apiextensions.k8s.io/v1"},
              {"kind", "CustomResourceDefinition"},
              {"metadata", {{"name", fmt::format("{}.trainyard.dev", info.plural)}}},
              {"spec",
               {{"group", "trainyard.dev"},
                {"scope", info.namespaced ? "Namespaced" : "Cluster"},
                {"names", {{"plural", info.plural}, {"singular", info.singular}, {"kind", kind}, {"shortNames", info.short_names}}},
                {"versions", json::array({version})}}}};
  // JSON is YAML: no quoting rules to get wrong, and kubectl takes it as is.
  return fmt::format(
      "# The {} custom resource of `trainyard server --backend kubernetes` (docs/kubernetes.md).\n"
      "# Generated by `trainyard crds` from src/spec/schema.cc, the shape the spec parser accepts:\n"
      "# do not edit; regenerate with `trainyard crds --out deploy/crds` (a test checks it).\n{}\n",
      kind, crd.dump(2));
}

}  // namespace trainyard::spec::schema
