// What happens after an attempt fails: Kubeflow's restart policies. Pure.
//   Never     - the job fails.
//   OnFailure - restart while restarts < backoffLimit.
//   ExitCode  - exit codes 1-127 are permanent (fail now); 128-255 (and
//               deaths by signal, reported as 128+signal) are retryable.
#pragma once
#include <optional>
#include <string>

#include "spec/trainjob.h"

namespace trainyard::control {

struct FailureOutcome {
  bool restart = false;
  std::string reason;  // when not restarting: BackoffLimitExceeded, PermanentError or the replica's own reason
};

// `exit_code` is the effective code: the process's, or 128+signal.
FailureOutcome afterFailure(spec::RestartPolicy policy, int restarts_so_far, int backoff_limit, int exit_code,
                            const std::string& replica_reason);

// Effective exit code of a replica: its own, or 128+signal when killed.
int effectiveExitCode(const std::optional<int>& exit_code, const std::optional<int>& signal);

}  // namespace trainyard::control
