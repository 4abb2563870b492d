#include <cstring>

#include "backend/supervisor.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  // The replica supervisor (see backend/supervisor.h) is not a user verb.
  if (argc > 1 && std::strcmp(argv[1], "__supervise") == 0) return trainyard::backend::runSupervisor(argc, argv);
  return trainyard::cli::runMain(argc, argv);
}
