// Pareto dominance for multi-objective experiments (all objectives minimised).
#pragma once
#include <vector>

namespace trainyard::tune {

bool dominates(const std::vector<double>& a, const std::vector<double>& b);
// Non-dominated sorting: the front index (0 = Pareto front) of each point.
std::vector<int> paretoRanks(const std::vector<std::vector<double>>& points);
// Crowding distance of each point within its front (larger = more isolated).
std::vector<double> crowding(const std::vector<std::vector<double>>& points, const std::vector<int>& ranks);

}  // namespace trainyard::tune
