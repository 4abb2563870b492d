// Distributed wiring: the environment (and config files) each replica needs
// so that a program written for Kubeflow's training operator runs unchanged.
// Pure: the backend resolves addresses, this decides what goes where.
//
//   pytorch     MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK and
//               torchrun's PET_NNODES, PET_NODE_RANK, PET_NPROC_PER_NODE,
//               PET_MASTER_ADDR, PET_MASTER_PORT. Rank 0 is master-0 (else
//               worker-0); workers follow in order.
//   tensorflow  TF_CONFIG = {"cluster": {role: ["host:port", ...]},
//               "task": {"type", "index"}, "environment": "cloud"}; the
//               evaluator is left out of "cluster".
//   mpi         a hostfile ("host slots=N" per worker host) for the
//               launcher, OMPI_MCA_orte_default_hostfile pointing at it,
//               OMPI_MCA_orte_keep_fqdn_hostnames, OMPI_MCA_orte_set_default_slots.
#pragma once
#include <string>
#include <vector>

#include "backend/backend.h"
#include "spec/trainjob.h"

namespace trainyard::dist {

struct WireOptions {
  // mpirun refuses to start as root unless told it is deliberate (containers
  // and CI machines commonly run as root).
  bool as_root = false;
};

// `endpoints[i]` is the address of `job.replicas[i]`. Adds env to the
// replicas and config files to the job (backend::PlacedJob::files).
void wire(const spec::TrainJobSpec& spec, backend::PlacedJob& job, const std::vector<backend::Endpoint>& endpoints,
          const WireOptions& opts = {});

// The TF_CONFIG value for one replica (exposed for tests).
std::string tfConfig(const backend::PlacedJob& job, const std::vector<backend::Endpoint>& endpoints, size_t replica);

}  // namespace trainyard::dist
