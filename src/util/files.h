// Small file helpers shared by the backend (log files) and collectors.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace trainyard::util {

// Reads up to `max_bytes` of `path` from `offset`; empty when there is nothing
// new or the file does not exist (yet).
std::string readFrom(const std::string& path, uint64_t offset, size_t max_bytes = 1 << 20);

// The last `max_bytes` of `path` (all of a shorter file); empty when it does
// not exist.
std::string readTail(const std::string& path, size_t max_bytes);

// When `path` was last written, in seconds since the epoch; 0 when it does
// not exist. Does not follow a symlink.
double modifiedAt(const std::string& path);

}  // namespace trainyard::util
