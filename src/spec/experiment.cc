#include "spec/experiment.h"
#include "spec/schema.h"

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <functional>
#include <regex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "spec/kubeflow.h"
#include "spec/overrides.h"
#include "spec/katib_regex.h"
#include "spec/parser.h"
#include "spec/yaml_walker.h"

namespace trainyard::spec {

std::optional<std::string> mapKatibAlgorithm(const std::string& k, std::string& error) {
  static const std::map<std::string, std::string> kMap{
      {"random", "random"}, {"grid", "grid"},   {"sobol", "sobol"},
      {"tpe", "tpe"},       {"multivariate-tpe", "tpe"}, {"bayesianoptimization", "gp"},
      {"gp", "gp"},         {"cmaes", "cmaes"},  {"hyperband", "hyperband"}, {"pbt", "pbt"}};
  auto it = kMap.find(k);
  if (it != kMap.end()) return it->second;
  if (k == "enas" || k == "darts")
    error = fmt::format("algorithm {} is neural architecture search, which is out of scope for now (docs/experiments.md); "
                        "use random, grid, sobol, tpe, multivariate-tpe, bayesianoptimization (gp), cmaes, hyperband or pbt", k);
  else
    error = fmt::format("unknown algorithm \"{}\" (expected random, grid, sobol, tpe, gp, cmaes, or Katib's "
                        "multivariate-tpe, bayesianoptimization, hyperband, pbt)", k);
  return std::nullopt;
}

namespace {

std::map<std::string, std::string> settingsMap(const Walker& w, const YAML::Node& n, const std::string& path) {
  std::map<std::string, std::string> out;
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it) out[it->first.Scalar()] = w.str(it->second, path + "." + it->first.Scalar());
    return out;
  }
  if (!n.IsSequence()) w.fail(n, path, fmt::format("expected a mapping or a list of {{name, value}}, got {}", typeName(n)));
  for (size_t i = 0; i < n.size(); ++i) {  // Katib: [{name, value}]
    std::string p = fmt::format("{}[{}]", path, i);
    w.expectMap(n[i], p, {"name", "value"});
    if (!n[i]["name"]) w.fail(n[i], p + ".name", "missing required field 'name'");
    out[w.str(n[i]["name"], p + ".name")] = n[i]["value"] ? w.str(n[i]["value"], p + ".value") : "";
  }
  return out;
}

double number(const Walker& w, const YAML::Node& n, const std::string& path) {
  std::string s = w.str(n, path);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end || !std::isfinite(v)) w.fail(n, path, fmt::format("expected a number, got \"{}\"", s));
  return v;
}

void checkParam(const Walker& w, const YAML::Node& at, const std::string& path, tune::Param& p, bool fixed_ok = false) {
  using T = tune::Param::Type;
  if (p.type == T::Categorical || p.type == T::Discrete) {
    if (p.values.empty()) w.fail(at, path, "expected a non-empty list of values");
    if (p.type == T::Discrete)
      for (const auto& v : p.values) {
        char* end = nullptr;
        std::strtod(v.c_str(), &end);
        if (end == v.c_str() || *end) w.fail(at, path, fmt::format("discrete values must be numbers, got \"{}\"", v));
      }
    return;
  }
  if (fixed_ok && p.min == p.max) return;  // Katib's hyperband resource: its value is the bracket's
  if (!(p.min < p.max)) w.fail(at, path, fmt::format("expected min < max, got min {} and max {}", p.min, p.max));
  if (p.log && p.min <= 0) w.fail(at, path, fmt::format("a log scale needs min > 0, got {}", p.min));
  if (p.type == T::Int && (std::floor(p.min) != p.min || std::floor(p.max) != p.max))
    w.fail(at, path, "int parameters need integer min and max");
  if (p.step < 0) w.fail(at, path, "step must be positive");
}

tune::Param parseParam(const Walker& w, const YAML::Node& n, const std::string& path) {
  w.expectMap(n, path, schema::keysAt("Experiment", "parameters[]"));
  tune::Param p;
  if (!n["name"]) w.fail(n, path + ".name", "missing required field 'name'");
  p.name = w.str(n["name"], path + ".name");
  std::string type = n["type"] ? w.str(n["type"], path + ".type") : "double";
  using T = tune::Param::Type;
  if (type == "double") p.type = T::Double;
  else if (type == "int") p.type = T::Int;
  else if (type == "categorical") p.type = T::Categorical;
  else if (type == "discrete") p.type = T::Discrete;
  else w.fail(n["type"], path + ".type", fmt::format("expected double, int, categorical or discrete, got \"{}\"", type));
  if (p.type == T::Categorical || p.type == T::Discrete) {
    if (!n["values"]) w.fail(n, path + ".values", "missing required field 'values'");
    p.values = w.strList(n["values"], path + ".values");
  } else {
    if (!n["min"]) w.fail(n, path + ".min", "missing required field 'min'");
    if (!n["max"]) w.fail(n, path + ".max", "missing required field 'max'");
    p.min = number(w, n["min"], path + ".min");
    p.max = number(w, n["max"], path + ".max");
    if (n["step"]) p.step = number(w, n["step"], path + ".step");
    if (n["scale"]) {
      std::string scale = w.str(n["scale"], path + ".scale");
      if (scale != "linear" && scale != "log")
        w.fail(n["scale"], path + ".scale", fmt::format("expected linear or log, got \"{}\"", scale));
      p.log = scale == "log";
    }
  }
  checkParam(w, n, path, p);
  return p;
}

