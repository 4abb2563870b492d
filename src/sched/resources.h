// Resource arithmetic for scheduling. Pure value types, no I/O.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace trainyard::sched {

struct Resources {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  int gpu = 0;

  Resources& operator+=(const Resources& o);
  Resources& operator-=(const Resources& o);
  // True when every dimension of `r` fits within this.
  bool covers(const Resources& r) const;
  // "cpu (needs 2, 1 free), memory (...)": the dimensions where `need` exceeds this.
  std::string shortfall(const Resources& need) const;
};

// A machine the scheduler may place replicas on; filled by Backend::capacity().
struct Node {
  std::string name;
  Resources allocatable;
  std::vector<int> gpu_ids;  // device indices as the backend numbers them
};

}  // namespace trainyard::sched
