// Deterministic randomness for samplers: a generator derived from the
// experiment's seed and a stream id (usually the trial number), so that a
// resumed experiment re-derives exactly the suggestions it would have made.
#pragma once
#include <cstdint>
#include <random>

namespace trainyard::tune {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : gen_(splitmix64(seed ^ splitmix64(stream + 0x1234567ULL))) {}
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(gen_); }
  double normal() { return std::normal_distribution<double>(0.0, 1.0)(gen_); }
  uint64_t next() { return gen_(); }
  size_t index(size_t n) { return static_cast<size_t>(gen_() % n); }
  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

}  // namespace trainyard::tune
