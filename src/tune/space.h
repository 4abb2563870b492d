// Search spaces: parameters, and the mapping between a parameter's values and
// the unit interval the samplers work in. Pure.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trainyard::tune {

struct Param {
  enum class Type { Double, Int, Categorical, Discrete };
  std::string name;
  Type type = Type::Double;
  double min = 0, max = 1;
  double step = 0;  // Int: default 1; Double: 0 = continuous
  bool log = false;
  std::vector<std::string> values;  // Categorical / Discrete (Discrete: numbers)

  bool isCategorical() const { return type == Type::Categorical; }
  // Number of distinct values; 0 for continuous.
  size_t cardinality() const;
  // A value (Double/Int: the number; Categorical/Discrete: the index) to [0, 1] and back.
  double toUnit(double v) const;
  double fromUnit(double u) const;  // snaps to the grid (step, integers, indices)
  // How the value is written into a trial (${trialParameters.NAME}).
  std::string format(double v) const;
};

struct SearchSpace {
  std::vector<Param> params;
  size_t size() const { return params.size(); }
};

// A point: one value per parameter, as Param::fromUnit returns them.
using Point = std::vector<double>;

// Objective direction and how to read a trial's value from its series.
struct Objective {
  std::string metric;
  bool maximize = false;
  std::string strategy;  // min | max | latest; default: max when maximizing, else min
};

}  // namespace trainyard::tune
