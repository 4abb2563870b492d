#include "k8s/nodes.h"

#include <nlohmann/json.hpp>

#include "spec/quantity.h"

namespace trainyard::k8s {
using json = nlohmann::json;

sched::Node nodeFromObject(const json& node, std::string* problem) {
  sched::Node n;
  bool bad = false;
  auto fail = [&](const std::string& why) {
    if (problem && !bad) *problem = why;
    bad = true;
  };
  const json& meta = node.value("metadata", json::object());
  n.name = meta.value("name", "");
  if (meta.contains("labels") && meta["labels"].is_object())
    for (const auto& [k, v] : meta["labels"].items())
      if (v.is_string()) n.labels[k] = v.get<std::string>();
  const json& status = node.value("status", json::object());
  const json& alloc = status.value("allocatable", json::object());
  auto quantity = [&](const char* key) -> std::string {
    return alloc.contains(key) && alloc[key].is_string() ? alloc[key].get<std::string>() : "";
  };
  if (auto cpu = spec::parseCpuMillis(quantity("cpu"))) n.allocatable.cpu_millis = *cpu;
  else fail("status.allocatable.cpu: not a quantity");
  if (auto mem = spec::parseMemoryBytes(quantity("memory"))) n.allocatable.memory_bytes = *mem;
  else fail("status.allocatable.memory: not a quantity");
  if (std::string gpus = quantity("nvidia.com/gpu"); !gpus.empty()) {
    // Whole devices, as the device plugin counts them.
    auto g = spec::parseCpuMillis(gpus);
    if (g && *g % 1000 == 0 && *g / 1000 <= 1024) n.allocatable.gpu = static_cast<int>(*g / 1000);
    else fail("status.allocatable.nvidia.com/gpu: not a whole number of devices");
  }
  for (int i = 0; i < n.allocatable.gpu; ++i) n.gpu_ids.push_back(i);
  bool ready = false;
  if (status.contains("conditions") && status["conditions"].is_array())
    for (const auto& c : status["conditions"])
      if (c.value("type", "") == "Ready") ready = c.value("status", "") == "True";
  const json& spec = node.value("spec", json::object());
  bool cordoned = spec.value("unschedulable", false);
  bool tainted = false;
  if (spec.contains("taints") && spec["taints"].is_array())
    for (const auto& t : spec["taints"]) {
      std::string effect = t.value("effect", "");
      tainted |= effect == "NoSchedule" || effect == "NoExecute";
    }
  n.schedulable = ready && !cordoned && !tainted && !bad;
  return n;
}

std::vector<sched::Node> nodesFromList(const json& list) {
  std::vector<sched::Node> out;
  if (list.contains("items") && list["items"].is_array())
    for (const auto& item : list["items"]) out.push_back(nodeFromObject(item));
  return out;
}

}  // namespace trainyard::k8s
