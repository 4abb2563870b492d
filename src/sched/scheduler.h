// Admission of queued jobs onto nodes. Pure: it sees the nodes, what is
// already allocated and the queue, and decides; the controller acts.
//
// Policy: strict priority, then FIFO (submission order). The head of the
// queue blocks the jobs behind it when it does not fit yet, so a large job is
// never starved by a stream of small ones. A job that cannot fit on any node
// even when it is empty is reported unschedulable instead of waiting forever.
// A job's replicas are placed together on one node (gang) or not at all.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sched/resources.h"

namespace trainyard::sched {

struct Request {
  std::string job;
  int priority = 0;
  int64_t seq = 0;  // submission order; lower goes first within a priority
  Resources need;   // the whole gang
};

struct Allocation {
  std::string job;
  std::string node;
  Resources held;
  std::vector<int> gpu_ids;  // exclusive devices
};

struct Decision {
  std::vector<Allocation> admitted;
  struct Waiting { std::string job; std::string reason; };
  std::vector<Waiting> waiting;        // fits some day; reason says what is short now
  std::vector<Waiting> unschedulable;  // never fits on any node
};

Decision schedule(const std::vector<Node>& nodes, const std::vector<Allocation>& in_use,
                  std::vector<Request> queue);

// Why a job needing `need` can never be placed on any of `nodes`, even all
// empty ("no node can ever hold this job: ..."); nullopt when one can hold it.
// The scheduler fails such jobs; the API refuses them at submit.
std::optional<std::string> neverFits(const std::vector<Node>& nodes, const Resources& need);

}  // namespace trainyard::sched
