// Runs a program (no shell: argv as given) and collects what it prints, for
// backends that drive a cluster through its command-line tools (sbatch,
// squeue, scancel).
#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace trainyard::util {

struct CommandResult {
  int exit_code = -1;  // -1: could not be started, or killed at the timeout
  std::string out, err;
  bool ok() const { return exit_code == 0; }
};

// argv[0] is looked up in PATH when it has no '/'. Killed (exit_code -1,
// err says so) if it has not ended within `timeout`. Never throws.
CommandResult runCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace trainyard::util
