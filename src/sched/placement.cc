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

int64_t emptyFit(const Node& n, const Resources& need) {
  int64_t k = kMany;
  const auto& a = n.allocatable;
  int devices = std::max<int>(a.gpu, static_cast<int>(n.gpu_ids.size()));
  if (need.cpu_millis > 0) k = std::min(k, a.cpu_millis / need.cpu_millis);
  if (need.memory_bytes > 0) k = std::min(k, a.memory_bytes / need.memory_bytes);
  if (need.gpu > 0) k = std::min<int64_t>(k, devices / need.gpu);
  if (need.gpu_share > 0) k = std::min<int64_t>(k, devices * (1000 / need.gpu_share));
  return std::max<int64_t>(0, k);
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
  plain_.clear();
  gpu_.clear();
  gpu_by_cpu_.clear();
  capacity_ = free_ = Amounts{};
  for (auto& n : nodes) {
    index_[n.name] = nodes_.size();
    nodes_.emplace_back(std::move(n));
    if (nodes_.back().node.schedulable) capacity_ += amounts(nodes_.back().node.allocatable);
    reindex(nodes_.size() - 1);
  }
  free_ = capacity_;
}

void Cluster::unindex(size_t i) {
  const NodeState& n = nodes_[i];
  if (n.device_use.empty()) {
    plain_.erase({n.free.cpu_millis, i});
  } else {
    gpu_.erase({n.free.gpu, n.free.cpu_millis, i});
    gpu_by_cpu_.erase({n.free.cpu_millis, i});
  }
}

void Cluster::reindex(size_t i) {
  const NodeState& n = nodes_[i];
  if (!n.node.schedulable) return;
  if (n.device_use.empty()) {
    plain_.insert({n.free.cpu_millis, i});
  } else {
    gpu_.insert({n.free.gpu, n.free.cpu_millis, i});
    gpu_by_cpu_.insert({n.free.cpu_millis, i});
  }
}

void Cluster::account(const NodeState& n, const Placement& p, int sign) {
  if (!n.node.schedulable) return;
  auto a = amounts(p.held);
  for (int d = 0; d < kDims; ++d) free_[d] -= sign * a[d];
}

NodeState* Cluster::find(const std::string& name) {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &nodes_[it->second];
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
  auto it = index_.find(p.node);
  if (it == index_.end()) return;
  NodeState* n = &nodes_[it->second];
  unindex(it->second);
  account(*n, p, 1);
  n->free.cpu_millis -= p.held.cpu_millis;
  n->free.memory_bytes -= p.held.memory_bytes;
  for (int id : p.gpu_ids) {
    auto d_it = std::find(n->node.gpu_ids.begin(), n->node.gpu_ids.end(), id);
    if (d_it == n->node.gpu_ids.end()) continue;
    size_t d = d_it - n->node.gpu_ids.begin();
    if (p.held.gpu_share > 0) {
      n->device_use[d] += p.held.gpu_share;
    } else {
      n->device_use[d] = 1000;
      n->device_whole[d] = true;
    }
  }
  n->free.gpu = freeDevices(*n);
  reindex(it->second);
}

void Cluster::unhold(const Placement& p) {
  auto it = index_.find(p.node);
  if (it == index_.end()) return;
  NodeState* n = &nodes_[it->second];
  unindex(it->second);
  account(*n, p, -1);
  n->free.cpu_millis += p.held.cpu_millis;
  n->free.memory_bytes += p.held.memory_bytes;
  for (int id : p.gpu_ids) {
    auto d_it = std::find(n->node.gpu_ids.begin(), n->node.gpu_ids.end(), id);
    if (d_it == n->node.gpu_ids.end()) continue;
    size_t d = d_it - n->node.gpu_ids.begin();
    n->device_use[d] = p.held.gpu_share > 0 ? std::max(0, n->device_use[d] - p.held.gpu_share) : 0;
    if (n->device_use[d] == 0) n->device_whole[d] = false;
  }
  n->free.gpu = freeDevices(*n);
  reindex(it->second);
}

template <typename Fn>
void Cluster::candidates(const Resources& need, bool skip_plain, bool skip_gpu, Fn&& fn) const {
  if (skip_gpu && (need.gpu > 0 || need.gpu_share > 0)) return;
  if (need.gpu > 0) {
    // By free devices, then free cpu: within each device count, skip to the nodes with enough cpu.
    for (auto it = gpu_.lower_bound({need.gpu, need.cpu_millis, 0}); it != gpu_.end();) {
      if (std::get<1>(*it) < need.cpu_millis) {
        it = gpu_.lower_bound({std::get<0>(*it), need.cpu_millis, 0});
        continue;
      }
      if (!fn(std::get<2>(*it))) return;
      ++it;
    }
    return;
  }
  if (need.gpu_share > 0) {
    for (const auto& e : gpu_)
      if (std::get<1>(e) >= need.cpu_millis && !fn(std::get<2>(e))) return;
    return;
  }
  // No GPUs needed: nodes without GPUs first, GPU nodes only when those are full.
  if (!skip_plain)
    for (auto it = plain_.lower_bound({need.cpu_millis, 0}); it != plain_.end(); ++it)
      if (!fn(it->second)) return;
  if (!skip_gpu)
    for (auto it = gpu_by_cpu_.lower_bound({need.cpu_millis, 0}); it != gpu_by_cpu_.end(); ++it)
      if (!fn(it->second)) return;
}

