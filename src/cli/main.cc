#include <cstring>

#include "backend/container/podman.h"
#include "backend/slurm/steps.h"
#include "backend/supervisor.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  // The replica supervisor (see backend/supervisor.h) is not a user verb.
  if (argc > 1 && std::strcmp(argv[1], "__supervise") == 0) return trainyard::backend::runSupervisor(argc, argv);
  // The slurm backend's batch step and tasks on the nodes (backend/slurm/steps.h).
  if (argc > 1 && std::strcmp(argv[1], "__slurm-batch") == 0) return trainyard::backend::slurm::runBatchStep(argc, argv);
  if (argc > 1 && std::strcmp(argv[1], "__slurm-task") == 0) return trainyard::backend::slurm::runTask(argc, argv);
  // spec.build's step before a container runs (backend/container/podman.h).
  if (argc > 1 && std::strcmp(argv[1], "__container-build") == 0) return trainyard::backend::podman::runBuildStep(argc, argv);
  return trainyard::cli::runMain(argc, argv);
}
