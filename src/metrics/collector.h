// Metric collection for one replica: chooses the parser from the job's
// metricsCollector spec and turns appended bytes (of its log or of its
// metrics file) into points. The caller decides where bytes come from, so the
// same collector serves local log files and, later, Kubernetes log streams.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "metrics/line_parser.h"

namespace trainyard::metrics {

class Collector {
 public:
  // kind: "StdOut" (Katib format, or `filter` as a regex) or "File" (JSON
  // lines; with format "TEXT", Katib's format in a file).
  Collector(const std::string& kind, const std::string& format, const std::string& filter);
  void consume(std::string_view bytes, double now, std::vector<MetricPoint>& out) { parser_.feed(bytes, now, out); }
  void finish(double now, std::vector<MetricPoint>& out) { parser_.finish(now, out); }
  std::string carry() const { return parser_.carry(); }
  void restoreCarry(const std::string& carry) { parser_.restoreCarry(carry); }
  void resumeAfter(const std::string& series, int64_t last_step) { parser_.resumeAfter(series, last_step); }

 private:
  LineParser parser_;
};

}  // namespace trainyard::metrics
