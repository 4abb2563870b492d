// What `trainyard server --backend kubernetes` does for its operator
// (backend/kubernetes/operator.h): resources become jobs and experiments in
// the store, owned by their namespace's tenant; their status is read back
// as Kubeflow and Katib shape it.
#pragma once
#include <string>

#include "backend/kubernetes/operator.h"
#include "control/control_plane.h"

namespace trainyard::cli {

// `store_location`: the server's store; the hooks open their own
// connection (they run on the operator's thread).
backend::OperatorHooks operatorHooks(control::ControlPlane& plane, const std::string& store_location);

}  // namespace trainyard::cli