// Katib: {name, parameterType, feasibleSpace: {min, max, step, list, distribution}}.
tune::Param parseKatibParam(const Walker& w, const YAML::Node& n, const std::string& path,
                            std::vector<std::string>& warnings, const std::string& resource = "") {
  w.expectMap(n, path, {"name", "parameterType", "feasibleSpace"});
  tune::Param p;
  if (!n["name"]) w.fail(n, path + ".name", "missing required field 'name'");
  p.name = w.str(n["name"], path + ".name");
  std::string type = n["parameterType"] ? w.str(n["parameterType"], path + ".parameterType") : "";
  using T = tune::Param::Type;
  if (type == "double") p.type = T::Double;
  else if (type == "int") p.type = T::Int;
  else if (type == "categorical") p.type = T::Categorical;
  else if (type == "discrete") p.type = T::Discrete;
  else w.fail(n["parameterType"] ? n["parameterType"] : n, path + ".parameterType",
              fmt::format("expected double, int, categorical or discrete, got \"{}\"", type));
  YAML::Node fs = n["feasibleSpace"];
  std::string fpath = path + ".feasibleSpace";
  if (!fs) w.fail(n, fpath, "missing required field 'feasibleSpace'");
  w.expectMap(fs, fpath, {"min", "max", "step", "list", "distribution"});
  if (p.type == T::Categorical || p.type == T::Discrete) {
    if (!fs["list"]) w.fail(fs, fpath + ".list", "missing required field 'list'");
    p.values = w.strList(fs["list"], fpath + ".list");
  } else {
    if (!fs["min"]) w.fail(fs, fpath + ".min", "missing required field 'min'");
    if (!fs["max"]) w.fail(fs, fpath + ".max", "missing required field 'max'");
    p.min = number(w, fs["min"], fpath + ".min");
    p.max = number(w, fs["max"], fpath + ".max");
    if (fs["step"]) p.step = number(w, fs["step"], fpath + ".step");
    if (auto d = fs["distribution"]) {
      std::string dist = w.str(d, fpath + ".distribution");
      if (dist == "logUniform") p.log = true;
      else if (dist != "uniform")
        warnings.push_back(w.locate(d, fpath + ".distribution",
                                    fmt::format("{} is sampled as {}uniform here", dist,
                                                dist == "logNormal" ? "log-" : "")));
      if (dist == "logNormal") p.log = true;
    }
  }
  checkParam(w, fs, fpath, p, !resource.empty() && p.name == resource);
  return p;
}

void parseCommon(const Walker& w, const YAML::Node& spec, ExperimentSpec& e, bool katib) {
  const char* par = katib ? "parallelTrialCount" : "parallelTrials";
  const char* max = katib ? "maxTrialCount" : "maxTrials";
  const char* failed = katib ? "maxFailedTrialCount" : "maxFailedTrials";
  if (spec[par]) e.parallel_trials = static_cast<int>(w.integer(spec[par], std::string("spec.") + par, 1, 10000));
  if (spec[max]) e.max_trials = static_cast<int>(w.integer(spec[max], std::string("spec.") + max, 1, 1000000));
  if (spec[failed]) e.max_failed_trials = static_cast<int>(w.integer(spec[failed], std::string("spec.") + failed, 0, 1000000));
}

std::string metadataName(const Walker& w, const YAML::Node& root, ExperimentSpec& e,
                         std::vector<std::string>& warnings) {
  YAML::Node meta = root["metadata"];
  if (!meta) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  if (!meta.IsMap()) w.fail(meta, "metadata", fmt::format("expected a mapping, got {}", typeName(meta)));
  if (!meta["name"]) w.fail(meta, "metadata.name", "missing required field 'name'");
  // Trials are named <experiment>-<number>(-r<run>): leave room for that.
  std::string name = w.name(meta["name"], "metadata.name");
  if (name.size() > 50) w.fail(meta["name"], "metadata.name", "an experiment name may have at most 50 characters (trials add a suffix)");
  if (meta["labels"]) e.labels = w.strMap(meta["labels"], "metadata.labels");
  for (auto it = meta.begin(); it != meta.end(); ++it) {
    std::string k = it->first.Scalar();
    if (k != "name" && k != "labels")
      warnings.push_back(w.locate(it->first, "metadata." + k, "not used on the local backend"));
  }
  return name;
}

// Walks `path` (keys) from `root`.
YAML::Node at(YAML::Node root, const std::vector<std::string>& path) {
  YAML::Node cur = root;
  for (const auto& k : path) {
    YAML::Node next = cur[k];
    cur.reset(next);
  }
  return cur;
}

}  // namespace


