#include "spec/notebook.h"

#include <fmt/format.h>

#include "spec/schema.h"
#include "spec/yaml_walker.h"

namespace trainyard::spec {

NotebookSpec parseNotebook(const Walker& w, const YAML::Node& root, const std::string& base_dir,
                           std::vector<std::string>& warnings) {
  NotebookSpec nb;
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec"});
  if (!root["metadata"]) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  // No spec: every default. (A Node is a reference: assigning to a missing
  // one would write into the document, so the empty one is a node of its own.)
  YAML::Node spec = root["spec"] ? YAML::Node(root["spec"]) : YAML::Node(YAML::NodeType::Map);
  w.expectMap(spec, "spec", schema::keysAt("Notebook", ""));

  // The fields it shares with a TrainJob are parsed as a TrainJob's (the
  // same nodes, so errors point into this file at the same field paths);
  // the command is the server's to set.
  YAML::Node job(YAML::NodeType::Map), js(YAML::NodeType::Map);
  job["apiVersion"] = "trainyard.dev/v1";
  job["kind"] = "TrainJob";
  job["metadata"] = root["metadata"];  // name and labels: the TrainJob's checks
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    std::string key = it->first.Scalar();
    if (key != "idleTimeout") js[key] = it->second;
  }
  js["command"] = YAML::Load("[jupyter-notebook]");
  job["spec"] = js;
  nb.job = parseJobNode(w, job, base_dir, warnings);
  nb.name = nb.job.name;
  nb.labels = nb.job.labels;
  nb.job.roles.at(0).name = "notebook";
  nb.working_dir_given = static_cast<bool>(spec["workingDir"]);
  if (auto t = spec["idleTimeout"])
    nb.idle_timeout_seconds = t.IsScalar() && t.Scalar() == "0" ? 0 : parseDuration(w, t, "spec.idleTimeout");
  nb.source_file = w.file();
  return nb;
}

}  // namespace trainyard::spec
