// Per-replica control groups for enforcing memory and CPU limits. Supports
// cgroup v2 (unified) and v1 (memory + cpu hierarchies); where neither is
// writable, limits are reported as not enforced instead of failing the job.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace trainyard::backend {

class Cgroups {
 public:
  enum class Mode { None, V1, V2 };
  // Probes /sys/fs/cgroup once; `root` is for tests.
  explicit Cgroups(const std::string& root = "/sys/fs/cgroup");
  Mode mode() const { return mode_; }
  const std::string& why() const { return why_; }  // why Mode::None

  struct Group {
    std::vector<std::string> dirs;        // one per hierarchy (v1) or one (v2)
    std::vector<std::string> procs_files; // what a child writes "0" to, to join
    std::string memory_dir;               // where OOM kills are counted
  };
  // Creates the group `id` with the limits (0 = unlimited). Returns an empty
  // group (no procs files) when limits cannot be enforced; `warning` says why.
  Group create(const std::string& id, int64_t memory_bytes, int64_t cpu_millis, std::string& warning);
  // True when the kernel OOM-killed something in the group.
  bool oomKilled(const Group& g) const;
  // SIGKILLs every process still in the group (catches escaped grandchildren).
  void killAll(const Group& g) const;
  // Removes the group's directories; false while processes are still in it
  // (killed ones take a moment to go), so the caller can retry later.
  bool remove(const Group& g) const;

 private:
  std::string root_;
  Mode mode_ = Mode::None;
  std::string why_;
};

}  // namespace trainyard::backend
