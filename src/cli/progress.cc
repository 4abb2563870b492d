#include "cli/progress.h"

#include <fmt/format.h>

#include "cli/output.h"
#include "metrics/progress.h"

namespace trainyard::cli {
namespace {

using metrics::findLatest;

bool isBookkeeping(const std::string& name) {
  return name == "epoch" || name == "epochs" || name == "total_epochs" || name == "step" || name == "steps" ||
         name == "total_steps" || name == "progress";
}

}  // namespace

std::string renderProgress(const ProgressInput& in, size_t max_width) {
  std::string line = fmt::format("{} {}", in.name, in.phase);
  if (in.restarts > 0) line += fmt::format(" (restarts {})", in.restarts);
  auto e = findLatest(in.latest, "epoch");
  auto et = findLatest(in.latest, "epochs", "total_epochs");
  if (e) line += et ? fmt::format(" | epoch {}/{}", formatValue(e->value), formatValue(et->value))
                    : fmt::format(" | epoch {}", formatValue(e->value));
  auto s = findLatest(in.latest, "step");
  auto st = findLatest(in.latest, "steps", "total_steps");
  if (s) line += st ? fmt::format(" | step {}/{}", formatValue(s->value), formatValue(st->value))
                    : fmt::format(" | step {}", formatValue(s->value));
  std::string metrics;
  for (const auto& [name, p] : in.latest)
    if (!isBookkeeping(name)) metrics += fmt::format(" {}={}", name, formatValue(p.value));
  if (!metrics.empty()) line += " |" + metrics;
  line += " | elapsed " + formatDuration(in.elapsed);
  if (auto eta = metrics::etaSeconds(in.latest, in.elapsed))
    line += fmt::format(" | {:.0f}% ETA {}", *metrics::progressFraction(in.latest) * 100, formatDuration(*eta));
  if (line.size() > max_width) line = line.substr(0, max_width - 3) + "...";
  return line;
}

}  // namespace trainyard::cli
