#include "control/control_plane.h"

#include <chrono>
#include <future>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "control/experiment_controller.h"
#include "control/finished_job_ttl.h"
#include "control/owner.h"
#include "store/store.h"

namespace trainyard::control {

ControlPlane::ControlPlane(std::string store_location, ControllerOptions opts, backend::BackendFactory make_backend,
                           ControlPlaneHooks hooks)
    : location_(std::move(store_location)), opts_(std::move(opts)), make_backend_(std::move(make_backend)),
      hooks_(std::move(hooks)) {
  if (opts_.owner.empty()) opts_.owner = selfOwner();
}

ControlPlane::~ControlPlane() { stop(); }

void ControlPlane::start() {
  std::promise<void> ready;
  auto started = ready.get_future();
  thread_ = std::thread([this, &ready] {
    bool up = false;
    try {
      run([&] {
        up = true;
        ready.set_value();
      });
    } catch (const std::exception& e) {
      // Before the loop is up the caller hears about it; after, it is logged.
      if (!up) ready.set_exception(std::current_exception());
      else spdlog::error("control loop stopped: {}", e.what());
    }
  });
  started.get();
}

void ControlPlane::stop() {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void ControlPlane::wake() {
  {
    std::lock_guard lk(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

ControlPlaneStatus ControlPlane::status() const {
  std::lock_guard lk(mu_);
  return status_;
}

std::optional<backend::LogChunk> ControlPlane::readLog(const std::string& uid, int attempt, const std::string& replica,
                                                      const std::string& cursor, size_t max_bytes) const {
  std::shared_ptr<backend::Backend> b;
  {
    std::lock_guard lk(mu_);
    b = backend_;
  }
  if (!b) return std::nullopt;
  return b->readLogAt(uid, attempt, replica, cursor, max_bytes);
}

void ControlPlane::run(const std::function<void()>& ready) {
  auto store = store::openStore(location_);
  std::shared_ptr<backend::Backend> backend = make_backend_();
  {
    std::lock_guard lk(mu_);
    backend_ = backend;
  }
  JobController jobs(*store, *backend, opts_);
  ExperimentController exps(*store, jobs, opts_);

  // Take over what a previous (dead) server left: jobs first, so their
  // experiments find them driven by this process and do not re-run them.
  // One job or experiment that cannot be taken over must not keep the
  // server from starting: it is logged, and the loop tries it again.
  for (const auto& job : store->listActiveJobs()) {
    if (job.owner == opts_.owner || ownerAlive(job.owner, store.get())) continue;
    try {
      auto now = jobs.adopt(job.id);
      spdlog::info("took over job {} ({}) from {}", job.name, now.phase, job.owner);
    } catch (const std::exception& e) {
      spdlog::error("cannot take over job {}: {}", job.name, e.what());
    }
  }
  for (const auto& e : store->listActiveExperiments()) {
    if (e.owner == opts_.owner || ownerAlive(e.owner, store.get())) continue;
    try {
      exps.resume(e.name, false);
      spdlog::info("took over experiment {} from {}", e.name, e.owner);
    } catch (const std::exception& err) {
      spdlog::error("cannot take over experiment {}: {}", e.name, err.what());
    }
  }
  FinishedJobTtl ttl;
  try {
    ttl.scan(*store);
  } catch (const std::exception& e) {
    spdlog::error("cannot read finished jobs for ttlSecondsAfterFinished: {}", e.what());
  }
  ready();

  std::map<int64_t, std::string> phase_seen;
  while (!stopping_) {
    auto t0 = std::chrono::steady_clock::now();
    jobs.beginPass();
    ControlPlaneStatus st;
    // Read once per pass, by the controller (a Kubernetes backend lists
    // nodes and pods for it: not twice).
    st.nodes = jobs.nodes();
    try {
      for (const auto& e : store->listActiveExperiments()) {
        try {
          if (e.owner != opts_.owner) {
            if (ownerAlive(e.owner, store.get())) continue;  // a `trainyard run` drives it
            exps.resume(e.name, false);
          }
          exps.reconcile(e.id);
        } catch (const std::exception& err) {
          spdlog::error("experiment {}: {}", e.name, err.what());
        }
      }
      for (auto& job : store->listActiveJobs()) {
        if (job.owner != opts_.owner) {
          if (ownerAlive(job.owner, store.get())) continue;
          try {
            jobs.adopt(job.id);
          } catch (const std::exception& err) {
            spdlog::error("cannot take over job {}: {}", job.name, err.what());
            continue;
          }
        }
        // Trial jobs were driven by their experiment above.
        store::JobRecord now = job;
        try {
          if (!job.spec.labels.count(store::kExperimentLabel)) now = jobs.reconcile(job.id);
        } catch (const std::exception& err) {
          spdlog::error("job {}: {}", job.name, err.what());
        }
        // Admitted in this pass (by this loop, or by the experiment's).
        bool was_queued = job.phase == store::kQueued || phase_seen[job.id] == store::kQueued;
        if (was_queued && now.phase != store::kQueued && now.started_at > 0 && hooks_.on_admitted)
          hooks_.on_admitted(now.started_at - now.created_at);
        phase_seen[job.id] = now.phase;
        if (store::isTerminal(now.phase)) {
          phase_seen.erase(job.id);
          ttl.finished(now);
          continue;
        }
        st.jobs_by_phase[now.phase]++;
        if (now.phase == store::kQueued) st.queued++;
      }
      for (const auto& name : ttl.collect(*store, store::nowSeconds()))
        spdlog::info("deleted job {}: ttlSecondsAfterFinished passed", name);
      for (const auto& [id, placements] : store->allPlacements())
        for (const auto& p : placements) st.used[p.node] += p.held;
    } catch (const std::exception& e) {
      // A store hiccup (locked, connection reset) must not end the server:
      // the next pass reconciles again from the stored state.
      spdlog::error("reconcile pass failed: {}", e.what());
    }
    st.warnings = backend->warnings();
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (hooks_.on_pass) hooks_.on_pass(took);
    // Replica exits wake the backend's wait; submissions wake the condition.
    const bool busy = !st.jobs_by_phase.empty();
    {
      std::unique_lock lk(mu_);
      status_ = std::move(st);
      if (woken_ || !busy) {
        if (!woken_) cv_.wait_for(lk, std::chrono::milliseconds(250), [&] { return woken_ || stopping_.load(); });
        woken_ = false;
        continue;
      }
    }
    jobs.wait(std::chrono::milliseconds(100));
  }
}

}  // namespace trainyard::control
