#include "sched/resources.h"

#include <fmt/format.h>

namespace trainyard::sched {

Resources& Resources::operator+=(const Resources& o) {
  cpu_millis += o.cpu_millis;
  memory_bytes += o.memory_bytes;
  gpu += o.gpu;
  gpu_share += o.gpu_share;
  return *this;
}

Resources& Resources::operator-=(const Resources& o) {
  cpu_millis -= o.cpu_millis;
  memory_bytes -= o.memory_bytes;
  gpu -= o.gpu;
  gpu_share -= o.gpu_share;
  return *this;
}

bool Resources::covers(const Resources& r) const {
  return r.cpu_millis <= cpu_millis && r.memory_bytes <= memory_bytes && r.gpu <= gpu;
}

std::string Resources::shortfall(const Resources& need) const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  if (need.cpu_millis > cpu_millis)
    add(fmt::format("cpu (needs {:g}, {:g} available)", need.cpu_millis / 1000.0, cpu_millis / 1000.0));
  if (need.memory_bytes > memory_bytes)
    add(fmt::format("memory (needs {:.1f} GiB, {:.1f} GiB available)", need.memory_bytes / 1073741824.0,
                    memory_bytes / 1073741824.0));
  if (need.gpu > gpu) add(fmt::format("gpu (needs {}, {} available)", need.gpu, gpu));
  return out;
}

Amounts amounts(const Resources& r) { return {r.cpu_millis, r.memory_bytes, r.gpu * 1000LL + r.gpu_share}; }

Amounts& operator+=(Amounts& a, const Amounts& b) {
  for (int d = 0; d < kDims; ++d) a[d] += b[d];
  return a;
}

Amounts& operator-=(Amounts& a, const Amounts& b) {
  for (int d = 0; d < kDims; ++d) a[d] -= b[d];
  return a;
}

std::string formatAmount(int dim, int64_t v) {
  if (v >= kUnlimited) return "unlimited";
  if (dim == 1) return fmt::format("{:.1f} GiB", v / 1073741824.0);
  return fmt::format("{:g}", v / 1000.0);
}

}  // namespace trainyard::sched
