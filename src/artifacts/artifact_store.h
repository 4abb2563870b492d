// Where a job's outputs live, and how anyone reaches them: listed and read
// by a path relative to the job's outputs root (TRAINYARD_OUTPUT_DIR). The
// API, the dashboard and `trainyard outputs` go through this contract, not
// the filesystem, so that a backend whose outputs go elsewhere (an object
// store beside a cluster) implements it once. One implementation today:
// a directory this machine can read (the local backend's outputs, or the
// shared filesystem of a Slurm cluster).
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainyard::artifacts {

struct Entry {
  std::string path;  // relative to the root, '/'-separated
  uint64_t size = 0;
  double modified = 0;  // seconds since the epoch
};

// A path that is not a file under the root (absolute, "..", a symlink, a
// directory, missing): status 400 for a malformed path, 404 otherwise.
struct ArtifactError : std::runtime_error {
  ArtifactError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

class ArtifactStore {
 public:
  virtual ~ArtifactStore() = default;
  // The files under `root` (recursively), sorted by path, at most `limit`;
  // `truncated` says whether there were more. A missing root lists nothing.
  virtual std::vector<Entry> list(const std::string& root, size_t limit, bool* truncated) = 0;
  // The file `path` under `root`. Throws ArtifactError.
  virtual Entry stat(const std::string& root, const std::string& path) = 0;
  // Up to `max_bytes` of it from `offset` (fewer at its end). Throws ArtifactError.
  virtual std::string read(const std::string& root, const std::string& path, uint64_t offset, size_t max_bytes) = 0;
};

// Outputs in a directory on this machine. Symlinks are not followed (the
// reader may be root and a job's user plants them): they are neither
// listed nor read.
std::unique_ptr<ArtifactStore> makeDirectoryStore();

// Whether `path` is a relative path of plain segments (no "", ".", "..",
// no NUL or backslash), at most 4096 bytes.
bool isSafeRelativePath(const std::string& path);

// A Content-Type a browser may be given for an output, by its extension:
// images and plain text are shown, anything else (HTML, SVG, scripts...)
// only downloaded, so a job cannot put a page on the dashboard's origin.
std::string safeContentType(const std::string& path, bool* inline_ok);

}  // namespace trainyard::artifacts
