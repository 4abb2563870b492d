// Resource arithmetic for scheduling. Pure value types, no I/O.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace trainyard::sched {

// What a replica asks for, or what a node has free. GPUs are either whole
// devices (exclusive) or, with GPU sharing on, a share of one device in
// thousandths (`gpu: 0.25` -> gpu_share 250); a request has one or the other.
struct Resources {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  int gpu = 0;
  int gpu_share = 0;

  Resources& operator+=(const Resources& o);
  Resources& operator-=(const Resources& o);
  // True when cpu, memory and whole GPUs of `r` fit within this (shares are
  // placed on devices, see placement.h).
  bool covers(const Resources& r) const;
  // "cpu (needs 2, 1 available), memory (...)": the dimensions where `need` exceeds this.
  std::string shortfall(const Resources& need) const;
};

// The dimensions quotas and fair shares count: cpu in millicores, memory in
// bytes, GPUs in thousandths of a device (so shares add up with whole ones).
inline constexpr int kDims = 3;
inline constexpr const char* kDimNames[kDims] = {"cpu", "memory", "gpu"};
inline constexpr int64_t kUnlimited = INT64_MAX / 4;
using Amounts = std::array<int64_t, kDims>;
Amounts amounts(const Resources& r);
Amounts& operator+=(Amounts& a, const Amounts& b);
Amounts& operator-=(Amounts& a, const Amounts& b);
// One dimension as a person reads it: "4", "6.5 GiB", "0.25"; "unlimited".
std::string formatAmount(int dim, int64_t v);

// A machine the scheduler may place replicas on; filled by Backend::capacity().
struct Node {
  std::string name;
  Resources allocatable;
  std::vector<int> gpu_ids;  // device indices as the backend numbers them
  std::map<std::string, std::string> labels;  // matched by a job's nodeSelector
  // False while drained or down: nothing new is placed there.
  bool schedulable = true;
};

}  // namespace trainyard::sched
