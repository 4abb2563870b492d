#include "serving/model_config.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "spec/parser.h"
#include "spec/yaml_walker.h"

namespace trainyard::serving {
namespace {

std::vector<TensorSpec> tensorList(const spec::Walker& w, const YAML::Node& n, const std::string& path) {
  if (!n.IsSequence()) w.fail(n, path, "expected a list of {name, datatype, shape}");
  std::vector<TensorSpec> out;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string p = fmt::format("{}[{}]", path, i);
    w.expectMap(n[i], p, {"name", "datatype", "shape"});
    TensorSpec t;
    t.name = n[i]["name"] ? w.str(n[i]["name"], p + ".name") : fmt::format("{}{}", path == "inputs" ? "input" : "output", i);
    if (n[i]["datatype"]) {
      auto dt = dataTypeFromName(w.str(n[i]["datatype"], p + ".datatype"));
      if (!dt) w.fail(n[i]["datatype"], p + ".datatype", "expected one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64");
      t.dtype = *dt;
    }
    if (!n[i]["shape"] || !n[i]["shape"].IsSequence() || n[i]["shape"].size() == 0)
      w.fail(n[i]["shape"] ? n[i]["shape"] : n[i], p + ".shape", "expected a list of dimensions, e.g. [-1, 784] (-1: the batch)");
    for (size_t d = 0; d < n[i]["shape"].size(); ++d) {
      int64_t v = w.integer(n[i]["shape"][d], fmt::format("{}.shape[{}]", p, d), -1, 1 << 30);
      if (v == 0) w.fail(n[i]["shape"][d], fmt::format("{}.shape[{}]", p, d), "a dimension is -1 (variable) or positive");
      t.shape.push_back(v);
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

ModelConfig loadModelConfig(const std::string& path) {
  ModelConfig c;
  if (!std::filesystem::exists(path)) return c;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw spec::SpecError(path, e.mark.line + 1, e.mark.column + 1, "", e.msg);
  }
  spec::Walker w(path, {});
  if (!root || root.IsNull()) return c;
  w.expectMap(root, "", {"inputs", "outputs", "max_batch_size", "max_queue_delay_us", "preferred_batch_sizes",
                         "queue_capacity", "instances", "intra_op_threads", "version_policy", "labels"});
  if (root["inputs"]) c.inputs = tensorList(w, root["inputs"], "inputs");
  if (root["outputs"]) c.outputs = tensorList(w, root["outputs"], "outputs");
  if (root["max_batch_size"]) c.max_batch_size = static_cast<int>(w.integer(root["max_batch_size"], "max_batch_size", 0, 65536));
  if (root["max_queue_delay_us"]) c.max_queue_delay_us = w.integer(root["max_queue_delay_us"], "max_queue_delay_us", 0, 10'000'000);
  if (root["preferred_batch_sizes"]) {
    const auto& n = root["preferred_batch_sizes"];
    if (!n.IsSequence()) w.fail(n, "preferred_batch_sizes", "expected a list of batch sizes");
    for (size_t i = 0; i < n.size(); ++i)
      c.preferred_batch_sizes.push_back(static_cast<int>(w.integer(n[i], fmt::format("preferred_batch_sizes[{}]", i), 1,
                                                                   std::max(1, c.max_batch_size))));
    std::sort(c.preferred_batch_sizes.begin(), c.preferred_batch_sizes.end());
  }
  if (root["queue_capacity"]) c.queue_capacity = static_cast<int>(w.integer(root["queue_capacity"], "queue_capacity", 1, 1 << 20));
  if (root["instances"]) c.instances = static_cast<int>(w.integer(root["instances"], "instances", 1, 64));
  if (root["intra_op_threads"]) c.intra_op_threads = static_cast<int>(w.integer(root["intra_op_threads"], "intra_op_threads", 1, 256));
  if (const auto& vp = root["version_policy"]) {
    w.expectMap(vp, "version_policy", {"latest", "specific", "all"});
    if (vp.size() != 1) w.fail(vp, "version_policy", "expected exactly one of latest, specific, all");
    if (vp["latest"]) {
      c.version_policy.kind = VersionPolicy::Kind::Latest;
      c.version_policy.latest = static_cast<int>(w.integer(vp["latest"], "version_policy.latest", 1, 1000));
    } else if (vp["specific"]) {
      c.version_policy.kind = VersionPolicy::Kind::Specific;
      if (!vp["specific"].IsSequence() || vp["specific"].size() == 0)
        w.fail(vp["specific"], "version_policy.specific", "expected a list of version numbers");
      for (size_t i = 0; i < vp["specific"].size(); ++i)
        c.version_policy.versions.push_back(w.integer(vp["specific"][i], fmt::format("version_policy.specific[{}]", i), 1, INT64_MAX));
    } else {
      c.version_policy.kind = VersionPolicy::Kind::All;
    }
  }
  if (const auto& l = root["labels"]) {
    if (!l.IsMap()) w.fail(l, "labels", "expected a mapping label: version, e.g. {stable: 1, canary: 2}");
    for (auto it = l.begin(); it != l.end(); ++it) {
      std::string key = it->first.as<std::string>();
      c.labels[key] = w.integer(it->second, "labels." + key, 1, INT64_MAX);
    }
  }
  return c;
}

std::vector<int64_t> selectVersions(const VersionPolicy& policy, std::vector<int64_t> on_disk) {
  std::sort(on_disk.begin(), on_disk.end());
  switch (policy.kind) {
    case VersionPolicy::Kind::All: return on_disk;
    case VersionPolicy::Kind::Latest: {
      size_t keep = std::min<size_t>(on_disk.size(), static_cast<size_t>(policy.latest));
      return std::vector<int64_t>(on_disk.end() - keep, on_disk.end());
    }
    case VersionPolicy::Kind::Specific: {
      std::vector<int64_t> out;
      for (auto v : on_disk)
        if (std::find(policy.versions.begin(), policy.versions.end(), v) != policy.versions.end()) out.push_back(v);
      return out;
    }
  }
  return {};
}

}  // namespace trainyard::serving
