// YAML -> typed specs. Every rejection is a SpecError naming the file,
// line:column (1-based), the field path and what was expected, so a user can
// fix the file without reading our code. Parsing never touches the store.
#pragma once
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "spec/experiment.h"
#include "spec/notebook.h"
#include "spec/queue.h"
#include "spec/trainjob.h"

namespace trainyard::spec {

class SpecError : public std::runtime_error {
 public:
  SpecError(std::string file, int line, int column, std::string field, std::string message);
  const std::string file;
  const int line;    // 1-based; 0 when the error is not tied to a line (e.g. a --set)
  const int column;  // 1-based
  const std::string field;  // e.g. "spec.resources.memory"
  const std::string message;
};

struct LoadedSpec {
  std::string kind;  // TrainJob, Experiment, or the Kubeflow kind it was translated from
  TrainJobSpec job;  // when not an experiment
  std::optional<ExperimentSpec> experiment;
  std::optional<QueueDef> queue;  // kind Queue or Cohort
  std::optional<NotebookSpec> notebook;  // kind Notebook
  // "file:line:col: path: ..." for each field that cannot apply here (image,
  // volumes, nodeSelector... on the local backend); never silently dropped.
  std::vector<std::string> warnings;
};

// The largest spec accepted anywhere (a file, a request): 1 MiB.
constexpr size_t kMaxSpecBytes = 1 << 20;

// `overrides` are "path=value" strings from --set, applied before validation;
// relative paths (workingDir) are resolved against `base_dir`. Refused
// before any field is read: more than kMaxSpecBytes, bytes that are not
// UTF-8, several YAML documents in one file, a key twice in one mapping.
LoadedSpec loadSpecString(const std::string& yaml_text, const std::string& file_name,
                          const std::string& base_dir,
                          const std::vector<std::string>& overrides = {});
LoadedSpec loadSpecFile(const std::string& path, const std::vector<std::string>& overrides = {});

// DNS-1123 label, as Kubernetes requires for names: [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63.
bool isValidName(const std::string& name);

}  // namespace trainyard::spec
