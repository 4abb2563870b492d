#include "spec/notebook.h"

#include <fmt/format.h>

#include "spec/schema.h"
#include "spec/yaml_walker.h"

namespace trainyard::spec {

NotebookSpec parseNotebook(const Walker& w, const YAML::Node& root, const std::string& base_dir) {
  NotebookSpec nb;
  w.expectMap(root, "", {"apiVersion", "kind", "metadata", "spec"});
  YAML::Node meta = root["metadata"];
  if (!meta) w.fail(root, "metadata", "missing required field 'metadata' (with a name)");
  w.expectMap(meta, "metadata", {"name", "labels", "annotations", "namespace"});
  if (!meta["name"]) w.fail(meta, "metadata.name", "missing required field 'name'");
  nb.name = w.name(meta["name"], "metadata.name");
  if (meta["labels"]) nb.labels = w.strMap(meta["labels"], "metadata.labels");
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
  YAML::Node m(YAML::NodeType::Map);
  m["name"] = meta["name"];
  job["metadata"] = m;
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    std::string key = it->first.Scalar();
    if (key != "idleTimeout") js[key] = it->second;
  }
  js["command"] = YAML::Load("[jupyter-notebook]");
  job["spec"] = js;
  std::vector<std::string> warnings;
  nb.job = parseJobNode(w, job, base_dir, warnings);
  nb.job.labels = nb.labels;
  nb.job.roles.at(0).name = "notebook";
  nb.working_dir_given = static_cast<bool>(spec["workingDir"]);
  if (auto t = spec["idleTimeout"])
    nb.idle_timeout_seconds = t.IsScalar() && t.Scalar() == "0" ? 0 : parseDuration(w, t, "spec.idleTimeout");
  nb.source_file = w.file();
  return nb;
}

}  // namespace trainyard::spec
