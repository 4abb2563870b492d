#include "tune/pareto.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace trainyard::tune {

bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool strictly = false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) strictly = true;
  }
  return strictly;
}

std::vector<int> paretoRanks(const std::vector<std::vector<double>>& pts) {
  size_t n = pts.size();
  std::vector<int> rank(n, -1), dominated_by(n, 0);
  std::vector<std::vector<size_t>> dominates_list(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      if (dominates(pts[i], pts[j])) dominates_list[i].push_back(j);
      else if (dominates(pts[j], pts[i])) ++dominated_by[i];
    }
  std::vector<size_t> front;
  for (size_t i = 0; i < n; ++i)
    if (dominated_by[i] == 0) front.push_back(i), rank[i] = 0;
  for (int r = 0; !front.empty(); ++r) {
    std::vector<size_t> next;
    for (size_t i : front)
      for (size_t j : dominates_list[i])
        if (--dominated_by[j] == 0) rank[j] = r + 1, next.push_back(j);
    front = std::move(next);
  }
  return rank;
}

std::vector<double> crowding(const std::vector<std::vector<double>>& pts, const std::vector<int>& ranks) {
  size_t n = pts.size();
  std::vector<double> dist(n, 0.0);
  if (n == 0) return dist;
  size_t m = pts[0].size();
  int max_rank = *std::max_element(ranks.begin(), ranks.end());
  for (int r = 0; r <= max_rank; ++r) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < n; ++i)
      if (ranks[i] == r) idx.push_back(i);
    for (size_t k = 0; k < m; ++k) {
      std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return pts[a][k] < pts[b][k]; });
      double span = pts[idx.back()][k] - pts[idx.front()][k];
      dist[idx.front()] = dist[idx.back()] = std::numeric_limits<double>::infinity();
      for (size_t t = 1; t + 1 < idx.size(); ++t)
        dist[idx[t]] += span > 0 ? (pts[idx[t + 1]][k] - pts[idx[t - 1]][k]) / span : 0;
    }
  }
  return dist;
}

}  // namespace trainyard::tune