namespace {
// Where the template lives in the file, recorded in the spec so trials re-read it with line numbers.
constexpr const char* kTemplatePathKey = "\x01template-path:";
}  // namespace

ExperimentSpec parseExperiment(const Walker& w, const YAML::Node& root, const std::string& text,
                               std::vector<std::string>& warnings) {
  ExperimentSpec e;
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec"});
  e.name = metadataName(w, root, e, warnings);
  YAML::Node spec = root["spec"];
  if (!spec) w.fail(root, "spec", "missing required field 'spec'");
  w.expectMap(spec, "spec", schema::keysAt("Experiment", ""));
  YAML::Node obj = spec["objective"];
  if (!obj) w.fail(spec, "spec.objective", "missing required field 'objective' (metric and goal)");
  w.expectMap(obj, "spec.objective", schema::keysAt("Experiment", "objective"));
  auto goal = [&](const YAML::Node& n, const std::string& path) {
    std::string g = w.str(n, path);
    if (g != "maximize" && g != "minimize") w.fail(n, path, fmt::format("expected maximize or minimize, got \"{}\"", g));
    return g == "maximize";
  };
  auto strategy = [&](const YAML::Node& n, const std::string& path) {
    std::string s = w.str(n, path);
    if (s != "min" && s != "max" && s != "latest") w.fail(n, path, fmt::format("expected min, max or latest, got \"{}\"", s));
    return s;
  };
  if (auto list = obj["objectives"]) {
    if (obj["metric"]) w.fail(obj["metric"], "spec.objective.metric", "give either metric (one objective) or objectives (several), not both");
    if (!list.IsSequence() || list.size() < 2)
      w.fail(list, "spec.objective.objectives", "expected a list of at least two {metric, goal}");
    for (size_t i = 0; i < list.size(); ++i) {
      std::string p = fmt::format("spec.objective.objectives[{}]", i);
      w.expectMap(list[i], p, schema::keysAt("Experiment", "objective.objectives[]"));
      if (!list[i]["metric"] || !list[i]["goal"]) w.fail(list[i], p, "each objective needs metric and goal");
      tune::Objective o{w.str(list[i]["metric"], p + ".metric"), goal(list[i]["goal"], p + ".goal"), ""};
      if (list[i]["strategy"]) o.strategy = strategy(list[i]["strategy"], p + ".strategy");
      e.objectives.push_back(o);
    }
    if (obj["target"]) w.fail(obj["target"], "spec.objective.target", "a target applies to a single objective");
  } else {
    if (!obj["metric"]) w.fail(obj, "spec.objective.metric", "missing required field 'metric'");
    if (!obj["goal"]) w.fail(obj, "spec.objective.goal", "missing required field 'goal' (maximize or minimize)");
    tune::Objective o{w.str(obj["metric"], "spec.objective.metric"), goal(obj["goal"], "spec.objective.goal"), ""};
    if (obj["strategy"]) o.strategy = strategy(obj["strategy"], "spec.objective.strategy");
    e.objectives.push_back(o);
    if (obj["target"]) e.target = number(w, obj["target"], "spec.objective.target");
  }
  if (obj["additionalMetrics"]) e.additional_metrics = w.strList(obj["additionalMetrics"], "spec.objective.additionalMetrics");
  if (auto a = spec["algorithm"]) {
    w.expectMap(a, "spec.algorithm", schema::keysAt("Experiment", "algorithm"));
    if (!a["name"]) w.fail(a, "spec.algorithm.name", "missing required field 'name'");
    e.algorithm = w.str(a["name"], "spec.algorithm.name");
    if (a["settings"]) e.algorithm_settings = settingsMap(w, a["settings"], "spec.algorithm.settings");
  }
  if (auto s = spec["earlyStopping"]) {
    w.expectMap(s, "spec.earlyStopping", schema::keysAt("Experiment", "earlyStopping"));
    if (!s["name"]) w.fail(s, "spec.earlyStopping.name", "missing required field 'name'");
    e.early_stopping = w.str(s["name"], "spec.earlyStopping.name");
    if (s["settings"]) e.early_stopping_settings = settingsMap(w, s["settings"], "spec.earlyStopping.settings");
    if (e.early_stopping == "none") e.early_stopping.clear(), e.early_stopping_settings.clear();
  }
  YAML::Node params = spec["parameters"];
  if (!params) w.fail(spec, "spec.parameters", "missing required field 'parameters'");
  if (!params.IsSequence() || params.size() == 0) w.fail(params, "spec.parameters", "expected a non-empty list of parameters");
  for (size_t i = 0; i < params.size(); ++i) e.space.params.push_back(parseParam(w, params[i], fmt::format("spec.parameters[{}]", i)));
  parseCommon(w, spec, e, false);
  if (spec["seed"]) e.seed = static_cast<uint64_t>(w.integer(spec["seed"], "spec.seed", 0, INT64_MAX));
  if (!spec["trialTemplate"]) w.fail(spec, "spec.trialTemplate", "missing required field 'trialTemplate' (a TrainJob)");
  e.trial_template = text;
  e.trial_parameters.clear();
  for (const auto& p : e.space.params) e.trial_parameters[p.name] = p.name;
  e.trial_parameters[kTemplatePathKey] = "spec.trialTemplate";
  (void)warnings;
  return e;
}

