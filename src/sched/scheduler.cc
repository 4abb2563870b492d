#include "sched/scheduler.h"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "sched/fair_share.h"

namespace trainyard::sched {
namespace {

bool covers(const Amounts& have, const Amounts& need) {
  for (int d = 0; d < kDims; ++d)
    if (need[d] > have[d]) return false;
  return true;
}

// What a request asks for and where it may go. Exact, for verdicts kept
// for good (never fits); hashed, for what is skipped for one cycle only
// (a collision costs a skipped attempt, not a wrong refusal).
std::string shapeKey(const Request& r) {
  std::string key = fmt::format("{}|{}", static_cast<int>(r.policy), r.replicas.size());
  for (const auto& rep : r.replicas)
    key += fmt::format("|{},{},{},{}", rep.need.cpu_millis, rep.need.memory_bytes, rep.need.gpu, rep.need.gpu_share);
  for (const auto& [k, v] : r.node_selector) key += "|" + k + "=" + v;
  return key;
}

uint64_t shapeHash(const Request& r, int mode) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
  mix(static_cast<uint64_t>(mode));
  mix(static_cast<uint64_t>(r.policy));
  for (const auto& rep : r.replicas) {
    mix(static_cast<uint64_t>(rep.need.cpu_millis));
    mix(static_cast<uint64_t>(rep.need.memory_bytes));
    mix(static_cast<uint64_t>(rep.need.gpu) << 32 | static_cast<uint32_t>(rep.need.gpu_share));
  }
  for (const auto& [key, v] : r.node_selector) mix(std::hash<std::string>{}(key + "=" + v));
  return h;
}

bool matches(const Node& n, const std::map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = n.labels.find(k);
    if (it == n.labels.end() || it->second != v) return false;
  }
  return true;
}

std::string describe(const Resources& r) {
  std::string s = fmt::format("cpu {:g}, memory {}", r.cpu_millis / 1000.0, formatAmount(1, r.memory_bytes));
  if (r.gpu) s += fmt::format(", gpu {}", r.gpu);
  if (r.gpu_share) s += fmt::format(", gpu {:g}", r.gpu_share / 1000.0);
  return s;
}

std::string ago(double seconds) {
  if (seconds < 120) return fmt::format("{:.0f} s", seconds);
  if (seconds < 7200) return fmt::format("{:.0f} min", seconds / 60);
  return fmt::format("{:.1f} h", seconds / 3600);
}

}  // namespace

Resources Request::total() const {
  Resources t;
  for (const auto& r : replicas) t += r.need;
  return t;
}

Resources Allocation::total() const {
  Resources t;
  for (const auto& p : placements) t += p.held;
  return t;
}

