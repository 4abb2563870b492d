// How far a job is, from the metrics it reports: a "progress" metric in
// [0, 1], else "step" against "steps" (or "total_steps"), else "epoch"
// against "epochs" (or "total_epochs"). Pure. Without a total there is no
// fraction (and so no ETA) rather than a guess.
#pragma once
#include <map>
#include <optional>
#include <string>

#include "metrics/metric.h"

namespace trainyard::metrics {

using Latest = std::map<std::string, MetricPoint>;

// The latest point of `a` (else of `b`), or null.
const MetricPoint* findLatest(const Latest& m, const char* a, const char* b = nullptr);
// Fraction done in [0, 1], when the metrics tell.
std::optional<double> progressFraction(const Latest& latest);
// Seconds left at the pace so far, for a fraction strictly between 0 and 1.
std::optional<double> etaSeconds(const Latest& latest, double elapsed_seconds);

// A counter (step, steps, epoch, epochs, global_step, iteration, batch,
// total_steps, num_epochs, progress): an axis of the results, not a result.
// Summaries and charts leave them out (the dashboard's list is the same).
bool isCounter(const std::string& name);

}  // namespace trainyard::metrics
