#include "api/prometheus.h"

#include <fmt/format.h>

namespace trainyard::api {
namespace {
const std::vector<double> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}
}  // namespace

std::string MetricsRegistry::key(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", k, escape(v));
  return out;
}

void MetricsRegistry::help(const std::string& name, const std::string& type, const std::string& text) {
  std::lock_guard lk(mu_);
  meta_[name] = {type, text};
}

void MetricsRegistry::counterAdd(const std::string& name, const Labels& labels, double v) {
  counterAddKey(name, key(labels), v);
}

void MetricsRegistry::counterAddKey(const std::string& name, const std::string& labels_key, double v) {
  std::lock_guard lk(mu_);
  values_[name][labels_key] += v;
}

void MetricsRegistry::gaugeSet(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lk(mu_);
  values_[name][key(labels)] = v;
}

void MetricsRegistry::gaugeReset(const std::string& name) {
  std::lock_guard lk(mu_);
  values_[name].clear();
}

void MetricsRegistry::buckets(const std::string& name, std::vector<double> upper_bounds) {
  std::lock_guard lk(mu_);
  bounds_[name] = std::move(upper_bounds);
}

const std::vector<double>& MetricsRegistry::boundsOf(const std::string& name) const {
  auto it = bounds_.find(name);
  return it == bounds_.end() ? kBuckets : it->second;
}

void MetricsRegistry::observe(const std::string& name, const Labels& labels, double seconds) {
  observeKey(name, key(labels), seconds);
}

void MetricsRegistry::observeKey(const std::string& name, const std::string& labels_key, double seconds) {
  std::lock_guard lk(mu_);
  const auto& kb = boundsOf(name);
  Histogram& h = hists_[name][labels_key];
  if (h.counts.empty()) h.counts.assign(kb.size(), 0);
  for (size_t i = 0; i < kb.size(); ++i)
    if (seconds <= kb[i]) {
      h.counts[i]++;
      break;
    }
  h.sum += seconds;
  h.n++;
}

std::string MetricsRegistry::render() const {
  std::lock_guard lk(mu_);
  std::string out;
  auto header = [&](const std::string& name, const char* fallback) {
    auto it = meta_.find(name);
    if (it != meta_.end()) out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, it->second.second, name, it->second.first);
    else out += fmt::format("# TYPE {} {}\n", name, fallback);
  };
  for (const auto& [name, samples] : values_) {
    header(name, "untyped");
    for (const auto& [labels, v] : samples)
      out += labels.empty() ? fmt::format("{} {}\n", name, v) : fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
  for (const auto& [name, series] : hists_) {
    header(name, "histogram");
    for (const auto& [labels, h] : series) {
      std::string sep = labels.empty() ? "" : ",";
      uint64_t cum = 0;
      const auto& kb = boundsOf(name);
      for (size_t i = 0; i < kb.size(); ++i) {
        cum += h.counts[i];
        out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, kb[i], cum);
      }
      out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, h.n);
      out += labels.empty() ? fmt::format("{}_sum {}\n{}_count {}\n", name, h.sum, name, h.n)
                            : fmt::format("{}_sum{{{}}} {}\n{}_count{{{}}} {}\n", name, labels, h.sum, name, labels, h.n);
    }
  }
  return out;
}

}  // namespace trainyard::api