namespace {
// Feasible nodes compared per choice on a large cluster (see placement.h).
constexpr int kSample = 32;
}  // namespace

std::optional<std::vector<Placement>> Cluster::place(const std::vector<ReplicaNeed>& replicas,
                                                     PlacementPolicy policy,
                                                     const std::map<std::string, std::string>& selector,
                                                     const std::vector<const Reach*>* keep_off) {
  // Not enough in all: no scan.
  Amounts total{};
  for (const auto& r : replicas) total += amounts(r.need);
  for (int d = 0; d < kDims; ++d)
    if (total[d] > free_[d]) return std::nullopt;

  bool skip_plain = false, skip_gpu = false;
  if (keep_off)
    for (const Reach* r : *keep_off) skip_plain |= r->all_plain, skip_gpu |= r->all_gpu;
  auto excluded = [&](size_t ni) {
    if (!keep_off) return false;
    for (const Reach* r : *keep_off)
      if (r->covers(nodes_[ni].node)) return true;
    return false;
  };
  std::vector<Placement> placed;
  std::vector<std::pair<size_t, int>> on_node;  // replicas of this gang per node (a gang is small)
  auto count_on = [&](size_t ni) {
    for (const auto& [n, c] : on_node)
      if (n == ni) return c;
    return 0;
  };
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
    for (auto& [nn, c] : on_node)
      if (nn == ni) return ++c, true;
    on_node.push_back({ni, 1});
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
      int seen = 0;
      candidates(replicas[i].need, skip_plain, skip_gpu, [&](size_t ni) {
        if (!eligible(nodes_[ni], selector) || fitCount(nodes_[ni], replicas[i].need) < 1 || excluded(ni)) return true;
        int a = count_on(ni), b = best == SIZE_MAX ? 0 : count_on(best);
        if (best == SIZE_MAX || a < b || (a == b && nodes_[ni].free.cpu_millis > nodes_[best].free.cpu_millis)) best = ni;
        return ++seen < kSample || count_on(best) > 0;
      });
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
      const int64_t remaining = static_cast<int64_t>(j - i);
      size_t best = SIZE_MAX;
      int64_t best_k = 0;
      int seen = 0;
      candidates(replicas[i].need, skip_plain, skip_gpu, [&](size_t ni) {
        if (!eligible(nodes_[ni], selector)) return true;
        int64_t k = std::min(remaining, fitCount(nodes_[ni], replicas[i].need));
        if (k < 1 || excluded(ni)) return true;
        // Candidates come best fit first: a node holding every remaining replica ends the search.
        bool better = best == SIZE_MAX || k > best_k || (k == best_k && count_on(ni) > count_on(best));
        if (better) best = ni, best_k = k;
        return best_k < remaining && ++seen < kSample;
      });
      if (best == SIZE_MAX) return fail();
      for (int64_t k = 0; k < best_k; ++k, ++i)
        if (!put(best, replicas[i])) return fail();
    }
  }
  return placed;
}

bool Reach::covers(const Node& n) const {
  if (!n.schedulable || (plain_only && (n.allocatable.gpu > 0 || !n.gpu_ids.empty()))) return false;
  for (const auto& [k, v] : selector) {
    auto it = n.labels.find(k);
    if (it == n.labels.end() || it->second != v) return false;
  }
  return std::any_of(shapes.begin(), shapes.end(), [&](const Resources& r) { return emptyFit(n, r) > 0; });
}

Reach Cluster::reach(const std::vector<ReplicaNeed>& replicas, const std::map<std::string, std::string>& selector) const {
  Reach r;
  r.selector = selector;
  for (const auto& rep : replicas)
    if (std::none_of(r.shapes.begin(), r.shapes.end(), [&](const Resources& s) { return amounts(s) == amounts(rep.need); }))
      r.shapes.push_back(rep.need);
  bool wants_gpu = std::any_of(replicas.begin(), replicas.end(), [](const auto& x) { return x.need.gpu > 0 || x.need.gpu_share > 0; });
  if (!wants_gpu && !replicas.empty()) {
    int64_t plain_room = 0;
    for (const auto& n : nodes_)
      if (n.device_use.empty() && eligible(n, selector)) plain_room += emptyFit(n.node, replicas.front().need);
    r.plain_only = plain_room >= static_cast<int64_t>(replicas.size());
  }
  r.all_plain = r.all_gpu = true;
  for (const auto& n : nodes_) {
    if (!n.node.schedulable) continue;
    bool& all = n.device_use.empty() ? r.all_plain : r.all_gpu;
    if (all && !r.covers(n.node)) all = false;
  }
  return r;
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