ExperimentSpec translateKatibExperiment(const Walker& w, const YAML::Node& root, const std::string& text,
                                        std::vector<std::string>& warnings) {
  ExperimentSpec e;
  e.api_version = "kubeflow.org/v1beta1";
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec", "status"});
  e.name = metadataName(w, root, e, warnings);
  YAML::Node spec = root["spec"];
  if (!spec) w.fail(root, "spec", "missing required field 'spec'");
  w.expectMap(spec, "spec", {"objective", "algorithm", "earlyStopping", "parameters", "parallelTrialCount",
                             "maxTrialCount", "maxFailedTrialCount", "trialTemplate", "metricsCollectorSpec",
                             "resumePolicy", "nasConfig"});
  if (spec["nasConfig"])
    w.fail(spec["nasConfig"], "spec.nasConfig", "neural architecture search is out of scope for now (docs/experiments.md)");
  YAML::Node obj = spec["objective"];
  if (!obj) w.fail(spec, "spec.objective", "missing required field 'objective'");
  w.expectMap(obj, "spec.objective", {"type", "goal", "objectiveMetricName", "additionalMetricNames", "metricStrategies"});
  if (!obj["type"]) w.fail(obj, "spec.objective.type", "missing required field 'type' (maximize or minimize)");
  std::string type = w.str(obj["type"], "spec.objective.type");
  if (type != "maximize" && type != "minimize")
    w.fail(obj["type"], "spec.objective.type", fmt::format("expected maximize or minimize, got \"{}\"", type));
  if (!obj["objectiveMetricName"]) w.fail(obj, "spec.objective.objectiveMetricName", "missing required field 'objectiveMetricName'");
  tune::Objective o{w.str(obj["objectiveMetricName"], "spec.objective.objectiveMetricName"), type == "maximize", ""};
  if (obj["goal"]) e.target = number(w, obj["goal"], "spec.objective.goal");
  if (obj["additionalMetricNames"]) e.additional_metrics = w.strList(obj["additionalMetricNames"], "spec.objective.additionalMetricNames");
  // Katib's defaults: every metric is read by the objective's direction.
  for (const auto& m : e.additional_metrics) e.additional_strategies[m] = o.maximize ? "max" : "min";
  if (auto ms = obj["metricStrategies"]) {
    if (!ms.IsSequence()) w.fail(ms, "spec.objective.metricStrategies", "expected a list of {name, value}");
    for (size_t i = 0; i < ms.size(); ++i) {
      std::string p = fmt::format("spec.objective.metricStrategies[{}]", i);
      w.expectMap(ms[i], p, {"name", "value"});
      if (!ms[i]["name"] || !ms[i]["value"]) w.fail(ms[i], p, "each strategy needs name and value");
      std::string name = w.str(ms[i]["name"], p + ".name"), value = w.str(ms[i]["value"], p + ".value");
      if (value != "min" && value != "max" && value != "latest")
        w.fail(ms[i]["value"], p + ".value", fmt::format("expected min, max or latest, got \"{}\"", value));
      if (name == o.metric) o.strategy = value;
      else if (e.additional_strategies.count(name)) e.additional_strategies[name] = value;
      else w.fail(ms[i]["name"], p + ".name",
                  fmt::format("\"{}\" is neither the objective metric nor one of additionalMetricNames", name));
    }
  }
  e.objectives.push_back(o);
  std::string resource;  // Katib hyperband's resource parameter
  YAML::Node resource_at;
  if (auto a = spec["algorithm"]) {
    w.expectMap(a, "spec.algorithm", {"algorithmName", "algorithmSettings"});
    if (!a["algorithmName"]) w.fail(a, "spec.algorithm.algorithmName", "missing required field 'algorithmName'");
    std::string katib = w.str(a["algorithmName"], "spec.algorithm.algorithmName");
    std::string error;
    auto mapped = mapKatibAlgorithm(katib, error);
    if (!mapped) w.fail(a["algorithmName"], "spec.algorithm.algorithmName", error);
    e.algorithm = *mapped;
    if (a["algorithmSettings"]) e.algorithm_settings = settingsMap(w, a["algorithmSettings"], "spec.algorithm.algorithmSettings");
    if (katib == "hyperband") {
      // Katib's hyperband drives the brackets itself: it sets each trial's
      // resource parameter per bracket and rung (tune/hyperband_sampler.h).
      auto s = e.algorithm_settings;
      if (!s.count("resource_name") || !s.count("r_l"))
        w.fail(a, "spec.algorithm.algorithmSettings", "hyperband needs the settings resource_name and r_l");
      resource = s["resource_name"];
      resource_at = a;
    }
  }
  if (auto s = spec["earlyStopping"]) {
    w.expectMap(s, "spec.earlyStopping", {"algorithmName", "algorithmSettings"});
    std::string name = s["algorithmName"] ? w.str(s["algorithmName"], "spec.earlyStopping.algorithmName") : "";
    if (name != "medianstop") w.fail(s["algorithmName"] ? s["algorithmName"] : s, "spec.earlyStopping.algorithmName",
                                     fmt::format("expected medianstop, got \"{}\"", name));
    e.early_stopping = "median";
    if (s["algorithmSettings"]) e.early_stopping_settings = settingsMap(w, s["algorithmSettings"], "spec.earlyStopping.algorithmSettings");
  }
  YAML::Node params = spec["parameters"];
  if (!params) w.fail(spec, "spec.parameters", "missing required field 'parameters'");
  if (!params.IsSequence() || params.size() == 0) w.fail(params, "spec.parameters", "expected a non-empty list of parameters");
  for (size_t i = 0; i < params.size(); ++i)
    e.space.params.push_back(parseKatibParam(w, params[i], fmt::format("spec.parameters[{}]", i), warnings, resource));
  if (!resource.empty() &&
      std::none_of(e.space.params.begin(), e.space.params.end(), [&](const auto& p) { return p.name == resource; }))
    w.fail(resource_at, "spec.algorithm.algorithmSettings", fmt::format("resource_name \"{}\" is not one of the parameters", resource));
  parseCommon(w, spec, e, true);
  if (auto rp = spec["resumePolicy"]) {
    e.resume_policy = w.str(rp, "spec.resumePolicy");
    if (e.resume_policy != "Never" && e.resume_policy != "LongRunning" && e.resume_policy != "FromVolume")
      w.fail(rp, "spec.resumePolicy", fmt::format("expected Never, LongRunning or FromVolume, got \"{}\"", e.resume_policy));
  }
  if (auto mc = spec["metricsCollectorSpec"]) {
    w.expectMap(mc, "spec.metricsCollectorSpec", {"collector", "source"});
    if (mc["collector"]) w.expectMap(mc["collector"], "spec.metricsCollectorSpec.collector", {"kind", "customCollector"});
    MetricsCollector c;
    std::string kind = mc["collector"] && mc["collector"]["kind"] ? w.str(mc["collector"]["kind"], "spec.metricsCollectorSpec.collector.kind") : "StdOut";
    if (kind == "StdOut") c.kind = MetricsCollector::Kind::StdOut;
    else if (kind == "File") c.kind = MetricsCollector::Kind::File;
    else if (kind == "None") c.kind = MetricsCollector::Kind::None;
    else if (kind == "TensorFlowEvent") c.kind = MetricsCollector::Kind::TensorFlowEvent;
    else if (kind == "Custom") {
      c.kind = MetricsCollector::Kind::Custom;
      const char* at = "spec.metricsCollectorSpec.collector.customCollector";
      auto cc = mc["collector"]["customCollector"];
      if (!cc || !cc["command"]) w.fail(cc ? cc : mc["collector"], at, "the Custom collector needs customCollector with a command");
      c.command = w.command(cc["command"], std::string(at) + ".command");
      if (cc["args"]) {
        auto args = w.strList(cc["args"], std::string(at) + ".args");
        c.command.insert(c.command.end(), args.begin(), args.end());
      }
      for (auto it = cc.begin(); it != cc.end(); ++it) {
        std::string key = it->first.Scalar();
        if (key != "name" && key != "command" && key != "args")
          warnings.push_back(w.locate(it->first, std::string(at) + "." + key,
                                      "the collector runs in the trial's own container, with its environment"));
      }
    } else w.fail(mc["collector"]["kind"], "spec.metricsCollectorSpec.collector.kind",
                fmt::format("collector {} is not supported (StdOut, File, TensorFlowEvent, Custom or None)", kind));
    std::string fs_kind;
    YAML::Node fs_at;
    if (auto src = mc["source"]) {
      w.expectMap(src, "spec.metricsCollectorSpec.source", {"fileSystemPath", "filter", "httpGet"});
      if (src["httpGet"]) w.fail(src["httpGet"], "spec.metricsCollectorSpec.source.httpGet",
                                 "Prometheus metrics over HTTP are not collected; print them, or write a File or TensorFlowEvent");
      if (auto fsp = src["fileSystemPath"]) {
        fs_at = fsp;
        w.expectMap(fsp, "spec.metricsCollectorSpec.source.fileSystemPath", {"path", "kind", "format"});
        if (fsp["path"]) c.path = w.str(fsp["path"], "spec.metricsCollectorSpec.source.fileSystemPath.path");
        if (fsp["format"]) c.format = w.str(fsp["format"], "spec.metricsCollectorSpec.source.fileSystemPath.format");
        if (fsp["kind"]) fs_kind = w.str(fsp["kind"], "spec.metricsCollectorSpec.source.fileSystemPath.kind");
        if (!fs_kind.empty() && fs_kind != "File" && fs_kind != "Directory")
          w.fail(fsp["kind"], "spec.metricsCollectorSpec.source.fileSystemPath.kind",
                 fmt::format("expected File or Directory, got \"{}\"", fs_kind));
        if (!c.format.empty() && c.format != "TEXT" && c.format != "JSON")
          w.fail(fsp["format"], "spec.metricsCollectorSpec.source.fileSystemPath.format",
                 fmt::format("expected TEXT or JSON, got \"{}\"", c.format));
      }
      if (auto f = src["filter"]; f && f["metricsFormat"]) {
        auto formats = w.strList(f["metricsFormat"], "spec.metricsCollectorSpec.source.filter.metricsFormat");
        for (auto& re : formats) re = literalBraces(re);  // RE2's literal braces
        if (formats.size() > 16)
          w.fail(f["metricsFormat"], "spec.metricsCollectorSpec.source.filter.metricsFormat", "at most 16 formats");
        // Every format applies to every line, as Katib's collector does (one per line here).
        for (size_t i = 0; i < formats.size(); ++i) {
          std::string at = fmt::format("spec.metricsCollectorSpec.source.filter.metricsFormat[{}]", i);
          if (formats[i].find('\n') != std::string::npos) w.fail(f["metricsFormat"][i], at, "a format is one line");
          try {
            if (std::regex(formats[i]).mark_count() < 2)
              w.fail(f["metricsFormat"][i], at, "expected a regex with two groups: (name) and (value)");
          } catch (const std::regex_error& e) {
            w.fail(f["metricsFormat"][i], at, fmt::format("expected a valid regular expression: {}", e.what()));
          }
          c.filter += (i ? "\n" : "") + formats[i];
        }
      }
    }
    const char* at = "spec.metricsCollectorSpec.source.fileSystemPath.path";
    if (c.kind == MetricsCollector::Kind::File) {
      if (c.path.empty()) w.fail(mc, at, "the File collector needs a path");
      std::error_code ec;
      if (fs_kind == "Directory" || c.path.back() == '/' || (c.path[0] == '/' && std::filesystem::is_directory(c.path, ec)))
        w.fail(fs_at["path"] ? fs_at["path"] : fs_at, at,
               fmt::format("{} is a directory; the File collector reads one file (kind: File)", c.path));
    }
    if (c.kind == MetricsCollector::Kind::TensorFlowEvent) {
      if (c.path.empty()) w.fail(mc, at, "the TensorFlowEvent collector needs the directory of the event files");
      std::error_code ec;
      if (fs_kind == "File" || (c.path[0] == '/' && std::filesystem::is_regular_file(c.path, ec)))
        w.fail(fs_at["path"] ? fs_at["path"] : fs_at, at,
               fmt::format("{} is a file; the TensorFlowEvent collector reads a directory of event files (kind: Directory)", c.path));
    }
    e.metrics_collector = c;
  }
  YAML::Node tt = spec["trialTemplate"];
  if (!tt) w.fail(spec, "spec.trialTemplate", "missing required field 'trialTemplate'");
  w.expectMap(tt, "spec.trialTemplate", {"primaryContainerName", "trialParameters", "trialSpec", "configMap",
                                         "successCondition", "failureCondition", "retain", "primaryPodLabels"});
  if (tt["configMap"]) w.fail(tt["configMap"], "spec.trialTemplate.configMap", "templates in config maps need a cluster; inline it as trialSpec");
  if (!tt["trialSpec"]) w.fail(tt, "spec.trialTemplate.trialSpec", "missing required field 'trialSpec'");
  // Katib's conditions for its built-in trial kinds are what Trainyard does
  // anyway (a trial ends with its job); others are for custom kinds.
  std::string trial_kind = tt["trialSpec"]["kind"] ? tt["trialSpec"]["kind"].Scalar() : "";
  std::string done = trial_kind == "Job" ? "Complete" : "Succeeded";
  const std::map<std::string, std::string> katib_default{
      {"successCondition", "status.conditions.#(type==\"" + done + "\")#|#(status==\"True\")#"},
      {"failureCondition", "status.conditions.#(type==\"Failed\")#|#(status==\"True\")#"}};
  for (const char* k : {"successCondition", "failureCondition"})
    if (tt[k] && w.str(tt[k], std::string("spec.trialTemplate.") + k) != katib_default.at(k))
      warnings.push_back(w.locate(tt[k], std::string("spec.trialTemplate.") + k,
                                  fmt::format("a {} trial succeeds or fails with its job; conditions other than Katib's "
                                              "default for it are for custom trial kinds, which are not supported",
                                              trial_kind)));
  // retain: Trainyard keeps every trial's job, logs and metrics (Katib's
  // retain: true) and never leaves a trial's processes running (either way).
  if (tt["retain"]) w.boolean(tt["retain"], "spec.trialTemplate.retain");
  if (tt["primaryPodLabels"])
    warnings.push_back(w.locate(tt["primaryPodLabels"], "spec.trialTemplate.primaryPodLabels",
                                "the primary replica is the master, chief, launcher or worker-0"));
  if (tt["trialParameters"]) {
    auto tp = tt["trialParameters"];
    if (!tp.IsSequence()) w.fail(tp, "spec.trialTemplate.trialParameters", "expected a list of {name, reference}");
    for (size_t i = 0; i < tp.size(); ++i) {
      std::string p = fmt::format("spec.trialTemplate.trialParameters[{}]", i);
      w.expectMap(tp[i], p, {"name", "description", "reference"});
      if (!tp[i]["name"] || !tp[i]["reference"]) w.fail(tp[i], p, "each trial parameter needs name and reference");
      std::string ref = w.str(tp[i]["reference"], p + ".reference");
      bool known = std::any_of(e.space.params.begin(), e.space.params.end(), [&](const auto& q) { return q.name == ref; });
      if (!known) w.fail(tp[i]["reference"], p + ".reference", fmt::format("no parameter named \"{}\"", ref));
      e.trial_parameters[w.str(tp[i]["name"], p + ".name")] = ref;
    }
  }
  for (const auto& p : e.space.params)
    if (!e.trial_parameters.count(p.name)) e.trial_parameters[p.name] = p.name;
  e.trial_template = text;
  e.trial_parameters[kTemplatePathKey] = "spec.trialTemplate.trialSpec";
  return e;
}

