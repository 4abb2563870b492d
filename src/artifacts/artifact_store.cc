#include "artifacts/artifact_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <fmt/format.h>

#include "util/files.h"

namespace trainyard::artifacts {
namespace fs = std::filesystem;

bool isSafeRelativePath(const std::string& path) {
  if (path.empty() || path.size() > 4096 || path.front() == '/') return false;
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos) return false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string seg = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return true;
}

std::string safeContentType(const std::string& path, bool* inline_ok) {
  static const std::map<std::string, std::string> kShown = {
      {".png", "image/png"},   {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"}, {".gif", "image/gif"},
      {".webp", "image/webp"}, {".txt", "text/plain; charset=utf-8"}, {".log", "text/plain; charset=utf-8"},
      {".csv", "text/plain; charset=utf-8"}, {".tsv", "text/plain; charset=utf-8"}, {".md", "text/plain; charset=utf-8"},
      {".yaml", "text/plain; charset=utf-8"}, {".yml", "text/plain; charset=utf-8"}, {".jsonl", "text/plain; charset=utf-8"},
      {".json", "application/json"}};
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = kShown.find(ext);
  *inline_ok = it != kShown.end();
  return it != kShown.end() ? it->second : "application/octet-stream";
}

namespace {

class DirectoryStore final : public ArtifactStore {
 public:
  std::vector<Entry> list(const std::string& root, size_t limit, bool* truncated) override {
    std::vector<Entry> out;
    *truncated = false;
    std::error_code ec;
    if (!fs::is_directory(root, ec) || fs::is_symlink(root, ec)) return out;
    // Symlinks are not followed (the default) and not listed.
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
      if (out.size() == limit) {
        *truncated = true;
        break;
      }
      out.push_back({fs::relative(it->path(), root, ec).generic_string(), it->file_size(ec), util::modifiedAt(it->path())});
    }
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
    return out;
  }

  Entry stat(const std::string& root, const std::string& path) override {
    fs::path file = resolve(root, path);
    std::error_code ec;
    return {path, fs::file_size(file, ec), util::modifiedAt(file)};
  }

  std::string read(const std::string& root, const std::string& path, uint64_t offset, size_t max_bytes) override {
    fs::path file = resolve(root, path);
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ArtifactError(404, fmt::format("output \"{}\" cannot be read", path));
    in.seekg(static_cast<std::streamoff>(offset));
    std::string out(max_bytes, '\0');
    in.read(out.data(), static_cast<std::streamsize>(max_bytes));
    out.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
    return out;
  }

 private:
  // The file, if it is a regular file under root reached without a symlink.
  static fs::path resolve(const std::string& root, const std::string& path) {
    if (!isSafeRelativePath(path))
      throw ArtifactError(400, fmt::format("\"{}\": expected a relative path of plain names (no \"..\", no leading '/')",
                                           path.substr(0, 200)));
    std::error_code ec;
    fs::path base = fs::canonical(root, ec);
    if (ec) throw ArtifactError(404, fmt::format("output \"{}\" does not exist (the job wrote no outputs)", path));
    fs::path lexical = (base / path).lexically_normal();
    fs::path real = fs::canonical(lexical, ec);
    if (ec) throw ArtifactError(404, fmt::format("output \"{}\" does not exist", path));
    if (real != lexical) throw ArtifactError(404, fmt::format("output \"{}\" is a symlink, which is not followed", path));
    if (!fs::is_regular_file(real, ec)) throw ArtifactError(404, fmt::format("output \"{}\" is not a file", path));
    return real;
  }
};

}  // namespace

std::unique_ptr<ArtifactStore> makeDirectoryStore() { return std::make_unique<DirectoryStore>(); }

}  // namespace trainyard::artifacts
