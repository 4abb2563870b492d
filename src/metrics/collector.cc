#include "metrics/collector.h"

namespace trainyard::metrics {
namespace {
LineParser::Format formatFor(const std::string& kind, const std::string& format, const std::string& filter) {
  if (kind == "File" && format != "TEXT") return LineParser::Format::JsonLines;
  return filter.empty() ? LineParser::Format::Katib : LineParser::Format::Regex;
}
}  // namespace

Collector::Collector(const std::string& kind, const std::string& format, const std::string& filter)
    : parser_(formatFor(kind, format, filter), filter) {}

}  // namespace trainyard::metrics