TrainJobSpec ExperimentSpec::sampleTrial(std::vector<std::string>* warnings) const {
  std::map<std::string, std::string> sample;
  for (const auto& p : space.params) sample[p.name] = p.format(p.fromUnit(0.5));
  return trialJob(sample, name + "-0", warnings);
}

TrainJobSpec ExperimentSpec::trialJob(const std::map<std::string, std::string>& values, const std::string& job_name,
                                      std::vector<std::string>* warnings) const {
  YAML::Node root = YAML::Load(trial_template);
  std::vector<std::string> overridden;
  for (const auto& arg : overrides) {
    Override o = parseOverride(arg);
    applyOverride(root, o);
    overridden.push_back(o.path);
  }
  Walker w(source_file, overridden);
  std::string tpath = trial_parameters.at(kTemplatePathKey);
  std::vector<std::string> keys;
  for (size_t p = 0, q; p <= tpath.size(); p = q + 1) {
    q = tpath.find('.', p);
    if (q == std::string::npos) q = tpath.size();
    keys.push_back(tpath.substr(p, q - p));
  }
  YAML::Node templ = at(root, keys);
  if (!templ.IsMap()) w.fail(templ, tpath, fmt::format("expected a mapping (a job), got {}", typeName(templ)));

  // ${trialParameters.NAME} and ${trialSpec.Name} in every scalar, in place
  // (so the nodes keep their line and column for errors).
  static const std::regex kRef(R"(\$\{(trialParameters|trialSpec)\.([A-Za-z0-9_\-\.]+)\})");
  std::function<void(YAML::Node, const std::string&)> substitute = [&](YAML::Node n, const std::string& path) {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s.find("${") == std::string::npos) return;
      std::string out;
      auto begin = std::sregex_iterator(s.begin(), s.end(), kRef);
      size_t last = 0;
      for (auto it = begin; it != std::sregex_iterator(); ++it) {
        out += s.substr(last, static_cast<size_t>(it->position()) - last);
        std::string kind = (*it)[1], name = (*it)[2];
        if (kind == "trialSpec") {
          if (name != "Name") w.fail(n, path, fmt::format("${{trialSpec.{}}} is not available (only ${{trialSpec.Name}})", name));
          out += job_name;
        } else {
          auto ref = trial_parameters.find(name);
          if (ref == trial_parameters.end() || name == kTemplatePathKey) {
            std::string known;
            for (const auto& [k, v] : trial_parameters)
              if (k != kTemplatePathKey) known += (known.empty() ? "" : ", ") + k;
            w.fail(n, path, fmt::format("unknown trial parameter \"{}\" (known: {})", name, known));
          }
          out += values.at(ref->second);
        }
        last = static_cast<size_t>(it->position() + it->length());
      }
      out += s.substr(last);
      n = out;
      return;
    }
    if (n.IsMap())
      for (auto it = n.begin(); it != n.end(); ++it) substitute(it->second, Walker::join(path, it->first.Scalar()));
    if (n.IsSequence())
      for (size_t i = 0; i < n.size(); ++i) substitute(n[i], fmt::format("{}[{}]", path, i));
  };
  substitute(templ, tpath);

  YAML::Node job;
  if (templ["apiVersion"]) {
    job = templ;
  } else {
    job["apiVersion"] = "trainyard.dev/v1";
    job["kind"] = "TrainJob";
    job["spec"] = templ["spec"] ? templ["spec"] : templ;
  }
  job["metadata"]["name"] = job_name;
  std::vector<std::string> local;
  TrainJobSpec spec = parseJobNode(w, job, base_dir, warnings ? *warnings : local);
  spec.name = job_name;
  spec.source_file = source_file;
  if (metrics_collector) spec.metrics = *metrics_collector;
  if (spec.metrics.kind == MetricsCollector::Kind::TensorFlowEvent && spec.metrics.names.empty()) {
    for (const auto& o : objectives) spec.metrics.names.push_back(o.metric);
    for (const auto& m : additional_metrics) spec.metrics.names.push_back(m);
  }
  if (!queue.empty()) spec.queue = queue;
  if (!workspace.empty())
    if (auto [field, path] = pathOutside(spec, workspace); !field.empty())
      throw SpecError(source_file, 0, 0, field, fmt::format("{} is outside your workspace {}", path, workspace));
  return spec;
}

