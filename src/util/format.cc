#include "util/format.h"

#include <cmath>

#include <fmt/format.h>

namespace trainyard::util {

std::string formatValue(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{:.6g}", v);
}

}  // namespace trainyard::util
