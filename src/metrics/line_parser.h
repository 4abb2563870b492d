// Parsers for the metric formats a training program prints. Pure: bytes in,
// points out.
//
// Katib's stdout format: every match of
//   ([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)
// in a line is a pair. A "step" key (else "epoch") in the same line becomes
// the step of the line's other points. The default format is scanned by hand
// rather than with std::regex: it is the ingestion hot path and a hand scan
// is ~14x faster (bench/katib_scan_bench); tests check it against std::regex.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics/metric.h"

namespace trainyard::metrics {

struct Pair {
  std::string_view name;
  double value;
};

// Appends the Katib-format pairs of one line (no newline) to `out`.
void scanKatibLine(std::string_view line, std::vector<Pair>& out);

// Turns a stream of lines into points: assigns steps, timestamps, and keeps
// per-series counters for lines without a step key.
class LineParser {
 public:
  enum class Format { Katib, Regex, JsonLines };
  // `regex` is used for Format::Regex: group 1 = name, group 2 = value;
  // several regexes, one per line of `regex`, all apply to every line.
  explicit LineParser(Format format, const std::string& regex = "");
  ~LineParser();

  // Feeds raw bytes (may split lines anywhere); complete lines are parsed.
  void feed(std::string_view bytes, double now, std::vector<MetricPoint>& out);
  // Parses a trailing line that had no newline (end of stream).
  void finish(double now, std::vector<MetricPoint>& out);
  // Lines longer than this are skipped whole (up to their newline): a
  // program printing without newlines must not grow the controller.
  static constexpr size_t kMaxLine = 64 << 10;
  // What was fed but not parsed yet (a line still without its newline),
  // as text to store beside the read cursor, and to give back to a parser
  // that resumes there (a controller taking over the job).
  std::string carry() const;
  void restoreCarry(const std::string& carry);
  // Lines without a step continue `name`'s series after `last_step` (a
  // controller taking over a job, or a new attempt, resumes the count).
  void resumeAfter(const std::string& name, int64_t last_step) { next_index_[name] = last_step + 1; }
  // Parses exactly one complete line.
  void parseLine(std::string_view line, double now, std::vector<MetricPoint>& out);

 private:
  void emit(std::vector<Pair>& pairs, double now, std::vector<MetricPoint>& out);
  Format format_;
  struct CompiledRegex;
  std::unique_ptr<CompiledRegex> regex_;
  std::string partial_;
  bool skipping_ = false;  // inside a line longer than kMaxLine
  std::vector<Pair> pairs_;
  std::vector<std::string> owned_;  // names from JSON lines, kept alive while emitting
  std::unordered_map<std::string, int64_t> next_index_;
};

}  // namespace trainyard::metrics
