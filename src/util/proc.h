// Process identity on Linux: a pid alone can be recycled, a pid plus its
// start time (field 22 of /proc/PID/stat, clock ticks since boot) cannot.
#pragma once
#include <cstdint>
#include <optional>

namespace trainyard::util {

// Start time of `pid`, or nothing when no such process exists.
// The state letter of /proc/PID/stat (R, S, D, Z, X...), or nothing when there is no such process.
std::optional<char> processState(long pid);
std::optional<uint64_t> processStartTime(long pid);

}  // namespace trainyard::util
