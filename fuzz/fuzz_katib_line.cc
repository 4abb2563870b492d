// libFuzzer: Katib's stdout metric scanner and the line parser on its output
// (default format and a regex filter), fed in arbitrary pieces.
#include <cstdint>
#include <string_view>
#include <vector>

#include "metrics/line_parser.h"

using namespace trainyard::metrics;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Pair> pairs;
  scanKatibLine(text, pairs);
  static LineParser::Format formats[] = {LineParser::Format::Katib, LineParser::Format::Regex};
  for (auto f : formats) {
    LineParser p(f, R"(([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?))");
    std::vector<MetricPoint> out;
    size_t cut = size ? data[0] % (size + 1) : 0;
    p.feed(text.substr(0, cut), 1.0, out);
    p.feed(text.substr(cut), 2.0, out);
    p.finish(3.0, out);
    for (const auto& m : out)
      if (m.step < 0 || m.step > kMaxStep) __builtin_trap();
  }
  return 0;
}
