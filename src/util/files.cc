#include "util/files.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

namespace trainyard::util {

std::string readFrom(const std::string& path, uint64_t offset, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out(max_bytes, '\0');
  ssize_t n = ::pread(fd, out.data(), max_bytes, static_cast<off_t>(offset));
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::string readTail(const std::string& path, size_t max_bytes) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {};
  uint64_t size = static_cast<uint64_t>(st.st_size);
  return readFrom(path, size > max_bytes ? size - max_bytes : 0, max_bytes);
}

double modifiedAt(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
}

}  // namespace trainyard::util
