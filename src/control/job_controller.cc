#include "control/job_controller.h"

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include <unistd.h>

#include "artifacts/run_record.h"
#include "backend/container/podman.h"
#include "control/admission.h"
#include "control/launch_plan.h"
#include "dist/wiring.h"
#include "control/owner.h"
#include "control/restart_policy.h"
#include "metrics/tf_events.h"
#include "sched/scheduler.h"

namespace trainyard::control {
namespace fs = std::filesystem;
using store::JobRecord;
using store::nowSeconds;

struct JobController::Tracked {
  struct Replica {
    // The backend's read cursors (opaque) into the log and the File
    // collector's file; what was last written to the store; and what an
    // earlier controller had read but not parsed, for the collector.
    std::string log_cursor, file_cursor;
    std::string saved_log_cursor, saved_file_cursor, saved_carry;
    std::unique_ptr<metrics::Collector> collector;
    std::unique_ptr<metrics::TfEventDirectory> events;  // TensorFlowEvent: its state is file_cursor
    bool recorded_exit = false;
  };
  int attempt = -1;
  std::map<std::string, Replica> replicas;
  std::set<std::string> observed;  // replicas the backend has reported in this attempt
  std::map<std::string, metrics::MetricPoint> latest;
  std::string stopping_reason;  // why a stop was sent: DeadlineExceeded, Cancelled, GangStopped, Stopped
  std::string stopping_message;
  bool succeeded = false;                          // decided by the success policy
  std::optional<backend::ReplicaStatus> failure;   // the first replica that failed
  bool launch_pending = false;  // admitted by this controller's admission cycle, not launched yet
  double launched_at = 0;       // this attempt handed to the backend (start timeout counts from here)
  std::string pending_note;     // what the job's message says while a replica is Pending
  double launch_at = 0;         // not before (a transient launch error's backoff)
  int launch_failures = 0;
  std::vector<sched::Placement> placements;  // of the current attempt
  std::map<std::string, std::string> forced;  // replica -> why the controller ended it (NodeLost, StartTimeout)
  double drain_since = 0;  // since when a finished attempt's logs could not be read to their end
  // The last stored step of each series (loaded once): a series whose step
  // goes back was restarted, and its points from there on are replaced.
  std::optional<std::map<std::string, int64_t>> series_last;
};

namespace {
// How long the outcome of an attempt whose replicas have all exited waits
// for their logs to be readable to the end (a node agent briefly away): the
// last metrics are in them.
constexpr int kDrainSeconds = 30;

bool drainGaveUp(double& since, double now) {
  if (since == 0) since = now;
  return now - since > kDrainSeconds;
}
}  // namespace

void failJob(store::Store& store, JobRecord& job, const std::string& reason, const std::string& message) {
  job.phase = store::kFailed;
  job.reason = reason;
  job.message = message;
  job.finished_at = nowSeconds();
  job.node.clear();
  job.allocation.clear();
  store.setPlacements(job.id, {});
  store.updateJobStatus(job);
  store.addCondition(job.id, {store::kFailed, "True", reason, message, job.finished_at});
  store.addEvent(job.id, {job.finished_at, "Warning", reason, message});
}

void markControllerLost(store::Store& store, JobRecord& job, const std::string& what_next) {
  failJob(store, job, "ControllerLost", fmt::format("the process driving the job ({}) is gone{}", job.owner, what_next));
}

JobController::JobController(store::Store& store, backend::Backend& backend, ControllerOptions opts)
    : store_(store), backend_(backend), opts_(std::move(opts)) {
  if (opts_.owner.empty()) opts_.owner = selfOwner();
}

JobController::~JobController() = default;

JobController::Tracked& JobController::tracked(const JobRecord& job) {
  auto& t = tracked_[job.id];
  if (!t) t = std::make_unique<Tracked>();
  return *t;
}

const std::map<std::string, metrics::MetricPoint>& JobController::latest(int64_t job_id) {
  auto& t = tracked_[job_id];
  if (!t) t = std::make_unique<Tracked>();
  return t->latest;
}

JobRecord submitJob(store::Store& store, const spec::TrainJobSpec& spec, const ControllerOptions& opts,
                    const std::string& user) {
  JobRecord job;
  job.user = user;
  job.name = spec.name;
  job.spec = spec;
  // A PriorityClass's value, fixed at submission as Kubernetes does.
  if (auto missing = applyPriorityClass(store.queueDefs(), job.spec)) throw std::invalid_argument(*missing);
  job.phase = store::kQueued;
  job.suspended = spec.suspend;
  if (job.suspended) {
    job.reason = "Suspended";
    job.message = fmt::format("suspended (runPolicy.suspend): `trainyard resume {}` lets it start", spec.name);
  }
  job.created_at = nowSeconds();
  job.owner = opts.owner;
  job.request = encodeRequest(job.spec);
  job.outputs_dir = spec.outputs_dir.empty() ? (fs::path(opts.data_dir) / "outputs" / spec.name).string()
                                             : spec.outputs_dir;
  store.transaction([&] {
    store.createJob(job);
    job.log_dir = (fs::path(opts.data_dir) / "logs" / job.uid).string();
    store.updateJobStatus(job);
    store.addCondition(job.id, {"Created", "True", "JobCreated", fmt::format("TrainJob {} is created", job.name), nowSeconds()});
  });
  return job;
}

JobRecord JobController::submit(const spec::TrainJobSpec& spec, const std::string& user) {
  return submitJob(store_, spec, opts_, user);
}

void JobController::condition(JobRecord& job, const std::string& type, const std::string& reason,
                              const std::string& message) {
  store_.addCondition(job.id, {type, "True", reason, message, nowSeconds()});
}

void JobController::event(const JobRecord& job, const std::string& type, const std::string& reason,
                          const std::string& message) {
  store_.addEvent(job.id, {nowSeconds(), type, reason, message});
}

JobRecord JobController::reconcile(int64_t job_id) {
  auto rec = store_.getJobById(job_id);
  if (!rec) throw std::runtime_error(fmt::format("job {} is not in the store", job_id));
  JobRecord job = std::move(*rec);
  if (store::isTerminal(job.phase)) return job;
  Tracked& t = tracked(job);

  if (job.cancel_requested && t.stopping_reason.empty()) {
    if (job.phase == store::kQueued) {
      if (job.stop_early) finish(job, store::kStopped, "EarlyStopped", "stopped early by its experiment before it started");
      else finish(job, store::kFailed, "Cancelled", "cancelled before it started");
      return job;
    }
    t.stopping_reason = job.stop_early ? "EarlyStopped" : "Cancelled";
    t.stopping_message = job.stop_early ? "stopped early by its experiment" : "cancelled by the user";
    event(job, "Normal", "Cancelling", fmt::format("stopping all replicas (grace {} ms)", opts_.grace.count()));
    backend_.stop(job.uid, opts_.grace);
  }

  if (job.phase == store::kQueued) {
    if (admitted_in_pass_) return job;
    admitQueuedJobs();
    auto now = store_.getJobById(job_id);
    if (!now) return job;
    job = std::move(*now);
    if (job.phase != store::kRunning) return job;
  }
  if (t.launch_pending && job.suspended) {  // suspended between admission and launch: nothing runs yet
    t.launch_pending = false;
    requeue(job, "Suspended", "suspended before it started", false);  // no attempt was made
    return job;
  }
  if (t.launch_pending) {
    if (nowSeconds() < t.launch_at) return job;
    t.launch_pending = false;
    launchAttempt(job, job.restarts);
    return job;
  }
  if (job.suspended && job.phase == store::kRunning && t.stopping_reason.empty()) {
    // Kubeflow's suspend: the pods go, the job stays. Queued again, not
    // admitted until resumed; the attempt does not count against backoffLimit.
    t.stopping_reason = "Suspended";
    t.stopping_message = "suspended: its replicas were stopped; `trainyard resume` starts it again";
    event(job, "Normal", "Suspending", fmt::format("stopping all replicas (grace {} ms)", opts_.grace.count()));
    backend_.stop(job.uid, opts_.grace);
  }
  if (job.preempt_requested && t.stopping_reason.empty()) {
    t.stopping_reason = "Preempted";
    t.stopping_message = job.message.empty() ? "preempted by a job that needs its resources" : job.message;
    for (const auto& e : store_.events(job.id))
      if (e.reason == "Preempted") t.stopping_message = e.message;
    event(job, "Warning", "Stopping", fmt::format("preempted: stopping all replicas (grace {} ms)", opts_.grace.count()));
    backend_.stop(job.uid, opts_.grace);
  }
  observe(job);
  return job;
}

const std::vector<store::NodeStateRecord>& JobController::nodeStates() {
  if (!nodes_read_) {
    nodes_ = backend_.capacity();
    node_states_ = store_.nodeStates();
    nodes_read_ = true;
  }
  return node_states_;
}

void JobController::beginPass() {
  admitted_in_pass_ = false, nodes_read_ = false, observed_all_ = false;
  try {
    renewLease(store_, opts_.owner);
  } catch (const std::exception&) {
    // A store hiccup: the next pass renews (the lease outlasts several passes).
  }
}

std::vector<backend::ReplicaStatus> JobController::statusesOf(const std::string& uid) {
  if (!observed_all_) {
    observed_ = backend_.observeAll();
    observed_all_ = true;
  }
  auto it = observed_.find(uid);
  return it != observed_.end() ? it->second : backend_.observe(uid);
}

void JobController::admitQueuedJobs() {
  admitted_in_pass_ = true;
  nodeStates();
  // A batch system is kept a backlog: each node counted batch_backlog
  // times, as copies (a job must still fit one real node; the placement is
  // the backend's anyway). Queue quotas and fair share still decide what
  // goes first.
  std::vector<sched::Node> nodes = nodes_;
  if (backend_.capabilities().queues_jobs)
    for (int copy = 2; copy <= opts_.batch_backlog; ++copy)
      for (const auto& n : nodes_) {
        sched::Node again = n;
        again.name = fmt::format("{}~{}", n.name, copy);
        nodes.push_back(std::move(again));
      }
  auto out = admitQueued(store_, nodes, opts_.scheduling, opts_.owner, nowSeconds());
  for (int64_t id : out.admitted) {
    auto& t = tracked_[id];
    if (!t) t = std::make_unique<Tracked>();
    t->launch_pending = true;
  }
  for (int64_t id : out.unschedulable) tracked_.erase(id);
}

void JobController::requeue(JobRecord& job, const std::string& reason, const std::string& message, bool preempted) {
  backend_.release(job.uid);
  job.phase = store::kQueued;
  job.reason = reason;
  job.message = message;
  job.node.clear();
  if (preempted) {
    job.preempt_requested = false;
    job.restarts += 1;  // a new attempt, not counted against backoffLimit
    job.preemptions += 1;
  }
  store_.transaction([&] {
    store_.setPlacements(job.id, {});
    store_.updateJobStatus(job);
    condition(job, store::kQueued, reason, message);
  });
  event(job, "Normal", reason, message + "; queued again");
  *tracked_[job.id] = Tracked();
}

void JobController::launchAttempt(JobRecord& job, int attempt) {
  Tracked& t = tracked(job);
  t.attempt = attempt;
  t.replicas.clear();
  t.observed.clear();
  t.stopping_reason.clear();
  t.succeeded = false;
  t.failure.reset();
  fs::create_directories(job.outputs_dir);
  // The job writes its outputs as the user it runs as (the outputs dir of
  // a spec that names one is the user's own already).
  if (opts_.run_uid >= 0 && chown(job.outputs_dir.c_str(), opts_.run_uid, opts_.run_gid) != 0)
    event(job, "Warning", "OutputsNotWritable", fmt::format("cannot hand {} to the job's user: {}", job.outputs_dir, std::strerror(errno)));
  t.placements = store_.placements(job.id);
  t.forced.clear();
  t.drain_since = 0;
  backend::PlacedJob placed = planAttempt(job, t.placements, attempt);
  try {
    if (job.spec.framework != "none")
      dist::wire(job.spec, placed, backend_.resolvePeers(placed), {.as_root = geteuid() == 0 && opts_.run_uid < 0});
    backend_.launch(placed);
  } catch (const backend::BackendError& e) {
    // Transient: the same launch again after a backoff (1, 2, 4 ... 60 s), 8 times at most.
    if (e.transient() && t.launch_failures < 8) {
      double wait = std::min(60.0, static_cast<double>(1 << t.launch_failures));
      t.launch_failures++;
      t.launch_pending = true;
      t.launch_at = nowSeconds() + wait;
      event(job, "Warning", "LaunchRetry", fmt::format("{}; trying again in {:g} s", e.what(), wait));
      return;
    }
    finish(job, store::kFailed, "LaunchFailed", e.what());
    return;
  } catch (const std::exception& e) {
    finish(job, store::kFailed, "LaunchFailed", e.what());
    return;
  }
  t.launch_failures = 0;
  t.launched_at = nowSeconds();
  observed_.erase(job.uid);  // what this pass observed is the attempt before
  auto statuses = backend_.observe(job.uid);
  for (const auto& s : statuses) t.observed.insert(s.name);
  store_.transaction([&] {
    for (const auto& s : statuses) {
      store::AttemptRecord a;
      a.job_id = job.id;
      a.attempt = attempt;
      a.replica = s.name;
      a.state = "Running";
      a.handle = s.handle;
      a.started_at = s.started_at;
      a.log_path = s.log_ref;
      store_.upsertAttempt(a);
    }
    job.message.clear();
    store_.updateJobStatus(job);
    condition(job, store::kRunning, "JobRunning",
              attempt == 0 ? fmt::format("TrainJob {} is running", job.name)
                           : fmt::format("TrainJob {} is running again (attempt {})", job.name, attempt + 1));
  });
  // The run record (git, image digests: commands that take their time) only
  // once the attempt is in the store: the launch is recorded first.
  if (attempt == 0) record(job);
  for (const auto& w : backend_.warnings()) event(job, "Warning", "NotEnforced", w);
}

void JobController::record(const JobRecord& job) {
  // Once: a restarted controller, or a later attempt, keeps the first.
  if (job.log_dir.empty() || std::filesystem::exists(artifacts::runRecordFile(job.log_dir))) return;
  artifacts::RecordContext ctx;
  ctx.backend = backend_.name();
  ctx.nodes = job.node;
  ctx.outputs_dir = job.outputs_dir;
  ctx.podman = backend::podman::findPodman();
  nlohmann::json r = artifacts::gatherRunRecord(job.spec, ctx);
  r["job"] = job.name;
  r["uid"] = job.uid;
  if (!job.user.empty()) r["user"] = job.user;
  std::string file = artifacts::runRecordFile(job.log_dir), tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << r.dump(2) << "\n";
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
}

bool JobController::collect(JobRecord& job, Tracked& t, bool final) {
  bool drained = true;
  std::vector<metrics::MetricPoint> points;
  double now = nowSeconds();
  const auto& mc = job.spec.metrics;
  for (const auto& role : job.spec.roles) {
    for (int i = 0; i < role.replicas; ++i) {
      std::string name = fmt::format("{}-{}", role.name, i);
      auto& r = t.replicas[name];
      // Every replica's log is read; metrics come from the primary replica
      // only (the others of a DDP job print the same numbers).
      bool primary = name == job.spec.primaryReplica();
      if (!r.collector && primary && mc.kind != spec::MetricsCollector::Kind::None) {
        r.collector = std::make_unique<metrics::Collector>(
            mc.kind == spec::MetricsCollector::Kind::File ? "File" : "StdOut", mc.format, mc.filter);
        // Implicit steps continue what is stored (after a takeover or a
        // restart), so they never repeat.
        for (const auto& s : store_.seriesInfo(job.id))
          if (s.points > 0) r.collector->resumeAfter(s.name, s.last_step);
        r.collector->restoreCarry(r.saved_carry);
      }
      // Everything through the backend, by its cursors: the log and the
      // metrics file may live on another machine or in a container.
      for (;;) {
        auto chunk = backend_.readLogAt(job.uid, t.attempt, name, r.log_cursor, 1 << 20);
        // (not worth waiting for a replica the controller ended: its node is gone)
        drained = drained && (!chunk.unavailable || t.forced.count(name));
        if (chunk.bytes.empty()) break;
        r.log_cursor = chunk.next;
        if (on_log) on_log(name, chunk.bytes);
        if (r.collector && mc.kind == spec::MetricsCollector::Kind::StdOut) r.collector->consume(chunk.bytes, now, points);
      }
      if (r.collector && mc.kind == spec::MetricsCollector::Kind::TensorFlowEvent) {
        fs::path dir = mc.path;
        if (dir.is_relative()) dir = fs::path(role.working_dir) / dir;
        std::string at = dir.lexically_normal().string();
        while (at.size() > 1 && at.back() == '/') at.pop_back();
        if (!r.events) r.events = std::make_unique<metrics::TfEventDirectory>(at, mc.names, r.file_cursor);
        auto before = r.events->errors();
        drained = drained && r.events->poll(
            [&](const std::string& d) { return backend_.listEventFilesAt(job.uid, t.attempt, name, d, metrics::TfEventDirectory::kMaxFiles); },
            [&](const std::string& path, const std::string& cursor) {
              auto c = backend_.readFileAt(job.uid, t.attempt, name, path, cursor, 1 << 20);
              return metrics::TfEventDirectory::Chunk{std::move(c.bytes), std::move(c.next), c.unavailable};
            },
            points);
        r.file_cursor = r.events->state();
        for (const auto& e : r.events->errors())
          if (std::find(before.begin(), before.end(), e) == before.end())
            event(job, "Warning", "MetricsFileUnreadable", fmt::format("{} (the rest of that file is not read)", e));
      }
      if (r.collector && (mc.kind == spec::MetricsCollector::Kind::File || mc.kind == spec::MetricsCollector::Kind::Custom)) {
        fs::path file = mc.path;
        if (file.is_relative()) file = fs::path(role.working_dir) / file;
        if (mc.kind == spec::MetricsCollector::Kind::Custom) file = customMetricsFile(job, t.attempt);
        for (;;) {
          auto chunk = backend_.readFileAt(job.uid, t.attempt, name, file.lexically_normal().string(), r.file_cursor, 1 << 20);
          drained = drained && (!chunk.unavailable || t.forced.count(name));
          if (chunk.bytes.empty()) break;
          r.file_cursor = chunk.next;
          r.collector->consume(chunk.bytes, now, points);
        }
      }
    }
  }
  // The replicas' last lines are parsed once their logs are read to the
  // end, or once waiting for that has taken too long (kDrainSeconds).
  bool finishing = final && (drained || drainGaveUp(t.drain_since, now));
  if (finishing)
    for (auto& [name, r] : t.replicas)
      if (r.collector) r.collector->finish(now, points);
  // How far the primary's output is read, and what of it is not parsed
  // yet: a controller taking over the job resumes there, so no point is
  // stored twice or lost.
  struct Cursors {
    std::string replica, log, file, carry;
  };
  std::vector<Cursors> moved;
  for (auto& [name, r] : t.replicas) {
    if (!r.collector) continue;
    std::string carry = finishing ? "" : r.collector->carry();
    if (r.log_cursor != r.saved_log_cursor || r.file_cursor != r.saved_file_cursor || carry != r.saved_carry) {
      moved.push_back({name, r.log_cursor, r.file_cursor, carry});
      r.saved_log_cursor = r.log_cursor;
      r.saved_file_cursor = r.file_cursor;
      r.saved_carry = carry;
    }
  }
  if (points.empty() && moved.empty()) return drained;
  auto restarted = restartedSeries(job, t, points);
  store_.transaction([&] {
    for (const auto& [name, from] : restarted) store_.truncateSeries(job.id, name, from);
    store_.appendMetrics(job.id, points);
    for (const auto& m : moved) store_.saveCollectCursors(job.id, t.attempt, m.replica, m.log, m.file, m.carry);
  });
  for (auto& p : points) t.latest[p.name] = p;
  return drained;
}

// A program that starts again (a new attempt, or a restart of its own)
// reports its steps again: like TensorBoard with a restarted run, the later
// points replace the earlier ones from the first repeated step on, so a
// series never holds a step twice. (Not for TensorFlowEvent: several event
// files may report one tag, each in step order.) Drops the replaced points
// from `points` too; returns the series to cut in the store, and where.
std::map<std::string, int64_t> JobController::restartedSeries(const JobRecord& job, Tracked& t, std::vector<metrics::MetricPoint>& points) {
  std::map<std::string, int64_t> cut;
  if (points.empty() || job.spec.metrics.kind == spec::MetricsCollector::Kind::TensorFlowEvent) return cut;
  if (!t.series_last) {
    t.series_last.emplace();
    for (const auto& s : store_.seriesInfo(job.id))
      if (s.points > 0) (*t.series_last)[s.name] = s.last_step;
  }
  auto& last = *t.series_last;
  std::vector<metrics::MetricPoint> kept;
  kept.reserve(points.size());
  for (auto& p : points) {
    auto it = last.find(p.name);
    if (it != last.end() && p.step <= it->second) {
      auto [at, fresh] = cut.try_emplace(p.name, p.step);
      if (!fresh) at->second = std::min(at->second, p.step);
      std::erase_if(kept, [&](const metrics::MetricPoint& k) { return k.name == p.name && k.step >= p.step; });
    }
    last[p.name] = p.step;
    kept.push_back(std::move(p));
  }
  points.swap(kept);
  return cut;
}

JobRecord JobController::adopt(int64_t job_id) {
  // Claimed by compare-and-set: the owner is read, checked and replaced in
  // one exclusive transaction, so of two servers taking over at once the
  // second finds the first (alive) and leaves the job to it.
  JobRecord job;
  std::string previous;
  store_.transaction([&] {
    auto rec = store_.getJobById(job_id);
    if (!rec) throw std::runtime_error(fmt::format("job {} is not in the store", job_id));
    job = std::move(*rec);
    if (store::isTerminal(job.phase)) return;
    if (job.owner != opts_.owner && ownerAlive(job.owner, &store_))
      throw std::runtime_error(fmt::format("job {} is driven by another live process ({})", job.name, job.owner));
    previous = job.owner;
    job.owner = opts_.owner;
    store_.updateJobStatus(job);
  });
  if (store::isTerminal(job.phase) || job.phase == store::kQueued) return job;
  Tracked& t = tracked(job);
  t.attempt = job.restarts;
  t.replicas.clear();
  t.observed.clear();
  t.placements = store_.placements(job.id);
  std::vector<backend::ReplicaStatus> recorded;
  for (const auto& a : store_.attempts(job.id)) {
    if (a.attempt != job.restarts) continue;
    backend::ReplicaStatus r;
    r.name = a.replica;
    r.attempt = a.attempt;
    r.handle = a.handle;
    r.started_at = a.started_at;
    r.log_ref = a.log_path;
    recorded.push_back(r);
    auto& tr = t.replicas[a.replica];
    tr.log_cursor = tr.saved_log_cursor = a.log_cursor;
    tr.file_cursor = tr.saved_file_cursor = a.file_cursor;
    tr.saved_carry = a.collect_carry;
    tr.recorded_exit = a.state == "Exited";
  }
  if (recorded.empty()) {
    // It died between deciding on this attempt and starting it.
    event(job, "Normal", "Reattached", fmt::format("taken over from {}; starting attempt {}", previous, job.restarts + 1));
    launchAttempt(job, job.restarts);
    return job;
  }
  auto statuses = backend_.reattach(job.uid, job.restarts, recorded);
  for (const auto& r : recorded) t.observed.insert(r.name);  // launched: each must be accounted for
  int running = 0;
  for (const auto& s : statuses) running += s.phase == backend::ReplicaPhase::Running;
  event(job, "Normal", "Reattached",
        fmt::format("taken over from {}: {} of {} replicas still running", previous, running, statuses.size()));
  return job;
}

void JobController::observe(JobRecord& job) {
  Tracked& t = tracked(job);
  if (t.attempt < 0) t.attempt = job.restarts;  // a controller taking over (server restart)
  auto statuses = statusesOf(job.uid);
  // A replica the backend reported and no longer does (its record lost, a
  // node gone) is Lost, as if killed: the job goes through its restart
  // policy instead of waiting for it forever.
  for (const auto& s : statuses) t.observed.insert(s.name);
  for (const auto& name : t.observed) {
    if (std::any_of(statuses.begin(), statuses.end(), [&](const auto& s) { return s.name == name; })) continue;
    backend::ReplicaStatus lost;
    lost.name = name;
    lost.attempt = t.attempt;
    lost.phase = backend::ReplicaPhase::Exited;
    lost.signal = SIGKILL;
    lost.reason = "Lost";
    lost.message = "the backend no longer reports this replica";
    lost.finished_at = nowSeconds();
    statuses.push_back(lost);
  }

  // A node declared down: its replicas are lost (as killed), the gang goes
  // through its restart policy and is placed again elsewhere.
  if (t.stopping_reason.empty() && !t.failure) {
    for (const auto& ns : nodeStates()) {
      if (ns.state != "Down") continue;
      for (const auto& p : t.placements) {
        if (p.node != ns.name) continue;
        for (const auto& s : statuses) {
          if (s.phase == backend::ReplicaPhase::Exited || (p.replica != "*" && p.replica != s.name)) continue;
          backend::ReplicaStatus lost = s;
          lost.phase = backend::ReplicaPhase::Exited;
          lost.signal = SIGKILL;
          lost.exit_code.reset();
          lost.reason = "NodeLost";
          lost.message = fmt::format("node {} is down{}", ns.name, ns.reason.empty() ? "" : " (" + ns.reason + ")");
          lost.finished_at = nowSeconds();
          t.forced[s.name] = "NodeLost";
          if (!t.failure) t.failure = lost;
        }
      }
    }
  }

  // A replica the backend has not started yet (an image pulled, a node
  // found): its reason is the job's message, and past the start timeout the
  // attempt has failed (StartTimeout), through the restart policy.
  if (t.launched_at == 0) t.launched_at = nowSeconds();  // taken over: counted from now
  std::string pending;
  for (const auto& s : statuses) {
    if (s.phase != backend::ReplicaPhase::Pending) continue;
    pending = fmt::format("replica {} not started yet{}", s.name,
                          s.reason.empty() ? "" : ": " + s.reason + (s.message.empty() ? "" : " (" + s.message + ")"));
    double waited = nowSeconds() - t.launched_at;
    if (t.stopping_reason.empty() && !t.failure && !backend_.capabilities().queues_jobs &&
        waited > static_cast<double>(job.spec.start_timeout_seconds)) {
      backend::ReplicaStatus late = s;
      late.phase = backend::ReplicaPhase::Exited;
      late.signal = SIGKILL;
      late.reason = "StartTimeout";
      late.message = fmt::format("still not started after {} s (startTimeoutSeconds){}", job.spec.start_timeout_seconds,
                                 s.reason.empty() ? "" : ": " + s.reason + (s.message.empty() ? "" : ": " + s.message));
      late.finished_at = nowSeconds();
      t.forced[s.name] = "StartTimeout";
      t.failure = late;
    }
    break;
  }
  if (pending != t.pending_note) {
    t.pending_note = pending;
    job.message = pending;
    store_.updateJobStatus(job);
    if (!pending.empty()) event(job, "Normal", "Pending", pending);
  }

  // Deadline: counted from the first start, as Kubernetes' activeDeadlineSeconds.
  if (job.spec.active_deadline_seconds && t.stopping_reason.empty() &&
      nowSeconds() - job.started_at > static_cast<double>(*job.spec.active_deadline_seconds)) {
    t.stopping_reason = "DeadlineExceeded";
    t.stopping_message = fmt::format("the job ran longer than activeDeadlineSeconds ({} s)",
                                     *job.spec.active_deadline_seconds);
    event(job, "Warning", "DeadlineExceeded", t.stopping_message);
    backend_.stop(job.uid, opts_.grace);
  }

  const std::string primary = job.spec.primaryReplica();
  bool all_exited = !statuses.empty();
  bool primary_ok = false;
  bool workers_ok = true;
  for (const auto& s : statuses) {
    bool exited = s.phase == backend::ReplicaPhase::Exited;
    bool ok = exited && s.exit_code && *s.exit_code == 0;
    if (!exited) all_exited = false;
    if (s.name == primary && ok) primary_ok = true;
    if (s.name.rfind("worker-", 0) == 0 && !ok) workers_ok = false;
    // A replica that fails before anyone was told to stop is the job's failure.
    if (exited && !ok && t.stopping_reason.empty() && !t.succeeded &&
        (!t.failure || s.finished_at < t.failure->finished_at))
      t.failure = s;
    auto& r = t.replicas[s.name];
    if (exited && !r.recorded_exit) {
      r.recorded_exit = true;
      store::AttemptRecord a;
      a.job_id = job.id;
      a.attempt = s.attempt;
      a.replica = s.name;
      a.state = "Exited";
      a.handle = s.handle;
      a.started_at = s.started_at;
      a.finished_at = s.finished_at;
      a.exit_code = s.exit_code;
      a.signal = s.signal;
      a.reason = t.forced.count(s.name) ? t.forced.at(s.name) : !t.stopping_reason.empty() && !ok ? t.stopping_reason : s.reason;
      a.log_path = s.log_ref;
      store_.upsertAttempt(a);
    }
  }
  // Success policy: the primary replica (Default) or every worker (AllWorkers).
  if (!t.failure && !t.succeeded && t.stopping_reason.empty()) {
    bool has_workers = job.spec.role("worker") && spec::launchesProcesses(job.spec.framework, "worker");
    t.succeeded = job.spec.success_policy == "AllWorkers" && has_workers ? workers_ok : primary_ok;
    if (t.succeeded && !all_exited) {
      // The rest (parameter servers, evaluators, idle workers) are no longer needed.
      t.stopping_reason = "Stopped";
      t.stopping_message = fmt::format("stopped after {} succeeded", primary);
      backend_.stop(job.uid, opts_.grace);
    }
  }
  // Gang: one failed replica brings the others down (they would hang on it).
  if (t.failure && !all_exited && t.stopping_reason.empty()) {
    t.stopping_reason = "GangStopped";
    t.stopping_message = fmt::format("stopped because replica {} failed", t.failure->name);
    event(job, "Warning", "ReplicaFailed", t.stopping_message);
    backend_.stop(job.uid, opts_.grace);
  }

  bool drained = collect(job, t, all_exited);
  if (!all_exited) return;
  // Every replica has exited but a log could not be read to its end: the
  // job's last metrics are in it, so the outcome waits (a bounded while).
  if (!drained && !drainGaveUp(t.drain_since, nowSeconds())) return;
  if (!drained) event(job, "Warning", "LogIncomplete",
                      fmt::format("the replicas' logs could not be read to their end within {} s; the last metrics may be missing",
                                  kDrainSeconds));

  if (t.stopping_reason == "Preempted" || t.stopping_reason == "Suspended") {
    requeue(job, t.stopping_reason, t.stopping_message, true);
    return;
  }
  if (t.stopping_reason == "EarlyStopped") {
    finish(job, store::kStopped, "EarlyStopped", t.stopping_message);
    return;
  }
  if (t.stopping_reason == "DeadlineExceeded" || t.stopping_reason == "Cancelled") {
    finish(job, store::kFailed, t.stopping_reason, t.stopping_message);
    return;
  }
  if (t.succeeded || !t.failure) {
    finish(job, store::kSucceeded, "JobSucceeded", fmt::format("TrainJob {} completed", job.name));
    return;
  }
  const backend::ReplicaStatus& failed = *t.failure;
  if (failed.reason == "StartTimeout" && backend_.capabilities().places_replicas) {
    // The backend's scheduler placed part of the gang and not the rest (an
    // affinity Trainyard does not model, a node taken meanwhile): the part
    // holds resources others may need, so it goes, and the gang waits its
    // turn again. Not a failure of the job: it does not count against backoffLimit.
    requeue(job, "GangTimeout",
            fmt::format("replica {} was not placed within {} s (startTimeoutSeconds){}", failed.name,
                        job.spec.start_timeout_seconds, failed.message.empty() ? "" : ": " + failed.message),
            true);
    return;
  }
  int code = effectiveExitCode(failed.exit_code, failed.signal);
  std::string what = failed.reason == "StartTimeout" ? fmt::format("replica {} did not start", failed.name)
                     : failed.signal ? fmt::format("replica {} was killed by signal {} ({})", failed.name, *failed.signal,
                                                   strsignal(*failed.signal))
                                     : fmt::format("replica {} exited with code {}", failed.name, code);
  if (!failed.message.empty()) what += ": " + failed.message;
  if (failed.reason == "OOMKilled") what += " (out of memory: raise resources.memory)";
  // Preemptions are attempts too, but not failures: they do not count against backoffLimit.
  FailureOutcome out = afterFailure(job.spec.restart_policy, job.restarts - job.preemptions, job.spec.backoff_limit, code,
                                    failed.reason);
  if (!out.restart) {
    std::string msg = what;
    if (out.reason == "BackoffLimitExceeded")
      msg += fmt::format("; gave up after {} restarts (backoffLimit {})", job.restarts, job.spec.backoff_limit);
    if (out.reason == "PermanentError") msg += "; exit codes 1-127 are permanent under restartPolicy ExitCode";
    finish(job, store::kFailed, out.reason, msg);
    return;
  }
  backend_.release(job.uid);
  job.restarts += 1;
  job.phase = store::kRestarting;
  job.reason = "Restarting";
  job.message = what;
  store_.transaction([&] {
    store_.updateJobStatus(job);
    condition(job, store::kRestarting, "JobRestarting",
              fmt::format("{}; restarting all replicas (restart {} of at most {})", what, job.restarts,
                          job.spec.backoff_limit));
  });
  event(job, "Warning", "Restarting", what);
  // A gang with a replica on a node that is gone, down or drained (by an
  // administrator, or by its backend: a Kubernetes node NotReady) is placed again.
  nodeStates();
  for (const auto& p : t.placements) {
    bool usable = std::any_of(nodes_.begin(), nodes_.end(), [&](const auto& n) { return n.name == p.node && n.schedulable; }) &&
                  std::none_of(node_states_.begin(), node_states_.end(), [&](const auto& s) { return s.name == p.node; });
    if (!usable) {
      requeue(job, "Restarting", fmt::format("{}; node {} cannot be used, so the gang is placed again", what, p.node), false);
      return;
    }
  }
  job.phase = store::kRunning;
  launchAttempt(job, job.restarts);
}

void JobController::finish(JobRecord& job, const std::string& phase, const std::string& reason,
                           const std::string& message) {
  job.phase = phase;
  job.reason = reason;
  job.message = message;
  job.finished_at = nowSeconds();
  job.node.clear();
  job.allocation.clear();
  job.preempt_requested = false;
  store_.transaction([&] {
    store_.setPlacements(job.id, {});  // frees the resources for the queue
    store_.updateJobStatus(job);
    condition(job, phase, reason, message);
    event(job, phase == store::kSucceeded ? "Normal" : "Warning", reason, message);
  });
  backend_.release(job.uid);
}

}  // namespace trainyard::control
