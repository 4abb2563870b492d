// libFuzzer: the JSON-lines metrics collector (metricsCollector kind File).
#include <cstdint>
#include <string_view>
#include <vector>

#include "metrics/line_parser.h"

using namespace trainyard::metrics;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  LineParser p(LineParser::Format::JsonLines);
  std::vector<MetricPoint> out;
  p.feed(text, 1.0, out);
  p.finish(2.0, out);
  for (const auto& m : out)
    if (m.step < 0 || m.step > kMaxStep) __builtin_trap();
  return 0;
}
