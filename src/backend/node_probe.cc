#include "backend/node_probe.h"

#include <fmt/format.h>

#include "spec/quantity.h"

#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace trainyard::backend {
namespace {

int64_t memTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemTotal:") return kb * 1024;
  return 0;
}

int gpuCount() {
  // The NVIDIA driver lists one directory per device; no need to exec nvidia-smi.
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

}  // namespace

sched::Node probeLocalNode() {
  sched::Node node;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  node.name = host[0] ? host : "localhost";

  cpu_set_t set;
  int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  node.allocatable.cpu_millis = int64_t{cores} * 1000;
  node.allocatable.memory_bytes = memTotalBytes();
  node.allocatable.gpu = gpuCount();

  // Quantities as in specs ("2", "500m", "8Gi"); an unparsable value keeps the probe.
  if (const char* v = std::getenv("TRAINYARD_NODE_CPU"))
    node.allocatable.cpu_millis = spec::parseCpuMillis(v).value_or(node.allocatable.cpu_millis);
  if (const char* v = std::getenv("TRAINYARD_NODE_MEMORY"))
    node.allocatable.memory_bytes = spec::parseMemoryBytes(v).value_or(node.allocatable.memory_bytes);
  if (const char* v = std::getenv("TRAINYARD_NODE_GPUS")) node.allocatable.gpu = std::atoi(v);
  for (int i = 0; i < node.allocatable.gpu; ++i) node.gpu_ids.push_back(i);
  return node;
}

std::vector<sched::Node> virtualNodes(const sched::Node& machine, int n) {
  if (n <= 1) return {machine};
  std::vector<sched::Node> out;
  for (int i = 0; i < n; ++i) {
    sched::Node v;
    v.name = fmt::format("node-{}", i + 1);
    v.allocatable.cpu_millis = machine.allocatable.cpu_millis / n;
    v.allocatable.memory_bytes = machine.allocatable.memory_bytes / n;
    for (size_t g = 0; g < machine.gpu_ids.size(); ++g)
      if (static_cast<int>(g * n / machine.gpu_ids.size()) == i) v.gpu_ids.push_back(machine.gpu_ids[g]);
    v.allocatable.gpu = static_cast<int>(v.gpu_ids.size());
    v.labels = {{"trainyard.dev/virtual-node", "true"}, {"kubernetes.io/hostname", v.name}};
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<int> virtualNodeCpus(const std::string& name, int n) {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  int index = 0;
  if (name.rfind("node-", 0) != 0 || n <= 1 || cpus.empty()) return {};
  index = std::atoi(name.c_str() + 5) - 1;
  if (index < 0 || index >= n) return {};
  std::vector<int> mine;
  int count = static_cast<int>(cpus.size());
  if (count >= n) {
    for (int c = index * count / n; c < (index + 1) * count / n; ++c) mine.push_back(cpus[c]);
  } else {
    mine.push_back(cpus[index % count]);
  }
  return mine;
}

}  // namespace trainyard::backend