namespace {
nlohmann::json paramJson(const tune::Param& p) {
  static const char* kTypes[] = {"double", "int", "categorical", "discrete"};
  return {{"name", p.name}, {"type", kTypes[static_cast<int>(p.type)]}, {"min", p.min}, {"max", p.max},
          {"step", p.step}, {"log", p.log}, {"values", p.values}};
}
tune::Param paramFrom(const nlohmann::json& j) {
  tune::Param p;
  p.name = j.at("name");
  std::string t = j.at("type");
  p.type = t == "int" ? tune::Param::Type::Int : t == "categorical" ? tune::Param::Type::Categorical
           : t == "discrete" ? tune::Param::Type::Discrete : tune::Param::Type::Double;
  p.min = j.value("min", 0.0);
  p.max = j.value("max", 1.0);
  p.step = j.value("step", 0.0);
  p.log = j.value("log", false);
  p.values = j.value("values", std::vector<std::string>{});
  return p;
}
}  // namespace

void to_json(nlohmann::json& j, const ExperimentSpec& s) {
  nlohmann::json objectives = nlohmann::json::array(), params = nlohmann::json::array();
  for (const auto& o : s.objectives) objectives.push_back({{"metric", o.metric}, {"maximize", o.maximize}, {"strategy", o.strategy}});
  for (const auto& p : s.space.params) params.push_back(paramJson(p));
  j = {{"apiVersion", s.api_version}, {"kind", s.kind}, {"name", s.name}, {"labels", s.labels},
       {"objectives", objectives}, {"additionalMetrics", s.additional_metrics},
       {"additionalStrategies", s.additional_strategies}, {"algorithm", s.algorithm},
       {"algorithmSettings", s.algorithm_settings}, {"earlyStopping", s.early_stopping},
       {"earlyStoppingSettings", s.early_stopping_settings}, {"parameters", params},
       {"parallelTrials", s.parallel_trials}, {"maxTrials", s.max_trials}, {"maxFailedTrials", s.max_failed_trials},
       {"seed", s.seed}, {"trialTemplate", s.trial_template}, {"trialParameters", s.trial_parameters},
       {"sourceFile", s.source_file}, {"baseDir", s.base_dir}, {"overrides", s.overrides}};
  if (!s.workspace.empty()) j["workspace"] = s.workspace;
  if (!s.queue.empty()) j["queue"] = s.queue;
  if (!s.resume_policy.empty()) j["resumePolicy"] = s.resume_policy;
  if (s.target) j["target"] = *s.target;
  if (s.metrics_collector) {
    const auto& c = *s.metrics_collector;
    j["metricsCollector"] = {{"kind", static_cast<int>(c.kind)}, {"path", c.path}, {"format", c.format}, {"filter", c.filter},
                             {"command", c.command}};  // names: from the objectives
  }
}

