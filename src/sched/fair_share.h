// Dominant resource fairness (Ghodsi et al., as Volcano's drf plugin): a
// consumer's share is its largest fraction of any resource, divided by its
// weight; the consumer with the smallest share goes next. Pure.
#pragma once
#include <vector>

#include "sched/resources.h"

namespace trainyard::sched {

double dominantShare(const Amounts& usage, const Amounts& capacity, double weight = 1);

// Jain's fairness index of `x`: 1 when all equal, 1/n when one has everything.
double jainIndex(const std::vector<double>& x);

}  // namespace trainyard::sched
