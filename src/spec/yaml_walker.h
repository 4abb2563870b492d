// Internal to spec/: walks a YAML tree keeping the field path, so that every
// rejection can name file:line:col, the path and what was expected. Shared by
// the TrainJob parser and the Kubeflow translators.
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "spec/experiment.h"
#include "spec/trainjob.h"

namespace trainyard::spec {

const char* typeName(const YAML::Node& n);

class Walker {
 public:
  // `overridden`: paths set by --set; errors under them name the --set.
  Walker(std::string file, std::vector<std::string> overridden)
      : file_(std::move(file)), overridden_(std::move(overridden)) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& path, const std::string& msg) const;
  // "file:line:col: path: msg" for a warning that does not stop parsing.
  std::string locate(const YAML::Node& at, const std::string& path, const std::string& msg) const;

  // A mapping with a closed set of keys: an unknown key is an error at that key.
  void expectMap(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) const;
  std::string str(const YAML::Node& n, const std::string& path) const;
  int64_t integer(const YAML::Node& n, const std::string& path, int64_t min, int64_t max) const;
  double number(const YAML::Node& n, const std::string& path, double min, double max) const;
  bool boolean(const YAML::Node& n, const std::string& path) const;  // YAML 1.2 core: true/false
  std::vector<std::string> strList(const YAML::Node& n, const std::string& path) const;
  std::map<std::string, std::string> strMap(const YAML::Node& n, const std::string& path) const;
  // A command: a list of strings, or one string; never empty.
  std::vector<std::string> command(const YAML::Node& n, const std::string& path) const;
  std::string name(const YAML::Node& n, const std::string& path) const;  // DNS-1123

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> overridden_;
};

// env: Kubernetes' list of {name, value} or a plain mapping. `valueFrom`
// entries are skipped with a warning (they need a cluster) when `warnings`
// is given, rejected otherwise.
std::vector<std::pair<std::string, std::string>> parseEnv(const Walker& w, const YAML::Node& n, const std::string& path,
                                                          std::vector<std::string>* warnings = nullptr);
// Flat resources {cpu, memory, gpu}.
Resources parseResources(const Walker& w, const YAML::Node& n, const std::string& path);
// Quantities, with the field path in errors.
int64_t parseCpuField(const Walker& w, const YAML::Node& n, const std::string& path);
int64_t parseMemoryField(const Walker& w, const YAML::Node& n, const std::string& path);
// Never | OnFailure | ExitCode (and Kubernetes' Always, mapped to OnFailure when allow_always).
RestartPolicy parseRestartPolicy(const Walker& w, const YAML::Node& n, const std::string& path);
// Seconds from "90", "90s", "30m", "2h" or "1d".
int64_t parseDuration(const Walker& w, const YAML::Node& n, const std::string& path);
// Resolves `dir` against `base` to an absolute, normalised path.
std::string resolveDir(const std::string& base, const std::string& dir);

// A job manifest of any accepted kind (TrainJob, kubeflow.org/v1 PyTorchJob,
// TFJob, MPIJob, batch/v1 Job) as a TrainJobSpec.
TrainJobSpec parseJobNode(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                          std::vector<std::string>& warnings);

// Experiments (spec/experiment.cc): Trainyard's, and Katib's translated.
// `text` is the whole file, kept so that trials re-read their template with line numbers.
ExperimentSpec parseExperiment(const Walker& w, const YAML::Node& root, const std::string& text,
                               std::vector<std::string>& warnings);
ExperimentSpec translateKatibExperiment(const Walker& w, const YAML::Node& root, const std::string& text,
                                        std::vector<std::string>& warnings);

}  // namespace trainyard::spec
