#include "backend/byte_cursor.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "util/files.h"

namespace trainyard::backend {

std::optional<uint64_t> cursorOffset(const std::string& cursor, uint64_t size, const std::string& prefix) {
  if (cursor.empty()) return 0;
  if (cursor.rfind("tail:", 0) == 0) {
    char* end = nullptr;
    uint64_t tail = std::strtoull(cursor.c_str() + 5, &end, 10);
    if (!end || *end || cursor.size() == 5) return std::nullopt;
    return size > tail ? size - tail : 0;
  }
  if (cursor.compare(0, prefix.size(), prefix) != 0 || cursor.size() == prefix.size()) return std::nullopt;
  const char* digits = cursor.c_str() + prefix.size();
  if (*digits < '0' || *digits > '9') return std::nullopt;
  char* end = nullptr;
  uint64_t offset = std::strtoull(digits, &end, 10);
  if (!end || *end) return std::nullopt;
  return offset;
}

std::string offsetCursor(uint64_t offset, const std::string& prefix) { return prefix + std::to_string(offset); }

LogChunk readFileChunk(const std::string& path, const std::string& cursor, size_t max_bytes) {
  uint64_t size = 0;
  if (cursor.rfind("tail:", 0) == 0) {
    std::error_code ec;
    size = std::filesystem::file_size(path, ec);
    if (ec) size = 0;
  }
  auto offset = cursorOffset(cursor, size);
  if (!offset) return {"", cursor};  // not one of ours: nothing, and no progress
  std::string bytes = util::readFrom(path, *offset, max_bytes);
  return {bytes, offsetCursor(*offset + bytes.size())};
}

std::string logFileName(const std::string& replica, int attempt) { return fmt::format("{}.attempt-{}.log", replica, attempt); }

LogChunk readLocalLog(const std::string& log_dir, const std::string& replica, int attempt, const std::string& cursor,
                      size_t max_bytes) {
  return readFileChunk((std::filesystem::path(log_dir) / logFileName(replica, attempt)).string(), cursor, max_bytes);
}

std::vector<std::string> listEventFiles(const std::string& dir, size_t max) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::error_code ec;
  if (dir.empty() || dir[0] != '/' || !fs::is_directory(fs::symlink_status(dir, ec))) return out;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (size_t seen = 0; !ec && it != end && seen < 10000; it.increment(ec), ++seen) {
    if (it.depth() >= 4) it.disable_recursion_pending();
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (it->path().filename().string().find("tfevents") == std::string::npos) continue;
    out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  if (out.size() > max) out.resize(max);
  return out;
}

LogChunk readReplicaFile(const std::string& path, const std::string& cursor, size_t max_bytes) {
  if (path.empty() || path[0] != '/') return {"", cursor};
  std::error_code ec;
  auto real = std::filesystem::canonical(path, ec);
  if (ec || real != std::filesystem::path(path).lexically_normal()) return {"", cursor};
  return readFileChunk(real.string(), cursor, max_bytes);
}

}  // namespace trainyard::backend