namespace {
// Over any sequence of nodes, reached through `node(i)`.
template <typename Nodes, typename Get>
std::optional<std::string> neverFitsOn(const Nodes& nodes, Get node, const Request& r) {
  // Each replica shape, and as many of it as the gang has, on the matching nodes all empty.
  std::map<std::array<int64_t, 4>, std::pair<Resources, int64_t>> shapes;
  for (const auto& rep : r.replicas) {
    auto& s = shapes[{rep.need.cpu_millis, rep.need.memory_bytes, rep.need.gpu, rep.need.gpu_share}];
    s.first = rep.need;
    s.second++;
  }
  Amounts cap{};
  int matching = 0;
  for (const auto& x : nodes)
    if (const Node& n = node(x); matches(n, r.node_selector)) cap += amounts(n.allocatable), ++matching;
  if (matching == 0)
    return nodes.empty() ? std::string("no nodes") : fmt::format("no node can ever hold this job: none of the {} nodes matches its node selector", nodes.size());
  for (const auto& [key, shape] : shapes) {
    const auto& [need, count] = shape;
    int64_t room = 0;
    const Node* largest = nullptr;
    for (const auto& x : nodes) {
      const Node& n = node(x);
      if (!matches(n, r.node_selector)) continue;
      room += emptyFit(n, need);
      if (!largest || n.allocatable.cpu_millis > largest->allocatable.cpu_millis) largest = &n;
    }
    if (room == 0)
      return fmt::format("no node can ever hold this job: {}", largest->allocatable.shortfall(need).empty()
                                                                   ? "gpu (needs " + describe(need) + ")"
                                                                   : largest->allocatable.shortfall(need));
    if (room < count)
      return fmt::format("no node set can ever hold this job: its gang has {} replicas of {} and the {} matching nodes hold {} at most",
                         count, describe(need), matching, room);
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::string> neverFits(const std::vector<Node>& nodes, const Request& r) {
  return neverFitsOn(nodes, [](const Node& n) -> const Node& { return n; }, r);
}

// queue -> priority (highest first) -> user -> (seq, job)
struct Scheduler::Order {
  using Users = std::map<std::string, std::set<std::pair<int64_t, std::string>>>;
  using Levels = std::map<int, Users, std::greater<int>>;
  std::map<std::string, Levels> queues;
};

Scheduler::Scheduler(SchedulerOptions opts) : opts_(opts), order_(std::make_unique<Order>()) {
  book_.setQueues({});
}
Scheduler::~Scheduler() = default;

void Scheduler::setNodes(std::vector<Node> nodes) {
  cluster_.setNodes(std::move(nodes));
  for (const auto& [job, a] : running_)
    for (const auto& p : a.placements) cluster_.hold(p);
  for (const auto& [job, r] : pending_) unchecked_.insert(job);
  never_cache_.clear();
  reach_cache_.clear();
  ++version_;
}

void Scheduler::setQueues(std::vector<QueueSpec> queues) {
  book_.setQueues(std::move(queues));
  for (const auto& [job, r] : pending_) unchecked_.insert(job);
  ++version_;
}

void Scheduler::take(const Allocation& a) {
  for (const auto& p : a.placements) cluster_.hold(p);
  auto use = amounts(a.total());
  book_.add(a.queue, use);
  user_usage_[a.queue][a.user] += use;
}

void Scheduler::give(const Allocation& a) {
  for (const auto& p : a.placements) cluster_.unhold(p);
  auto use = amounts(a.total());
  book_.remove(a.queue, use);
  user_usage_[a.queue][a.user] -= use;
}

void Scheduler::index(const Allocation& a, bool add) {
  auto key = std::make_tuple(a.priority, -a.started_at, a.job);
  if (add) by_queue_[a.queue].insert(key);
  else by_queue_[a.queue].erase(key);
  if (a.expected_end) {
    if (add) ends_.insert({*a.expected_end, a.job});
    else ends_.erase({*a.expected_end, a.job});
  }
  if (a.terminating) {
    if (add) terminating_.insert(a.job);
    else terminating_.erase(a.job);
  }
}

void Scheduler::assume(Allocation a) {
  release(a.job);
  take(a);
  index(a, true);
  running_[a.job] = std::move(a);
}

void Scheduler::markTerminating(const std::string& job) {
  auto it = running_.find(job);
  if (it == running_.end() || it->second.terminating) return;
  index(it->second, false);
  it->second.terminating = true;
  index(it->second, true);
}

void Scheduler::release(const std::string& job) {
  auto it = running_.find(job);
  if (it == running_.end()) return;
  give(it->second);
  index(it->second, false);
  running_.erase(it);
  ++version_;
}

void Scheduler::enqueue(Request r) {
  dequeue(r.job);
  order_->queues[r.queue][r.priority][r.user].insert({r.seq, r.job});
  unchecked_.insert(r.job);
  fresh_.push_back(r.job);
  pending_[r.job] = std::move(r);
}

void Scheduler::unlist(const Request& r) {
  auto q = order_->queues.find(r.queue);
  if (q == order_->queues.end()) return;
  auto l = q->second.find(r.priority);
  if (l == q->second.end()) return;
  auto u = l->second.find(r.user);
  if (u == l->second.end()) return;
  u->second.erase({r.seq, r.job});
  if (u->second.empty()) l->second.erase(u);
  if (l->second.empty()) q->second.erase(l);
  if (q->second.empty()) order_->queues.erase(q);
}

void Scheduler::dequeue(const std::string& job) {
  auto it = pending_.find(job);
  if (it == pending_.end()) return;
  unlist(it->second);
  unchecked_.erase(job);
  failed_preemption_.erase(job);
  reach_cache_.erase(job);
  reasons_.erase(job);
  pending_.erase(it);
  ++version_;  // a reservation it held may be gone
}

std::optional<std::string> Scheduler::never(const Request& r) {
  const QueueSpec* q = book_.queue(r.queue);
  if (!q) return fmt::format("queue {} does not exist", r.queue);
  if (!q->users.empty() && std::find(q->users.begin(), q->users.end(), r.user) == q->users.end())
    return fmt::format("user {} may not submit to queue {}", r.user.empty() ? "(anonymous)" : r.user, r.queue);
  for (const auto& rep : r.replicas)
    if (rep.need.gpu_share > 0 && !opts_.gpu_sharing)
      return fmt::format("replica {} asks for a {:g} share of a GPU and GPU sharing is off (whole GPUs only)",
                         rep.name, rep.need.gpu_share / 1000.0);
  if (auto why = book_.neverAdmits(r.queue, amounts(r.total()))) return why;
  // Cached by shape: a stream of jobs of a few shapes costs one node scan each.
  std::string key = shapeKey(r);
  auto hit = never_cache_.find(key);
  if (hit != never_cache_.end()) return hit->second;
  auto why = neverFitsOn(cluster_.nodes(), [](const NodeState& n) -> const Node& { return n.node; }, r);
  never_cache_[key] = why;
  return why;
}

bool Scheduler::fits(const Request& r) {
  if (book_.refuses(r.queue, amounts(r.total()), false)) return false;
  auto placed = cluster_.place(r.replicas, r.policy, r.node_selector);
  if (!placed) return false;
  for (const auto& p : *placed) cluster_.unhold(p);
  return true;
}

bool Scheduler::fitsOnceStopped(const Request& r) {
  if (terminating_.empty()) return false;
  // Not even all of it together: no need to try.
  Amounts avail = cluster_.free();
  for (const auto& j : terminating_) avail += amounts(running_.at(j).total());
  if (!covers(avail, amounts(r.total()))) return false;
  for (const auto& j : terminating_) give(running_.at(j));
  bool ok = fits(r);
  for (const auto& j : terminating_) take(running_.at(j));
  return ok;
}

std::optional<std::vector<std::string>> Scheduler::victimsFor(const Request& r) {
  const QueueSpec* q = book_.queue(r.queue);
  if (!q) return std::nullopt;
  auto need = amounts(r.total());
  std::vector<const Allocation*> cands;
  // Kueue's order: borrowers of other queues first, then the lowest
  // priority, then the most recently started.
  if (q->reclaim_within_cohort && !q->cohort.empty()) {
    Amounts after = book_.usage(r.queue);
    after += need;
    if (covers(q->nominal, after)) {
      for (const auto& other : book_.queues()) {
        if (other.name == r.queue || other.cohort != q->cohort || !book_.borrowing(other.name)) continue;
        for (const auto& [prio, neg_start, job] : by_queue_[other.name]) {
          const auto& a = running_.at(job);
          if (!a.terminating) cands.push_back(&a);
          if (static_cast<int>(cands.size()) >= opts_.max_victims) break;
        }
      }
    }
  }
  if (q->preempt_lower_priority) {
    for (const auto& [prio, neg_start, job] : by_queue_[r.queue]) {
      if (prio >= r.priority || static_cast<int>(cands.size()) >= opts_.max_victims) break;
      const auto& a = running_.at(job);
      if (!a.terminating) cands.push_back(&a);
    }
  }
  if (cands.empty()) return std::nullopt;
  Amounts avail = cluster_.free();
  for (const auto* a : cands) avail += amounts(a->total());
  if (!covers(avail, need)) return std::nullopt;
  std::stable_sort(cands.begin(), cands.end(), [&](const Allocation* a, const Allocation* b) {
    bool oa = a->queue != r.queue, ob = b->queue != r.queue;
    if (oa != ob) return oa;
    if (a->priority != b->priority) return a->priority < b->priority;
    if (a->started_at != b->started_at) return a->started_at > b->started_at;
    return a->seq > b->seq;
  });
  // Reclaim takes back only what is borrowed: a victim of another queue
  // must leave that queue at or above its nominal quota (else its own jobs
  // would reclaim in turn, and preemptions would chase each other).
  auto onlyBorrowed = [&](const Allocation& a) {
    if (a.queue == r.queue) return true;
    const QueueSpec* vq = book_.queue(a.queue);
    const auto& use = book_.usage(a.queue);
    auto take = amounts(a.total());
    for (int d = 0; d < kDims; ++d)
      if (take[d] > 0 && vq && vq->nominal[d] < kUnlimited && use[d] - take[d] < vq->nominal[d]) return false;
    return true;
  };
  // A placement is tried only once the free total covers the job: before
  // that no arrangement of nodes can hold it, and a placement costs far
  // more than a sum.
  std::vector<const Allocation*> removed;
  bool ok = false;
  for (const auto* a : cands) {
    if (!onlyBorrowed(*a)) continue;
    give(*a);
    removed.push_back(a);
    if (covers(cluster_.free(), need) && (ok = fits(r))) break;
  }
  if (!ok) {
    for (const auto* a : removed) take(*a);
    return std::nullopt;
  }
  // Keep every victim that turns out not to be needed.
  for (int i = static_cast<int>(removed.size()) - 2; i >= 0; --i) {
    take(*removed[i]);
    if (covers(cluster_.free(), need) && fits(r)) removed[i] = nullptr;
    else give(*removed[i]);
  }
  std::vector<std::string> victims;
  for (const auto* a : removed)
    if (a) take(*a), victims.push_back(a->job);
  return victims;
}

std::optional<double> Scheduler::earliestStart(const Request& r, double now) const {
  auto need = amounts(r.total());
  Amounts free = cluster_.free();
  // Enough in total but fragmented: when it fits is unknown.
  if (covers(free, need)) return std::nullopt;
  for (const auto& j : terminating_) free += amounts(running_.at(j).total());
  if (covers(free, need)) return now;
  for (const auto& [end, job] : ends_) {
    const auto& a = running_.at(job);
    if (a.terminating) continue;
    free += amounts(a.total());
    if (covers(free, need)) return std::max(now, end);
  }
  return std::nullopt;
}

Decision Scheduler::schedule(double now) {
  Decision d;
  std::vector<std::string> fresh;
  fresh.swap(fresh_);
  for (const auto& job : unchecked_) {
    const Request& r = pending_.at(job);
    if (auto why = never(r)) d.unschedulable.push_back({job, *why});
  }
  unchecked_.clear();
  for (const auto& u : d.unschedulable) dequeue(u.job);
  // Nothing was freed since the last cycle: what waited still cannot start,
  // so only the jobs that arrived since are examined (kube-scheduler keeps
  // unschedulable pods aside until a cluster event the same way).
  const bool incremental = opts_.incremental && version_ == cycle_version_;

  const Amounts cap = cluster_.capacity();
  std::map<std::string, std::string>& reasons = reasons_;
  if (!incremental) reasons.clear();
  auto wait = [&](const std::string& job, std::string why) {
    if (opts_.explain) reasons[job] = std::move(why);
  };

  // Blocked gangs hold back the nodes they would use (EASY backfill): a
  // later job may use those nodes only when it is known to end before the
  // gang's earliest start; elsewhere it starts freely.
  struct Reservation {
    std::string job;
    std::optional<double> start;
    const Reach* nodes;
  };
  std::vector<Reservation> reservations;
  constexpr size_t kMaxReservations = 8;
  auto reserve = [&](const std::string& job, std::optional<double> start) {
    if (reservations.size() >= kMaxReservations) return false;
    const Request& r = pending_.at(job);
    auto it = reach_cache_.find(job);
    if (it == reach_cache_.end()) it = reach_cache_.emplace(job, cluster_.reach(r.replicas, r.node_selector)).first;
    reservations.push_back({job, start, &it->second});
    return true;
  };
  if (incremental)
    for (const auto& [job, start] : saved_reservations_)
      if (pending_.count(job)) reserve(job, start);

  // Shapes that did not fit this cycle (free space only shrinks within it),
  // by a hash of what they ask for and where they may go.
  std::set<uint64_t> failed_shapes;
  auto shape = shapeHash;
  int tests = 0, examined = 0;
  std::vector<std::string> done;  // admitted this cycle: removed from the order after the loop

  // Whether preempting could help `r` at all (cheap checks first).
  auto mayPreempt = [&](const Request& r) {
    if (!terminating_.empty()) return true;
    const QueueSpec* q = book_.queue(r.queue);
    if (!q) return false;
    auto own = by_queue_.find(r.queue);
    if (q->preempt_lower_priority && own != by_queue_.end() && !own->second.empty() &&
        std::get<0>(*own->second.begin()) < r.priority)
      return true;
    if (!q->reclaim_within_cohort || q->cohort.empty()) return false;
    Amounts after = book_.usage(r.queue);
    after += amounts(r.total());
    return covers(q->nominal, after);
  };
  // Nothing fits now: preempt, wait for victims, or reserve.
  int preemption_tries = 0;
  std::map<uint64_t, bool> once_stopped;  // by shape: terminating jobs do not change within a cycle
  auto blocked = [&](const Request& r, bool quota, const std::string& why) {
    if (opts_.preemption && mayPreempt(r)) {
      auto key = shape(r, -1);
      auto hit = once_stopped.find(key);
      bool stopping_frees = hit != once_stopped.end() ? hit->second : (once_stopped[key] = fitsOnceStopped(r));
      if (stopping_frees) {
        wait(r.job, "waiting for preempted or cancelled jobs to stop: " + why);
        if (!quota) reserve(r.job, now);
        return;
      }
      auto failed = failed_preemption_.find(r.job);
      if ((failed == failed_preemption_.end() || failed->second != version_) &&
          preemption_tries++ < opts_.max_preemption_attempts) {
        if (auto victims = victimsFor(r)) {
          for (const auto& v : *victims) {
            markTerminating(v);
            d.preempted.push_back({v, fmt::format("preempted to make room for {} (priority {}, queue {})", r.job,
                                                  r.priority, r.queue)});
          }
          wait(r.job, fmt::format("preempting {} job(s) to make room: {}", victims->size(), why));
          if (!quota) reserve(r.job, now);
          return;
        }
        failed_preemption_[r.job] = version_;
      }
    }
    if (quota) {
      wait(r.job, why);
      return;
    }
    std::string text = why;
    auto start = earliestStart(r, now);
    if (reserve(r.job, start) && start) text += fmt::format("; expected to start in {} (resources reserved)", ago(*start - now));
    wait(r.job, text);
  };

  // One job's turn. Returns false when the cycle should stop.
  enum class Outcome { Admitted, Waiting, QuotaRefused, Stop };
  auto consider = [&](const std::string& job) -> Outcome {
    const Request& r = pending_.at(job);
    const auto need = amounts(r.total());
    if (auto why = book_.refuses(r.queue, need, opts_.explain)) {
      blocked(r, true, *why);
      return Outcome::QuotaRefused;
    }
    // Which reserved nodes this job must keep off: those of every
    // reservation it would not end before.
    std::vector<const Reach*> keep_off;
    int mode = 0;
    if (!reservations.empty()) {
      // Without backfill a blocked gang blocks everyone behind it (strict FIFO).
      if (!opts_.backfill) return Outcome::Stop;
      if (tests >= opts_.max_backfill_tests) return Outcome::Stop;
      ++tests;
      auto endsBefore = [&](const Reservation& res) { return r.duration && res.start && now + *r.duration <= *res.start; };
      for (size_t k = 0; k < reservations.size(); ++k)
        if (!endsBefore(reservations[k])) keep_off.push_back(reservations[k].nodes), mode |= 1 << k;
    }
    uint64_t key = shape(r, mode);
    std::optional<std::vector<Placement>> placed;
    if (!failed_shapes.count(key))
      placed = cluster_.place(r.replicas, r.policy, r.node_selector, keep_off.empty() ? nullptr : &keep_off);
    if (!placed) {
      failed_shapes.insert(key);
      std::optional<std::vector<Placement>> anywhere;
      if (!keep_off.empty() && !failed_shapes.count(shape(r, 0))) anywhere = cluster_.place(r.replicas, r.policy, r.node_selector);
      if (anywhere) {
        // It would fit, but only on nodes a reserved gang needs first.
        for (const auto& p : *anywhere) cluster_.unhold(p);
        const auto& first = reservations.front();
        wait(job, fmt::format("waiting behind {}, which holds the next start on the nodes this job needs{}", first.job,
                              !r.duration   ? " (a job without activeDeadlineSeconds or a walltime hint is never started ahead of it)"
                              : first.start ? " (this job would not end before it starts)"
                                            : " (when it can start is unknown, so nothing starts ahead of it there)"));
        return Outcome::Waiting;
      }
      if (!keep_off.empty()) failed_shapes.insert(shape(r, 0));
      blocked(r, false, opts_.explain ? cluster_.whyNot(r.replicas, r.policy, r.node_selector) : "");
      return Outcome::Waiting;
    }
    Allocation a;
    a.job = job;
    a.user = r.user;
    a.queue = r.queue;
    a.priority = r.priority;
    a.seq = r.seq;
    a.placements = std::move(*placed);
    a.started_at = now;
    if (r.duration) a.expected_end = now + *r.duration;
    // place() already holds the nodes; the books take the rest.
    auto use = amounts(a.total());
    book_.add(a.queue, use);
    user_usage_[a.queue][a.user] += use;
    index(a, true);
    if (!reservations.empty()) ++d.backfilled;
    running_[job] = a;
    d.admitted.push_back(std::move(a));
    done.push_back(job);
    reasons.erase(job);
    return Outcome::Admitted;
  };

  if (incremental) {
    // The newcomers, in priority then submission order.
    std::vector<const Request*> order;
    for (const auto& job : fresh) {
      auto it = pending_.find(job);
      if (it != pending_.end()) order.push_back(&it->second);
    }
    std::sort(order.begin(), order.end(), [](const Request* a, const Request* b) {
      return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
    });
    for (const Request* r : order) {
      if (++examined > opts_.max_examined) break;
      if (consider(r->job) == Outcome::Stop) break;
    }
  } else {
    // A cursor per queue over its pending jobs in order.
    struct UserCursor {
      std::set<std::pair<int64_t, std::string>>::iterator it, end;
      const Amounts* usage;
      double weight;  // the queue's userWeights (DRF between its users)
    };
    struct Cursor {
      std::string queue;
      Order::Levels* levels;
      Order::Levels::iterator level;
      std::vector<UserCursor> users;
      int refused = 0;  // consecutive quota refusals this cycle
    };
    auto enter = [&](Cursor& c) {
      c.users.clear();
      if (c.level == c.levels->end()) return;
      const QueueSpec* qs = book_.queue(c.queue);
      for (auto& [user, jobs] : c.level->second) {
        double weight = 1;
        if (qs)
          if (auto w = qs->user_weights.find(user); w != qs->user_weights.end()) weight = w->second;
        c.users.push_back({jobs.begin(), jobs.end(), &user_usage_[c.queue][user], weight});
      }
    };
    std::vector<Cursor> cursors;
    for (auto& [name, levels] : order_->queues) {
      cursors.push_back(Cursor{name, &levels, levels.begin(), {}});
      enter(cursors.back());
    }
    // The next job of a cursor: the user with the smallest share at the top priority level.
    auto head = [&](Cursor& c) -> UserCursor* {
      while (c.level != c.levels->end()) {
        UserCursor* best = nullptr;
        double best_share = 0;
        for (auto& u : c.users) {
          if (u.it == u.end) continue;
          double share = c.users.size() == 1 ? 0 : dominantShare(*u.usage, cap, u.weight);
          if (!best || share < best_share || (share == best_share && u.it->first < best->it->first)) best = &u, best_share = share;
        }
        if (best) return best;
        ++c.level;
        enter(c);
      }
      return nullptr;
    };
    // A queue whose jobs keep hitting its quota is not searched further this
    // cycle (Kueue's BestEffortFIFO goes on; this bounds how far).
    constexpr int kMaxRefusals = 16;
    for (;;) {
      // The next queue: smallest weighted dominant share, then priority, then age.
      Cursor* pick = nullptr;
      UserCursor* pick_user = nullptr;
      double pick_share = 0;
      for (auto& c : cursors) {
        if (c.refused >= kMaxRefusals) continue;
        UserCursor* u = head(c);
        if (!u) continue;
        const QueueSpec* qs = book_.queue(c.queue);
        double share = cursors.size() == 1 ? 0 : dominantShare(book_.usage(c.queue), cap, qs ? qs->weight : 1);
        bool better = !pick || share < pick_share;
        if (pick && share == pick_share) {
          int pa = c.level->first, pb = pick->level->first;
          better = pa != pb ? pa > pb : u->it->first < pick_user->it->first;
        }
        if (better) pick = &c, pick_user = u, pick_share = share;
      }
      if (!pick || ++examined > opts_.max_examined) break;
      const std::string job = pick_user->it->second;
      ++pick_user->it;  // the cursor moves on; the job stays listed until the loop ends
      auto outcome = consider(job);
      if (outcome == Outcome::Stop) break;
      pick->refused = outcome == Outcome::QuotaRefused ? pick->refused + 1 : 0;
    }
  }
  for (const auto& job : done) {
    unlist(pending_.at(job));
    failed_preemption_.erase(job);
    reach_cache_.erase(job);
    pending_.erase(job);
  }
  d.examined = std::min(examined, opts_.max_examined);
  saved_reservations_.clear();
  for (const auto& res : reservations) saved_reservations_.push_back({res.job, res.start});
  cycle_version_ = version_;

  if (opts_.explain) {
    // Every waiting job, in queue order, with its position.
    for (auto& [qname, levels] : order_->queues) {
      std::vector<std::pair<int64_t, const std::string*>> ordered;
      int position = 0;
      for (auto& [prio, users] : levels) {
        ordered.clear();
        for (auto& [user, jobs] : users)
          for (auto& [seq, job] : jobs) ordered.push_back({seq, &job});
        std::sort(ordered.begin(), ordered.end());
        for (auto& [seq, job] : ordered) {
          ++position;
          auto it = reasons.find(*job);
          d.waiting.push_back({*job, it == reasons.end() ? fmt::format("waiting for its turn in queue {}", qname) : it->second,
                               position});
        }
      }
    }
  }
  return d;
}

}  // namespace trainyard::sched
