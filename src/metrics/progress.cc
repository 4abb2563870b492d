#include "metrics/progress.h"
#include <cctype>

#include <algorithm>

namespace trainyard::metrics {

const MetricPoint* findLatest(const Latest& m, const char* a, const char* b) {
  auto it = m.find(a);
  if (it != m.end()) return &it->second;
  if (b && (it = m.find(b)) != m.end()) return &it->second;
  return nullptr;
}

std::optional<double> progressFraction(const Latest& latest) {
  if (auto p = findLatest(latest, "progress"); p && p->value >= 0 && p->value <= 1) return p->value;
  // Steps are finer-grained than epochs, so they win when both are known.
  auto s = findLatest(latest, "step");
  auto st = findLatest(latest, "steps", "total_steps");
  if (s && st && st->value > 0) return std::min(1.0, s->value / st->value);
  auto e = findLatest(latest, "epoch");
  auto et = findLatest(latest, "epochs", "total_epochs");
  if (e && et && et->value > 0) return std::min(1.0, e->value / et->value);
  return std::nullopt;
}

std::optional<double> etaSeconds(const Latest& latest, double elapsed_seconds) {
  auto f = progressFraction(latest);
  if (!f || *f <= 0 || *f >= 1) return std::nullopt;
  return elapsed_seconds * (1 - *f) / *f;
}

bool isCounter(const std::string& name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* const kCounters[] = {"step",      "steps",     "epoch",      "epochs",      "global_step", "globalstep",
                                          "iteration", "iterations", "iter",      "iters",       "batch",       "batches",
                                          "total_steps", "total_epochs", "num_epochs", "progress"};
  for (const char* c : kCounters)
    if (n == c) return true;
  return false;
}

}  // namespace trainyard::metrics
