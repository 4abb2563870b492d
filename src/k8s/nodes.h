// Kubernetes Node objects as the scheduler sees nodes (sched::Node): what
// is allocatable (cpu, memory, nvidia.com/gpu), labels, and whether new
// pods may go there (Ready, not cordoned, no NoSchedule/NoExecute taint).
// Pure: JSON in, nodes out, so Trainyard's gang binder and the tests share it.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "sched/resources.h"

namespace trainyard::k8s {

// One Node object; a field that cannot be read counts as nothing (a node
// reporting garbage takes no pods), with why in `problem`.
sched::Node nodeFromObject(const nlohmann::json& node, std::string* problem = nullptr);

// Every item of a NodeList.
std::vector<sched::Node> nodesFromList(const nlohmann::json& list);

}  // namespace trainyard::k8s
