#include "control/restart_policy.h"

namespace trainyard::control {

int effectiveExitCode(const std::optional<int>& exit_code, const std::optional<int>& signal) {
  if (signal) return 128 + *signal;
  return exit_code.value_or(255);
}

FailureOutcome afterFailure(spec::RestartPolicy policy, int restarts_so_far, int backoff_limit, int exit_code,
                            const std::string& replica_reason) {
  using spec::RestartPolicy;
  if (policy == RestartPolicy::Never) return {false, replica_reason};
  if (policy == RestartPolicy::ExitCode && exit_code >= 1 && exit_code <= 127) return {false, "PermanentError"};
  if (restarts_so_far >= backoff_limit) return {false, "BackoffLimitExceeded"};
  return {true, ""};
}

}  // namespace trainyard::control
