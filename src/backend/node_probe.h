// What this machine offers: cores, memory and NVIDIA GPUs. The environment
// variables TRAINYARD_NODE_CPU, TRAINYARD_NODE_MEMORY and TRAINYARD_NODE_GPUS
// override the probe, to give Trainyard only part of a shared machine.
#pragma once
#include <string>

#include "sched/resources.h"

namespace trainyard::backend {

sched::Node probeLocalNode();

}  // namespace trainyard::backend
