// Byte-offset cursors, for backends whose logs and files are byte streams
// they can seek (the local backend's files, the fake's strings). Above the
// Backend contract a cursor is opaque: "" is the start, "tail:N" the last N
// bytes, anything else what a previous read returned as `next`.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "backend/backend.h"

namespace trainyard::backend {

// The offset `cursor` means in a stream of `size` bytes (size matters only
// for "tail:N"); nullopt for a cursor this scheme did not issue. `prefix` is
// what this backend puts before the offset ("" locally).
std::optional<uint64_t> cursorOffset(const std::string& cursor, uint64_t size, const std::string& prefix = "");
std::string offsetCursor(uint64_t offset, const std::string& prefix = "");

// Up to `max_bytes` of the local file `path` from `cursor`. A missing file
// reads as empty (a replica that has not written yet).
LogChunk readFileChunk(const std::string& path, const std::string& cursor, size_t max_bytes);

// A file a replica writes, at an absolute path as it sees it, on a
// filesystem this machine shares with it. The reader may be root and the
// writer not: a path through a symlink (a job pointing its metrics file at
// a file only root may read) is not followed; it reads as empty.
LogChunk readReplicaFile(const std::string& path, const std::string& cursor, size_t max_bytes);

// The event files (names containing "tfevents") under the local directory
// `dir`, recursively (4 levels), sorted, at most `max`. Symlinks are not
// followed: the reader may be root and the writer not.
std::vector<std::string> listEventFiles(const std::string& dir, size_t max);

// The local backend's log file of `replica` in `attempt`, under a job's log directory.
std::string logFileName(const std::string& replica, int attempt);
// The local backend's log source without a backend (`trainyard logs` on a
// data directory): the log of `replica` in `attempt` under `log_dir`.
LogChunk readLocalLog(const std::string& log_dir, const std::string& replica, int attempt, const std::string& cursor,
                      size_t max_bytes);

}  // namespace trainyard::backend
