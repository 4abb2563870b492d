// Where the replicas of one gang go: all of them or none. Pure.
//
//   pack    fewest nodes (the node that holds most of the remaining replicas
//           first, then the fullest that still fits): keeps ranks close;
//           the default, as Volcano's binpack.
//   spread  one replica per node where possible, emptiest node first.
// Jobs without GPUs go to nodes without GPUs first. On a large cluster the
// best node is chosen among the first feasible ones found in order of free
// capacity (kube-scheduler scores a sample of nodes the same way), so one
// placement costs about log(nodes), not a scan of every node.
//
// Nodes that are not schedulable (drained, down) or whose labels do not
// match the job's nodeSelector are never chosen. Whole GPUs are exclusive;
// GPU shares go to a device already shared (best fit) or a free one, never
// to a device held whole.
#pragma once
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <unordered_map>
#include <vector>

#include "sched/resources.h"

namespace trainyard::sched {

enum class PlacementPolicy { Pack, Spread };

struct ReplicaNeed {
  std::string name;  // "worker-0"
  Resources need;
};

// One replica's place: what it holds there and its devices.
struct Placement {
  std::string replica;
  std::string node;
  Resources held;
  std::vector<int> gpu_ids;
};

// The nodes a reserved gang would use once they are free: eligible nodes
// that can hold one of its replicas, of the shape it prefers (nodes without
// GPUs for a job without GPUs, when they can hold it). Tested per node.
struct Reach {
  std::vector<Resources> shapes;
  std::map<std::string, std::string> selector;
  bool plain_only = false;
  // It covers every node without GPUs / with GPUs: those are not searched at all.
  bool all_plain = false, all_gpu = false;
  bool covers(const Node& n) const;
};

// A node with what is still free on it.
struct NodeState {
  Node node;
  Resources free;
  std::vector<int> device_use;       // per gpu_ids entry: thousandths in use
  std::vector<bool> device_whole;    // held whole by one replica
  explicit NodeState(Node n);
};

class Cluster {
 public:
  void setNodes(std::vector<Node> nodes);
  const std::vector<NodeState>& nodes() const { return nodes_; }
  NodeState* find(const std::string& name);
  // Total allocatable and free over schedulable nodes (kept as nodes are held).
  const Amounts& capacity() const { return capacity_; }
  const Amounts& free() const { return free_; }

  // Places every replica or none (nullopt: the cluster is unchanged), never
  // on a node marked in `excluded` (indexed like nodes()).
  std::optional<std::vector<Placement>> place(const std::vector<ReplicaNeed>& replicas, PlacementPolicy policy,
                                              const std::map<std::string, std::string>& selector,
                                              const std::vector<const Reach*>* keep_off = nullptr);
  Reach reach(const std::vector<ReplicaNeed>& replicas, const std::map<std::string, std::string>& selector) const;
  // Takes what `p` holds (a running replica, or one placed earlier) /
  // gives it back. Placements on nodes that are gone are ignored.
  void hold(const Placement& p);
  void unhold(const Placement& p);

  // Why `replicas` do not fit now, in kube-scheduler's words:
  // "0/4 nodes available: 2 insufficient memory (needs 8.0 GiB, max free 6.0 GiB), 2 unschedulable".
  std::string whyNot(const std::vector<ReplicaNeed>& replicas, PlacementPolicy policy,
                     const std::map<std::string, std::string>& selector) const;

 private:
  bool eligible(const NodeState& n, const std::map<std::string, std::string>& selector) const;
  void account(const NodeState& n, const Placement& p, int sign);
  void unindex(size_t i);
  void reindex(size_t i);
  // Calls fn(node index) for nodes that may hold `need`, best fit first, until it returns false.
  template <typename Fn>
  void candidates(const Resources& need, bool skip_plain, bool skip_gpu, Fn&& fn) const;
  std::vector<NodeState> nodes_;
  std::unordered_map<std::string, size_t> index_;
  Amounts capacity_{}, free_{};
  // Schedulable nodes by what is free: without GPUs by free cpu; with GPUs
  // by free devices, then free cpu.
  std::set<std::pair<int64_t, size_t>> plain_;
  std::set<std::tuple<int, int64_t, size_t>> gpu_;
  std::set<std::pair<int64_t, size_t>> gpu_by_cpu_;  // GPU nodes by free cpu (jobs without GPUs, when plain nodes are full)
};

// How many replicas needing `need` fit in what `n` has free / in all of `n`.
int64_t fitCount(const NodeState& n, const Resources& need);
int64_t emptyFit(const Node& n, const Resources& need);

}  // namespace trainyard::sched
