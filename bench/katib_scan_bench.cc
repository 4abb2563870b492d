// The hand-written Katib-format scanner against std::regex with Katib's
// pattern, on the same lines. Run: build/bin/katib_scan_bench
#include <benchmark/benchmark.h>

#include <regex>
#include <string>
#include <vector>

#include "metrics/line_parser.h"

namespace {

const std::vector<std::string>& lines() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (int i = 0; i < 1000; ++i)
      out.push_back("epoch=" + std::to_string(i % 10) + " step=" + std::to_string(i) +
                    " loss=0.4" + std::to_string(i) + " accuracy=0.8" + std::to_string(i % 97) + " lr=1e-3");
    return out;
  }();
  return v;
}

void HandScanner(benchmark::State& state) {
  std::vector<trainyard::metrics::Pair> pairs;
  for (auto _ : state)
    for (const auto& l : lines()) {
      pairs.clear();
      trainyard::metrics::scanKatibLine(l, pairs);
      benchmark::DoNotOptimize(pairs.data());
    }
  state.SetItemsProcessed(state.iterations() * lines().size());
}
BENCHMARK(HandScanner);

void StdRegex(benchmark::State& state) {
  std::regex re(R"(([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?))");
  for (auto _ : state)
    for (const auto& l : lines()) {
      int n = 0;
      for (auto it = std::sregex_iterator(l.begin(), l.end(), re); it != std::sregex_iterator(); ++it) {
        double v = std::strtod((*it)[2].str().c_str(), nullptr);
        benchmark::DoNotOptimize(v);
        ++n;
      }
      benchmark::DoNotOptimize(n);
    }
  state.SetItemsProcessed(state.iterations() * lines().size());
}
BENCHMARK(StdRegex);

}  // namespace

BENCHMARK_MAIN();