void from_json(const nlohmann::json& j, ExperimentSpec& s) {
  s.api_version = j.value("apiVersion", s.api_version);
  s.kind = j.value("kind", s.kind);
  s.name = j.at("name");
  s.labels = j.value("labels", s.labels);
  s.objectives.clear();
  for (const auto& o : j.at("objectives")) s.objectives.push_back({o.at("metric"), o.at("maximize"), o.value("strategy", "")});
  s.additional_metrics = j.value("additionalMetrics", s.additional_metrics);
  s.additional_strategies = j.value("additionalStrategies", s.additional_strategies);
  s.algorithm = j.value("algorithm", s.algorithm);
  s.algorithm_settings = j.value("algorithmSettings", s.algorithm_settings);
  s.early_stopping = j.value("earlyStopping", s.early_stopping);
  s.early_stopping_settings = j.value("earlyStoppingSettings", s.early_stopping_settings);
  s.space.params.clear();
  for (const auto& p : j.at("parameters")) s.space.params.push_back(paramFrom(p));
  s.parallel_trials = j.value("parallelTrials", s.parallel_trials);
  s.max_trials = j.value("maxTrials", s.max_trials);
  s.max_failed_trials = j.value("maxFailedTrials", s.max_failed_trials);
  s.seed = j.value("seed", s.seed);
  s.trial_template = j.at("trialTemplate");
  s.trial_parameters = j.value("trialParameters", s.trial_parameters);
  s.source_file = j.value("sourceFile", "");
  s.base_dir = j.value("baseDir", "");
  s.workspace = j.value("workspace", "");
  s.queue = j.value("queue", "");
  s.resume_policy = j.value("resumePolicy", "");
  s.overrides = j.value("overrides", std::vector<std::string>{});
  if (j.contains("target")) s.target = j["target"].get<double>();
  if (j.contains("metricsCollector")) {
    const auto& m = j["metricsCollector"];
    MetricsCollector c;
    c.kind = static_cast<MetricsCollector::Kind>(m.value("kind", 0));
    c.path = m.value("path", "");
    c.format = m.value("format", "");
    c.filter = m.value("filter", "");
    c.command = m.value("command", c.command);
    s.metrics_collector = c;
  }
}

}  // namespace trainyard::spec
