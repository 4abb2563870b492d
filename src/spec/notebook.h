// kind: Notebook (trainyard.dev/v1): a Jupyter server that holds resources
// like a job, proxied by `trainyard server` under /notebooks/<owner>/<name>/
// (docs/notebooks.md). The spec says what it gets; how it is started (the
// command, its token, its port) is the server's business (notebook/).
//
//   apiVersion: trainyard.dev/v1
//   kind: Notebook
//   metadata: {name: explore}
//   spec:
//     resources: {cpu: 2, memory: 4Gi, gpu: 0}
//     image: ...            # optional: a container; else this machine's Python
//     workingDir: ...       # default: the owner's workspace, kept across restarts
//     env: [{name: A, value: b}]
//     idleTimeout: 1h       # no kernel activity this long: stopped; 0: never
//     queue: default
//     priority: 0
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "spec/trainjob.h"

namespace trainyard::spec {

class Walker;
}  // namespace trainyard::spec
namespace YAML {
class Node;
}
namespace trainyard::spec {

inline constexpr int64_t kDefaultIdleTimeoutSeconds = 3600;

struct NotebookSpec {
  std::string name;
  std::map<std::string, std::string> labels;
  // One replica, role "notebook": resources, image, env, workingDir,
  // volumes, queue and priority as a TrainJob's; no command yet.
  TrainJobSpec job;
  bool working_dir_given = false;
  int64_t idle_timeout_seconds = kDefaultIdleTimeoutSeconds;
  std::string source_file;
};

// `root` is a whole manifest of kind Notebook; errors are SpecErrors with
// file:line:col and the field path, as for every kind; what cannot apply
// here goes into `warnings`, as a TrainJob's.
NotebookSpec parseNotebook(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                           std::vector<std::string>& warnings);

}  // namespace trainyard::spec
