#include "sched/placement.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace trainyard::sched {
namespace {

constexpr int64_t kMany = 1 << 20;

int freeDevices(const NodeState& n) {
  return static_cast<int>(std::count(n.device_use.begin(), n.device_use.end(), 0));
}

// Devices for one replica on `n`, or empty when they cannot be found.
std::vector<size_t> pickDevices(const NodeState& n, const Resources& need) {
  std::vector<size_t> out;
  if (need.gpu_share > 0) {
    // Best fit among shared devices, else a free one.
    size_t best = SIZE_MAX;
    for (size_t d = 0; d < n.device_use.size(); ++d) {
      if (n.device_whole[d] || n.device_use[d] == 0 || n.device_use[d] + need.gpu_share > 1000) continue;
      if (best == SIZE_MAX || n.device_use[d] > n.device_use[best]) best = d;
    }
    if (best == SIZE_MAX)
      for (size_t d = 0; d < n.device_use.size() && best == SIZE_MAX; ++d)
        if (n.device_use[d] == 0) best = d;
    if (best != SIZE_MAX) out.push_back(best);
    return out;
  }
  for (size_t d = 0; d < n.device_use.size() && static_cast<int>(out.size()) < need.gpu; ++d)
    if (n.device_use[d] == 0) out.push_back(d);
  if (static_cast<int>(out.size()) < need.gpu) out.clear();
  return out;
}

}  // namespace

NodeState::NodeState(Node n) : node(std::move(n)), free(node.allocatable) {
  // A backend that counts GPUs without numbering them: number them 0..n-1.
  for (int i = static_cast<int>(node.gpu_ids.size()); i < node.allocatable.gpu; ++i) node.gpu_ids.push_back(i);
  device_use.assign(node.gpu_ids.size(), 0);
  device_whole.assign(node.gpu_ids.size(), false);
  free.gpu = static_cast<int>(node.gpu_ids.size());
  free.gpu_share = 0;
}

int64_t fitCount(const NodeState& n, const Resources& need) {
  int64_t k = kMany;
  if (need.cpu_millis > 0) k = std::min(k, n.free.cpu_millis / need.cpu_millis);
  if (need.memory_bytes > 0) k = std::min(k, n.free.memory_bytes / need.memory_bytes);
  if (need.gpu > 0) k = std::min<int64_t>(k, freeDevices(n) / need.gpu);
  if (need.gpu_share > 0) {
    int64_t shares = 0;
    for (size_t d = 0; d < n.device_use.size(); ++d)
      if (!n.device_whole[d]) shares += (1000 - n.device_use[d]) / need.gpu_share;
    k = std::min(k, shares);
  }
  return std::max<int64_t>(0, k);
}

void Cluster::setNodes(std::vector<Node> nodes) {
  nodes_.clear();
  index_.clear();
  for (auto& n : nodes) {
    index_[n.name] = nodes_.size();
    nodes_.emplace_back(std::move(n));
  }
}

NodeState* Cluster::find(const std::string& name) {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &nodes_[it->second];
}

Amounts Cluster::capacity() const {
  Amounts a{};
  for (const auto& n : nodes_)
    if (n.node.schedulable) a += amounts(n.node.allocatable);
  return a;
}

bool Cluster::eligible(const NodeState& n, const std::map<std::string, std::string>& selector) const {
  if (!n.node.schedulable) return false;
  for (const auto& [k, v] : selector) {
    auto it = n.node.labels.find(k);
    if (it == n.node.labels.end() || it->second != v) return false;
  }
  return true;
}

void Cluster::hold(const Placement& p) {
  NodeState* n = find(p.node);
  if (!n) return;
  n->free.cpu_millis -= p.held.cpu_millis;
  n->free.memory_bytes -= p.held.memory_bytes;
  for (int id : p.gpu_ids) {
    auto it = std::find(n->node.gpu_ids.begin(), n->node.gpu_ids.end(), id);
    if (it == n->node.gpu_ids.end()) continue;
    size_t d = it - n->node.gpu_ids.begin();
    if (p.held.gpu_share > 0) {
      n->device_use[d] += p.held.gpu_share;
    } else {
      n->device_use[d] = 1000;
      n->device_whole[d] = true;
    }
  }
  n->free.gpu = freeDevices(*n);
}

void Cluster::unhold(const Placement& p) {
  NodeState* n = find(p.node);
  if (!n) return;
  n->free.cpu_millis += p.held.cpu_millis;
  n->free.memory_bytes += p.held.memory_bytes;
  for (int id : p.gpu_ids) {
    auto it = std::find(n->node.gpu_ids.begin(), n->node.gpu_ids.end(), id);
    if (it == n->node.gpu_ids.end()) continue;
    size_t d = it - n->node.gpu_ids.begin();
    n->device_use[d] = p.held.gpu_share > 0 ? std::max(0, n->device_use[d] - p.held.gpu_share) : 0;
    if (n->device_use[d] == 0) n->device_whole[d] = false;
  }
  n->free.gpu = freeDevices(*n);
}

