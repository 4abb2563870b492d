#include "cli/progress.h"

#include <fmt/format.h>

#include "cli/output.h"

namespace trainyard::cli {
namespace {

const metrics::MetricPoint* find(const std::map<std::string, metrics::MetricPoint>& m, const char* a,
                                 const char* b = nullptr) {
  auto it = m.find(a);
  if (it != m.end()) return &it->second;
  if (b && (it = m.find(b)) != m.end()) return &it->second;
  return nullptr;
}

bool isBookkeeping(const std::string& name) {
  return name == "epoch" || name == "epochs" || name == "total_epochs" || name == "step" || name == "steps" ||
         name == "total_steps" || name == "progress";
}

}  // namespace

std::optional<double> progressFraction(const std::map<std::string, metrics::MetricPoint>& latest) {
  if (auto p = find(latest, "progress"); p && p->value >= 0 && p->value <= 1) return p->value;
  // Steps are finer-grained than epochs, so they win when both are known.
  auto s = find(latest, "step");
  auto st = find(latest, "steps", "total_steps");
  if (s && st && st->value > 0) return std::min(1.0, s->value / st->value);
  auto e = find(latest, "epoch");
  auto et = find(latest, "epochs", "total_epochs");
  if (e && et && et->value > 0) return std::min(1.0, e->value / et->value);
  return std::nullopt;
}

std::string renderProgress(const ProgressInput& in, size_t max_width) {
  std::string line = fmt::format("{} {}", in.name, in.phase);
  if (in.restarts > 0) line += fmt::format(" (restarts {})", in.restarts);
  auto e = find(in.latest, "epoch");
  auto et = find(in.latest, "epochs", "total_epochs");
  if (e) line += et ? fmt::format(" | epoch {}/{}", formatValue(e->value), formatValue(et->value))
                    : fmt::format(" | epoch {}", formatValue(e->value));
  auto s = find(in.latest, "step");
  auto st = find(in.latest, "steps", "total_steps");
  if (s) line += st ? fmt::format(" | step {}/{}", formatValue(s->value), formatValue(st->value))
                    : fmt::format(" | step {}", formatValue(s->value));
  std::string metrics;
  for (const auto& [name, p] : in.latest)
    if (!isBookkeeping(name)) metrics += fmt::format(" {}={}", name, formatValue(p.value));
  if (!metrics.empty()) line += " |" + metrics;
  line += " | elapsed " + formatDuration(in.elapsed);
  if (auto f = progressFraction(in.latest); f && *f > 0 && *f < 1)
    line += fmt::format(" | {:.0f}% ETA {}", *f * 100, formatDuration(in.elapsed * (1 - *f) / *f));
  if (line.size() > max_width) line = line.substr(0, max_width - 3) + "...";
  return line;
}

}  // namespace trainyard::cli
