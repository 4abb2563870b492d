#include "backend/cgroup.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace trainyard::backend {
namespace fs = std::filesystem;
namespace {

bool writeFile(const fs::path& p, const std::string& value) {
  std::ofstream out(p);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool writableDir(const fs::path& p) { return fs::is_directory(p) && ::access(p.c_str(), W_OK) == 0; }

// Counter "oom_kill N" in memory.events (v2) or memory.oom_control (v1).
long counter(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  long v;
  while (in >> k >> v)
    if (k == key) return v;
  return 0;
}

}  // namespace

Cgroups::Cgroups(const std::string& root) : root_(root) {
  fs::path r(root);
  if (fs::exists(r / "cgroup.controllers")) {
    if (writableDir(r)) mode_ = Mode::V2;
    else why_ = fmt::format("{} (cgroup v2) is not writable", root);
  } else if (fs::is_directory(r / "memory")) {
    if (writableDir(r / "memory")) mode_ = Mode::V1;
    else why_ = fmt::format("{}/memory (cgroup v1) is not writable", root);
  } else {
    why_ = fmt::format("no cgroup hierarchy under {}", root);
  }
}

Cgroups::Group Cgroups::create(const std::string& id, int64_t memory_bytes, int64_t cpu_millis, std::string& warning) {
  Group g;
  std::error_code ec;
  if (memory_bytes <= 0 && cpu_millis <= 0) return g;  // nothing to enforce: no cgroup, no cost
  if (mode_ == Mode::None) {
    warning = "limits not enforced: " + why_;
    return g;
  }
  if (mode_ == Mode::V2) {
    fs::path parent = fs::path(root_) / "trainyard";
    fs::create_directories(parent, ec);
    // Controllers must be enabled on every ancestor for the leaf to get them.
    writeFile(fs::path(root_) / "cgroup.subtree_control", "+memory +cpu");
    writeFile(parent / "cgroup.subtree_control", "+memory +cpu");
    fs::path dir = parent / id;
    fs::create_directories(dir, ec);
    if (ec) {
      warning = fmt::format("limits not enforced: cannot create {}: {}", dir.string(), ec.message());
      return g;
    }
    g.dirs.push_back(dir);
    g.memory_dir = dir;
    bool ok = true;
    if (memory_bytes > 0) ok &= writeFile(dir / "memory.max", std::to_string(memory_bytes));
    if (memory_bytes > 0) writeFile(dir / "memory.swap.max", "0");
    if (cpu_millis > 0) ok &= writeFile(dir / "cpu.max", fmt::format("{} 100000", cpu_millis * 100));
    if (!ok) warning = fmt::format("limits partly not enforced: {} rejected a limit", dir.string());
    g.procs_files.push_back(dir / "cgroup.procs");
    return g;
  }
  // v1: one directory per hierarchy. The memory group only when there is a
  // limit: moving a process into a v1 memory cgroup costs ~20 ms (measured),
  // which would quadruple the launch latency of every job.
  if (memory_bytes > 0) {
    fs::path mem = fs::path(root_) / "memory" / "trainyard" / id;
    fs::create_directories(mem, ec);
    if (ec) {
      warning = fmt::format("memory limit not enforced: cannot create {}: {}", mem.string(), ec.message());
    } else {
      g.dirs.push_back(mem);
      g.memory_dir = mem;
      g.procs_files.push_back(mem / "cgroup.procs");
      if (!writeFile(mem / "memory.limit_in_bytes", std::to_string(memory_bytes)))
        warning = fmt::format("memory limit not enforced: {} rejected it", mem.string());
      writeFile(mem / "memory.swappiness", "0");
    }
  }
  fs::path cpu = fs::path(root_) / "cpu" / "trainyard" / id;
  if (cpu_millis > 0 && writableDir(fs::path(root_) / "cpu")) {
    fs::create_directories(cpu, ec);
    if (!ec) {
      writeFile(cpu / "cpu.cfs_period_us", "100000");
      if (writeFile(cpu / "cpu.cfs_quota_us", std::to_string(cpu_millis * 100))) {
        g.dirs.push_back(cpu);
        g.procs_files.push_back(cpu / "cgroup.procs");
      }
    }
  }
  return g;
}

bool Cgroups::oomKilled(const Group& g) const {
  if (g.memory_dir.empty()) return false;
  fs::path d(g.memory_dir);
  if (mode_ == Mode::V2) return counter(readFile(d / "memory.events"), "oom_kill") > 0;
  return counter(readFile(d / "memory.oom_control"), "oom_kill") > 0;
}

void Cgroups::killAll(const Group& g) const {
  for (const auto& dir : g.dirs) {
    std::istringstream in(readFile(fs::path(dir) / "cgroup.procs"));
    pid_t pid;
    while (in >> pid)
      if (pid > 0) ::kill(pid, SIGKILL);
  }
}

bool Cgroups::remove(const Group& g) const {
  bool all = true;
  for (const auto& dir : g.dirs)
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) all = false;
  return all;
}

}  // namespace trainyard::backend
