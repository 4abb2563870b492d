// Where a job goes on a Slurm cluster (`spec.slurm`; the slurm backend's
// flags give the defaults). Small and dependency-free: the backend contract
// carries it to the backend.
#pragma once
#include <string>

namespace trainyard::spec {

struct SlurmSpec {
  std::string partition, account, qos, constraint;
  int nodes = 0;           // spread the replicas over this many nodes (0: Slurm decides)
  int tasks_per_node = 0;  // replicas per node (0: Slurm decides, 1 with placement: spread)
  bool empty() const {
    return partition.empty() && account.empty() && qos.empty() && constraint.empty() && nodes == 0 && tasks_per_node == 0;
  }
};

}  // namespace trainyard::spec
