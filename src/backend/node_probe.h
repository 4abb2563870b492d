// What this machine offers: cores, memory and NVIDIA GPUs. The environment
// variables TRAINYARD_NODE_CPU, TRAINYARD_NODE_MEMORY and TRAINYARD_NODE_GPUS
// override the probe, to give Trainyard only part of a shared machine.
#pragma once
#include <string>
#include <vector>

#include "sched/resources.h"

namespace trainyard::backend {

sched::Node probeLocalNode();

// This machine as `n` virtual nodes "node-1".."node-n", each with 1/n of the
// cores, memory and GPUs (labelled trainyard.dev/virtual-node=true and
// kubernetes.io/hostname=<name>), so that multi-node gangs, spreading,
// selectors, quotas and node loss run for real on one machine. n <= 1: the
// machine as one node.
std::vector<sched::Node> virtualNodes(const sched::Node& machine, int n);
// The CPUs (of this process' affinity) that virtual node `name` of `n` owns;
// several nodes share CPUs when there are fewer CPUs than nodes.
std::vector<int> virtualNodeCpus(const std::string& name, int n);

}  // namespace trainyard::backend
