// trainyard-supervise: the replica supervisor as a binary of its own (libc
// and libstdc++ only), so starting one per replica costs ~1 ms rather than
// the full trainyard binary's library loading. Same arguments as
// `trainyard __supervise` (see supervisor.h).
#include "backend/supervisor.h"

int main(int argc, char** argv) { return trainyard::backend::runSupervisor(argc, argv); }
