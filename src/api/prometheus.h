// Prometheus text exposition (format 0.0.4) for the server's own metrics:
// counters, gauges and histograms with labels. Thread-safe; cheap enough to
// update on every HTTP request.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace trainyard::api {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  void counterAdd(const std::string& name, const Labels& labels, double v = 1);
  void gaugeSet(const std::string& name, const Labels& labels, double v);
  // Default buckets: 0.5 ms .. 10 s; buckets() sets a family's own.
  void observe(const std::string& name, const Labels& labels, double seconds);
  void buckets(const std::string& name, std::vector<double> upper_bounds);
  // The same with labels rendered once by key() (hot paths: per request).
  static std::string key(const Labels& labels);
  void counterAddKey(const std::string& name, const std::string& labels_key, double v = 1);
  void observeKey(const std::string& name, const std::string& labels_key, double seconds);
  void help(const std::string& name, const std::string& type, const std::string& text);
  // Drops a gauge family's samples (before setting the current ones).
  void gaugeReset(const std::string& name);
  std::string render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket (not cumulative)
    double sum = 0;
    uint64_t n = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::string>> meta_;  // name -> type, help
  std::map<std::string, std::map<std::string, double>> values_;     // counters and gauges
  std::map<std::string, std::map<std::string, Histogram>> hists_;
  std::map<std::string, std::vector<double>> bounds_;
  const std::vector<double>& boundsOf(const std::string& name) const;
};

}  // namespace trainyard::api