std::optional<std::vector<Placement>> Cluster::place(const std::vector<ReplicaNeed>& replicas,
                                                     PlacementPolicy policy,
                                                     const std::map<std::string, std::string>& selector) {
  std::vector<size_t> candidates;
  candidates.reserve(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (eligible(nodes_[i], selector)) candidates.push_back(i);

  std::vector<Placement> placed;
  std::unordered_map<size_t, int> on_node;  // replicas of this gang per node
  auto put = [&](size_t ni, const ReplicaNeed& r) {
    NodeState& n = nodes_[ni];
    Placement p{r.name, n.node.name, r.need, {}};
    if (r.need.gpu > 0 || r.need.gpu_share > 0) {
      auto devs = pickDevices(n, r.need);
      if (devs.empty()) return false;
      for (size_t d : devs) p.gpu_ids.push_back(n.node.gpu_ids[d]);
    }
    hold(p);
    placed.push_back(std::move(p));
    on_node[ni]++;
    return true;
  };
  auto fail = [&] {
    for (const auto& p : placed) unhold(p);
    return std::nullopt;
  };

  size_t i = 0;
  while (i < replicas.size()) {
    if (policy == PlacementPolicy::Spread) {
      size_t best = SIZE_MAX;
      for (size_t ni : candidates) {
        if (fitCount(nodes_[ni], replicas[i].need) < 1) continue;
        if (best == SIZE_MAX) { best = ni; continue; }
        int a = on_node.count(ni) ? on_node[ni] : 0, b = on_node.count(best) ? on_node[best] : 0;
        if (a < b || (a == b && nodes_[ni].free.cpu_millis > nodes_[best].free.cpu_millis)) best = ni;
      }
      if (best == SIZE_MAX || !put(best, replicas[i])) return fail();
      ++i;
      continue;
    }
    // Pack: a run of replicas with the same need goes to the node holding most of it.
    size_t j = i + 1;
    while (j < replicas.size() && amounts(replicas[j].need) == amounts(replicas[i].need) &&
           replicas[j].need.gpu == replicas[i].need.gpu)
      ++j;
    while (i < j) {
      int64_t remaining = static_cast<int64_t>(j - i);
      size_t best = SIZE_MAX;
      int64_t best_k = 0;
      for (size_t ni : candidates) {
        int64_t k = std::min(remaining, fitCount(nodes_[ni], replicas[i].need));
        if (k < 1) continue;
        bool better = false;
        if (best == SIZE_MAX || k > best_k) better = true;
        else if (k == best_k) {
          bool used_a = on_node.count(ni), used_b = on_node.count(best);
          const auto &fa = nodes_[ni].free, &fb = nodes_[best].free;
          if (used_a != used_b) better = used_a;
          else if (fa.gpu != fb.gpu) better = fa.gpu < fb.gpu;  // keep whole free GPU nodes for GPU jobs
          else if (fa.cpu_millis != fb.cpu_millis) better = fa.cpu_millis < fb.cpu_millis;
          else better = fa.memory_bytes < fb.memory_bytes;
        }
        if (better) best = ni, best_k = k;
      }
      if (best == SIZE_MAX) return fail();
      for (int64_t k = 0; k < best_k; ++k, ++i)
        if (!put(best, replicas[i])) return fail();
    }
  }
  return placed;
}

std::string Cluster::whyNot(const std::vector<ReplicaNeed>& replicas, PlacementPolicy,
                            const std::map<std::string, std::string>& selector) const {
  if (replicas.empty()) return "nothing to place";
  // The replica shape that fits least often explains the gang.
  const Resources* need = &replicas.front().need;
  int64_t fits = kMany;
  for (const auto& r : replicas) {
    int64_t f = 0;
    for (const auto& n : nodes_)
      if (eligible(n, selector)) f += fitCount(n, r.need);
    if (f < fits) fits = f, need = &r.need;
  }
  int total = static_cast<int>(nodes_.size()), unschedulable = 0, mismatch = 0, fitting = 0;
  int short_cpu = 0, short_mem = 0, short_gpu = 0;
  Resources max_free{};
  for (const auto& n : nodes_) {
    if (!n.node.schedulable) { ++unschedulable; continue; }
    if (!eligible(n, selector)) { ++mismatch; continue; }
    max_free.cpu_millis = std::max(max_free.cpu_millis, n.free.cpu_millis);
    max_free.memory_bytes = std::max(max_free.memory_bytes, n.free.memory_bytes);
    max_free.gpu = std::max(max_free.gpu, freeDevices(n));
    if (fitCount(n, *need) > 0) { ++fitting; continue; }
    short_cpu += n.free.cpu_millis < need->cpu_millis;
    short_mem += n.free.memory_bytes < need->memory_bytes;
    short_gpu += (need->gpu > 0 && freeDevices(n) < need->gpu) || need->gpu_share > 0;
  }
  std::vector<std::string> parts;
  if (short_cpu)
    parts.push_back(fmt::format("{} insufficient cpu (needs {:g}, max free {:g})", short_cpu, need->cpu_millis / 1000.0,
                                max_free.cpu_millis / 1000.0));
  if (short_mem)
    parts.push_back(fmt::format("{} insufficient memory (needs {}, max free {})", short_mem,
                                formatAmount(1, need->memory_bytes), formatAmount(1, max_free.memory_bytes)));
  if (short_gpu)
    parts.push_back(need->gpu_share > 0
                        ? fmt::format("{} insufficient gpu (needs a {:g} share of one device)", short_gpu, need->gpu_share / 1000.0)
                        : fmt::format("{} insufficient gpu (needs {}, max free {})", short_gpu, need->gpu, max_free.gpu));
  if (unschedulable) parts.push_back(fmt::format("{} unschedulable (drained or down)", unschedulable));
  if (mismatch) parts.push_back(fmt::format("{} did not match the node selector", mismatch));
  std::string detail;
  for (const auto& p : parts) detail += (detail.empty() ? "" : ", ") + p;
  if (fitting == 0 || fits == 0) return fmt::format("0/{} nodes available: {}", total, detail.empty() ? "no nodes" : detail);
  return fmt::format("gang of {} replicas: only {} fit at once on {}/{} nodes{}{}", replicas.size(),
                     std::min<int64_t>(fits, static_cast<int64_t>(replicas.size())), fitting, total,
                     detail.empty() ? "" : "; ", detail);
}

}  // namespace trainyard::sched
