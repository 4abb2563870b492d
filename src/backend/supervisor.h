// `trainyard __supervise STATUS_FILE [--uid U --gid G --groups A,B] --
// COMMAND...`: runs COMMAND as its child (as user U, when given) and, when it ends, writes "exit N", "signal N"
// or, when COMMAND could not be executed at all, "starterror ERRNO" to STATUS_FILE
// (atomically, by rename). It ignores SIGTERM/SIGINT/SIGHUP itself, so a
// signal sent to the replica's process group ends the command, not the
// record of how it ended. Exits like its child (128+N for signal N).
#pragma once
#include <optional>
#include <string>

namespace trainyard::backend {

int runSupervisor(int argc, char** argv);

struct ExitRecord {
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::optional<int> start_errno;  // the command could not be executed (exit code 127)
};
// Where a replica's supervisor keeps its exit status: beside its log file.
std::string exitStatusFile(const std::string& log_file);
// What a supervisor wrote, or nothing when it did not (killed, not started).
std::optional<ExitRecord> readExitRecord(const std::string& status_file);

struct ReplicaStatus;
// A replica's end as its record says: exit code or signal, and the reason
// (Completed, Error, Signaled; StartError naming `program` when the command
// could not be executed). Every backend whose replicas run under the
// supervisor reads its records so.
void applyExitRecord(const ExitRecord& rec, const std::string& program, ReplicaStatus& status);

}  // namespace trainyard::backend
