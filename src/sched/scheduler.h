// Admission of queued jobs onto nodes for a shared cluster. Pure: no I/O
// and no clock of its own (the caller passes `now`), so the control plane
// and bench/sched_sim drive the same code.
//
// One call to schedule() is one admission cycle over every queued job, in
// this order (Kueue's ClusterQueues with fair sharing, Volcano's gang + DRF):
//   - across queues: the queue with the smallest weighted dominant share of
//     the cluster goes next; then higher priority, then earlier submission;
//   - within a queue: higher priority first; at one priority, the user with
//     the smallest dominant share within the queue; then submission order.
// A job is admitted when its queue's quota allows it (nominal quota, then
// borrowing idle quota in the queue's cohort within the limits) and its
// whole gang can be placed (placement.h). Otherwise:
//   - it may preempt: lower-priority jobs of its own queue, or, when it is
//     within its queue's nominal quota, jobs of cohort queues that borrow
//     (reclaim). Victims are returned; they keep holding resources until they
//     stop, and are never chosen twice.
//   - a job that does not fit on the nodes reserves its place (EASY
//     backfill): later jobs start ahead of it only when they are known to end
//     (`duration`) before the earliest time it could start, itself computed
//     from the running jobs' expected ends; with any of those unknown there
//     is no backfill past it, so a large gang is never starved.
//   - a job blocked by its quota does not block the jobs behind it.
// Every waiting job gets a reason a person can act on.
//
// State (nodes, queues, running allocations, the queue of requests) is kept
// between cycles so a long-lived caller pays only for what changed; a caller
// that rebuilds it per cycle from its store gets the same decisions.
// Not thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sched/placement.h"
#include "sched/queues.h"
#include "sched/resources.h"

namespace trainyard::sched {

struct Request {
  std::string job;
  std::string user;
  std::string queue = "default";
  int priority = 0;
  int64_t seq = 0;  // submission order
  std::vector<ReplicaNeed> replicas;
  PlacementPolicy policy = PlacementPolicy::Pack;
  std::map<std::string, std::string> node_selector;
  // Seconds it runs at most (activeDeadlineSeconds) or about (a walltime
  // hint); unknown = never backfilled past a reservation.
  std::optional<double> duration;
  Resources total() const;
};

struct Allocation {
  std::string job;
  std::string user;
  std::string queue = "default";
  int priority = 0;
  int64_t seq = 0;
  std::vector<Placement> placements;
  double started_at = 0;
  std::optional<double> expected_end;
  bool terminating = false;  // being stopped (preempted, cancelled): frees soon, never a victim again
  Resources total() const;
};

struct SchedulerOptions {
  bool backfill = true;
  bool preemption = true;
  bool gpu_sharing = false;  // fractional GPU requests; refused when off
  bool explain = true;       // a reason for every waiting job (the simulator turns it off)
  // Jobs examined behind a reservation per cycle (Slurm's bf_max_job_test).
  int max_backfill_tests = 100;
  int max_victims = 32;  // per preemption attempt
  int max_preemption_attempts = 8;  // per cycle
  // Jobs examined per cycle; the rest wait for their turn (bounds a cycle's
  // cost when thousands wait behind exhausted quotas).
  int max_examined = 1000;
  // When nothing was released since the last cycle, examine only the jobs
  // that arrived since (what waited still cannot start).
  bool incremental = true;
};

struct Decision {
  std::vector<Allocation> admitted;
  struct Waiting {
    std::string job;
    std::string reason;
    int position = 0;  // 1-based, in its queue's order (waiting only)
  };
  // Fits some day; reason says what is short now (stable from one cycle to
  // the next while nothing changes, so a caller may store it).
  std::vector<Waiting> waiting;
  std::vector<Waiting> unschedulable;  // never fits: no node, gang or quota can ever hold it
  std::vector<Waiting> preempted;      // running jobs to stop; reason names who needs the room
  int backfilled = 0;                  // admitted ahead of a reserved job
  int examined = 0;                    // queued jobs looked at in this cycle
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions opts = {});
  ~Scheduler();

  // Nodes as the backend reports them. Running allocations are held again;
  // those on nodes that are gone hold nothing.
  void setNodes(std::vector<Node> nodes);
  // Queues and cohorts; none = one "default" queue without limits.
  void setQueues(std::vector<QueueSpec> queues);

  // A job already running (placed by an earlier cycle or another process).
  void assume(Allocation a);
  void markTerminating(const std::string& job);
  // A running job ended: its resources are free.
  void release(const std::string& job);

  void enqueue(Request r);
  void dequeue(const std::string& job);

  // One admission cycle. Admitted jobs move from the queue to the running
  // set; unschedulable ones leave the queue; victims are marked terminating.
  Decision schedule(double now);

  const std::map<std::string, Allocation>& running() const { return running_; }
  size_t pending() const { return pending_.size(); }
  const QuotaBook& quotas() const { return book_; }
  const Cluster& cluster() const { return cluster_; }
  const SchedulerOptions& options() const { return opts_; }

 private:
  struct Order;  // per-queue, per-priority, per-user sets of pending jobs
  std::optional<std::string> never(const Request& r);
  void take(const Allocation& a);  // holds its nodes and counts it against its queue and user
  void give(const Allocation& a);
  void index(const Allocation& a, bool add);
  bool fits(const Request& r);
  std::optional<std::vector<std::string>> victimsFor(const Request& r);
  bool fitsOnceStopped(const Request& r);
  std::optional<double> earliestStart(const Request& r, double now) const;
  void unlist(const Request& r);

  SchedulerOptions opts_;
  Cluster cluster_;
  QuotaBook book_;
  std::map<std::string, Allocation> running_;
  std::map<std::string, Request> pending_;
  std::set<std::string> unchecked_;  // pending jobs not yet tested against never()
  std::map<std::string, std::map<std::string, Amounts>> user_usage_;  // queue -> user -> usage
  std::set<std::pair<double, std::string>> ends_;  // expected ends of running jobs
  std::set<std::string> terminating_;
  // queue -> running jobs by (priority, -start): preemption candidates in order
  std::map<std::string, std::set<std::tuple<int, double, std::string>>> by_queue_;
  std::map<std::string, std::optional<std::string>> never_cache_;  // by request shape
  std::map<std::string, Reach> reach_cache_;  // nodes a queued gang would use
  // Between cycles: what the last one decided, for an incremental cycle.
  uint64_t cycle_version_ = UINT64_MAX;
  std::vector<std::string> fresh_;  // enqueued since the last cycle
  std::vector<std::pair<std::string, std::optional<double>>> saved_reservations_;
  std::map<std::string, std::string> reasons_;
  uint64_t version_ = 0;  // bumped by anything that frees or changes capacity
  // A preemption that found no victims is not tried again until something
  // is released. (A backoff instead, as kube-scheduler's, made cycles 1.7x
  // faster on sched_sim's backlog but fairness worse: Jain 0.915 -> 0.894.)
  std::map<std::string, uint64_t> failed_preemption_;
  std::unique_ptr<Order> order_;
};

// Why `r` can never be placed on `nodes`, even all empty ("0/4 nodes can
// ever hold ...", "gang of 8 needs ... the cluster has ..."); nullopt when
// it can. The API refuses such jobs at submit.
std::optional<std::string> neverFits(const std::vector<Node>& nodes, const Request& r);

}  // namespace trainyard::sched
