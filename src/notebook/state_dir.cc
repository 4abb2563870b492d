#include "notebook/state_dir.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace trainyard::notebook {
namespace fs = std::filesystem;
namespace {

std::string randomHex(size_t bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!in.read(raw.data(), static_cast<std::streamsize>(bytes))) throw std::runtime_error("cannot read /dev/urandom");
  std::string out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

void writeSecret(const fs::path& file, const std::string& value) {
  fs::path tmp = file.string() + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << value;
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
  }
  chmod(tmp.c_str(), 0600);
  fs::rename(tmp, file);
}

void own(const fs::path& p, int uid, int gid) {
  if (uid >= 0 && chown(p.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
    throw std::runtime_error(fmt::format("cannot hand {} to the jobs' user: {}", p.string(), std::strerror(errno)));
}
}  // namespace

std::string stateDir(const std::string& data_dir, const std::string& job_name) {
  return (fs::path(data_dir) / "notebooks" / job_name).string();
}

void prepareStateDir(const std::string& dir, const std::string& job_name, int uid, int gid) {
  fs::path d(dir);
  std::error_code ec;
  fs::create_directories(d.parent_path(), ec);
  chmod(d.parent_path().c_str(), 0711);  // traversable by the jobs' user, not listable
  fs::create_directories(d, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot create {}: {}", dir, ec.message()));
  chmod(d.c_str(), 0700);
  own(d, uid, gid);
  for (const char* sub : {"runtime", "config", "data", "ipython", "matplotlib"}) {
    fs::create_directories(d / sub, ec);
    chmod((d / sub).c_str(), 0700);
    own(d / sub, uid, gid);
  }
  // Server-info files of an earlier run name ports that are gone.
  for (const auto& e : fs::directory_iterator(d / "runtime", ec))
    if (e.path().filename().string().rfind("nbserver-", 0) == 0) fs::remove(e.path(), ec);
  writeSecret(d / "jupyter-token", randomHex(24));
  writeSecret(d / "user-token", fmt::format("tynb.{}.{}", job_name, randomHex(24)));
  own(d / "jupyter-token", uid, gid);
  own(d / "user-token", uid, gid);
}

std::string readSecret(const std::string& dir, const std::string& file) {
  std::ifstream in(fs::path(dir) / file);
  std::string s;
  std::getline(in, s);
  return s;
}

std::optional<int> jupyterPort(const std::string& dir) {
  std::error_code ec;
  fs::file_time_type newest{};
  std::optional<int> port;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "runtime", ec)) {
    auto name = e.path().filename().string();
    if (name.rfind("nbserver-", 0) != 0 || !name.ends_with(".json")) continue;
    auto t = e.last_write_time(ec);
    if (port && t < newest) continue;
    std::ifstream in(e.path());
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("port") || !j["port"].is_number_integer()) continue;
    int p = j["port"].get<int>();
    if (p <= 0 || p > 65535) continue;
    port = p;
    newest = t;
  }
  return port;
}

std::optional<std::string> jobOfUserToken(const std::string& token) {
  if (token.rfind("tynb.", 0) != 0) return std::nullopt;
  auto dot = token.find('.', 5);
  if (dot == std::string::npos || dot == 5 || dot - 5 > 63) return std::nullopt;
  std::string job = token.substr(5, dot - 5);
  if (job.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos) return std::nullopt;
  return job;
}

int freeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("cannot open a socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  if (port == 0) throw std::runtime_error("no free port on 127.0.0.1");
  return port;
}

bool sameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

}  // namespace trainyard::notebook
