#include "tune/space.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace trainyard::tune {

size_t Param::cardinality() const {
  switch (type) {
    case Type::Categorical:
    case Type::Discrete: return values.size();
    case Type::Int: return static_cast<size_t>(std::floor((max - min) / (step > 0 ? step : 1))) + 1;
    case Type::Double: return step > 0 ? static_cast<size_t>(std::floor((max - min) / step + 1e-9)) + 1 : 0;
  }
  return 0;
}

double Param::toUnit(double v) const {
  if (type == Type::Categorical || type == Type::Discrete) return (v + 0.5) / static_cast<double>(values.size());
  double lo = min, hi = max;
  if (type == Type::Int) lo -= 0.5 * (step > 0 ? step : 1), hi += 0.5 * (step > 0 ? step : 1);
  if (log) return (std::log(v) - std::log(lo)) / (std::log(hi) - std::log(lo));
  return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

double Param::fromUnit(double u) const {
  u = std::clamp(u, 0.0, 1.0);
  if (type == Type::Categorical || type == Type::Discrete) {
    double n = static_cast<double>(values.size());
    return std::min(n - 1, std::floor(u * n));
  }
  double lo = min, hi = max;
  double st = type == Type::Int ? (step > 0 ? step : 1) : step;
  if (type == Type::Int) lo -= 0.5 * st, hi += 0.5 * st;
  double v = log ? std::exp(std::log(lo) + u * (std::log(hi) - std::log(lo))) : lo + u * (hi - lo);
  if (st > 0) v = min + std::round((v - min) / st) * st;
  return std::clamp(v, min, max);
}

std::string Param::format(double v) const {
  switch (type) {
    case Type::Categorical:
    case Type::Discrete: return values.at(static_cast<size_t>(v));
    case Type::Int: return fmt::format("{}", static_cast<int64_t>(std::llround(v)));
    case Type::Double: return fmt::format("{}", v);
  }
  return "";
}

}  // namespace trainyard::tune
