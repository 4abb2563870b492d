#include "sched/scheduler.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

namespace trainyard::sched {

std::optional<std::string> neverFits(const std::vector<Node>& nodes, const Resources& need) {
  if (std::any_of(nodes.begin(), nodes.end(), [&](const Node& n) { return n.allocatable.covers(need); })) return std::nullopt;
  return fmt::format("no node can ever hold this job: {}", nodes.empty() ? std::string("no nodes") : nodes.front().allocatable.shortfall(need));
}

Decision schedule(const std::vector<Node>& nodes, const std::vector<Allocation>& in_use,
                  std::vector<Request> queue) {
  struct Free {
    Resources res;
    std::set<int> gpus;
  };
  std::map<std::string, Free> free;
  for (const auto& n : nodes) free[n.name] = {n.allocatable, {n.gpu_ids.begin(), n.gpu_ids.end()}};
  for (const auto& a : in_use) {
    auto it = free.find(a.node);
    if (it == free.end()) continue;  // node gone; its allocations no longer count
    it->second.res -= a.held;
    for (int g : a.gpu_ids) it->second.gpus.erase(g);
  }

  std::stable_sort(queue.begin(), queue.end(), [](const Request& a, const Request& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
  });

  Decision d;
  bool blocked = false;
  for (const auto& req : queue) {
    if (auto why = neverFits(nodes, req.need)) {
      d.unschedulable.push_back({req.job, *why});
      continue;
    }
    if (blocked) {
      d.waiting.push_back({req.job, "waiting behind a job of higher priority or earlier submission"});
      continue;
    }
    const Node* chosen = nullptr;
    for (const auto& n : nodes)
      if (free[n.name].res.covers(req.need)) { chosen = &n; break; }
    if (!chosen) {
      const auto& f = free[nodes.front().name].res;
      d.waiting.push_back({req.job, "insufficient " + f.shortfall(req.need)});
      blocked = true;
      continue;
    }
    Free& f = free[chosen->name];
    Allocation a{req.job, chosen->name, req.need, {}};
    for (auto it = f.gpus.begin(); it != f.gpus.end() && static_cast<int>(a.gpu_ids.size()) < req.need.gpu;)
      a.gpu_ids.push_back(*it), it = f.gpus.erase(it);
    f.res -= req.need;
    d.admitted.push_back(std::move(a));
  }
  return d;
}

}  // namespace trainyard::sched
