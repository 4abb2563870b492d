// random, grid and sobol: samplers that do not learn from results.
#include "tune/basic_samplers.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "tune/rng.h"

namespace trainyard::tune {

Point randomPoint(const SearchSpace& space, uint64_t seed, int number) {
  Rng rng(seed, static_cast<uint64_t>(number));
  Point p;
  for (const auto& param : space.params) p.push_back(param.fromUnit(rng.uniform()));
  return p;
}

std::optional<Suggestion> RandomSampler::ask(int number, const std::vector<TrialView>&) {
  return Suggestion{randomPoint(space_, seed_, number), ""};
}

GridSampler::GridSampler(SearchSpace space) : space_(std::move(space)) {
  for (const auto& p : space_.params) {
    size_t n = p.cardinality();
    if (n == 0)
      throw std::invalid_argument(fmt::format(
          "grid: parameter {} is continuous; give it a step (or use random, sobol, tpe, gp or cmaes)", p.name));
    sizes_.push_back(n);
  }
}

size_t GridSampler::total() const {
  size_t t = 1;
  for (size_t n : sizes_) t *= n;
  return t;
}

std::optional<Suggestion> GridSampler::ask(int number, const std::vector<TrialView>& history) {
  // The trial number picks the grid cell, skipping cells already taken (a
  // re-run trial keeps its number, so resuming revisits nothing twice).
  std::set<Point> taken;
  for (const auto& t : history) taken.insert(t.point);
  for (size_t cell = static_cast<size_t>(number); cell < total(); ++cell) {
    Point p;
    size_t rest = cell;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      size_t k = rest % sizes_[i];
      rest /= sizes_[i];
      const Param& param = space_.params[i];
      if (param.type == Param::Type::Categorical || param.type == Param::Type::Discrete) p.push_back(static_cast<double>(k));
      else p.push_back(param.type == Param::Type::Int ? param.min + k * (param.step > 0 ? param.step : 1)
                                                      : param.min + k * param.step);
    }
    if (!taken.count(p)) return Suggestion{p, ""};
  }
  return std::nullopt;
}

// Direction numbers (Joe & Kuo) for dimensions 2..21; dimension 1 is van der Corput.
namespace {
struct Direction {
  int s, a;
  std::vector<uint32_t> m;
};
const Direction kDirections[] = {
    {1, 0, {1}},           {2, 1, {1, 3}},        {3, 1, {1, 3, 1}},         {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},  {4, 4, {1, 3, 5, 13}}, {5, 2, {1, 1, 5, 5, 17}},  {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}}, {5, 11, {1, 1, 5, 1, 1}}, {5, 13, {1, 1, 1, 3, 11}}, {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}}, {6, 13, {1, 1, 1, 15, 21, 21}}, {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}}, {6, 22, {1, 3, 1, 15, 13, 25}}, {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}}, {7, 4, {1, 3, 7, 13, 13, 15, 69}},
};
constexpr int kBits = 32;
}  // namespace

SobolSampler::SobolSampler(SearchSpace space, uint64_t seed) : space_(std::move(space)) {
  size_t d = space_.size();
  if (d > std::size(kDirections) + 1)
    throw std::invalid_argument(fmt::format("sobol supports up to {} parameters, got {}", std::size(kDirections) + 1, d));
  v_.assign(d, std::vector<uint32_t>(kBits));
  for (int k = 0; k < kBits; ++k) v_[0][k] = 1u << (31 - k);
  for (size_t j = 1; j < d; ++j) {
    const Direction& dir = kDirections[j - 1];
    for (int k = 0; k < kBits; ++k) {
      if (k < dir.s) {
        v_[j][k] = dir.m[k] << (31 - k);
      } else {
        uint32_t x = v_[j][k - dir.s] ^ (v_[j][k - dir.s] >> dir.s);
        for (int l = 1; l < dir.s; ++l)
          if ((dir.a >> (dir.s - 1 - l)) & 1) x ^= v_[j][k - l];
        v_[j][k] = x;
      }
    }
  }
  // Scrambling: a random linear matrix scramble (lower triangular, unit
  // diagonal) and a random digital shift per dimension, both from the seed.
  Rng rng(seed, 0x50B01);
  for (size_t j = 0; j < d; ++j) {
    // Row r of L acts on digits 1..r+1 (bits 31 down to 31-r); its diagonal is 1.
    std::vector<uint32_t> rows(kBits);
    for (int r = 0; r < kBits; ++r) {
      uint32_t mask = ~((1u << (31 - r)) - 1);
      rows[r] = (static_cast<uint32_t>(rng.next()) & mask) | (1u << (31 - r));
    }
    for (int k = 0; k < kBits; ++k) {
      uint32_t v = v_[j][k], out = 0;
      for (int r = 0; r < kBits; ++r)
        if (__builtin_parity(rows[r] & v)) out |= 1u << (31 - r);
      v_[j][k] = out;
    }
    shift_.push_back(static_cast<uint32_t>(rng.next()));
  }
}

std::optional<Suggestion> SobolSampler::ask(int number, const std::vector<TrialView>&) {
  // Gray-code order: point n is the XOR of the direction numbers of n's gray code bits.
  // Scrambling moves the first point off the origin, so it need not be skipped,
  // and every block of 2^m consecutive trials keeps the net property.
  uint64_t n = static_cast<uint64_t>(number);
  uint64_t gray = n ^ (n >> 1);
  Point p;
  for (size_t j = 0; j < space_.size(); ++j) {
    uint32_t x = shift_[j];
    for (int k = 0; k < kBits && (gray >> k); ++k)
      if ((gray >> k) & 1) x ^= v_[j][k];
    double u = (static_cast<double>(x) + 0.5) / 4294967296.0;
    p.push_back(space_.params[j].fromUnit(u));
  }
  return Suggestion{p, ""};
}

}  // namespace trainyard::tune
