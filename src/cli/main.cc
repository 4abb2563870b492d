#include "cli/commands.h"

int main(int argc, char** argv) { return trainyard::cli::runMain(argc, argv); }
