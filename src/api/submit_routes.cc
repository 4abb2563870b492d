// Submissions: POST a TrainJob (or Kubeflow job) or an Experiment as YAML or
// JSON; confines non-admin users to their workspace; writes desired state
// and wakes the control plane.
#include "api/route_context.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/views.h"
#include "artifacts/run_record.h"
#include "control/control_plane.h"
#include "http/server.h"
#include "store/store.h"
#include "control/experiment_controller.h"
#include "control/job_controller.h"
#include "control/admission.h"
#include "sched/scheduler.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {

class SubmitRoutes final : public RouteGroup, RouteContext {
 public:
  explicit SubmitRoutes(const RouteContext& c) : RouteContext(c) { mount(); }

 private:
  void mount() {
    route("POST", "/api/v1/jobs", "/api/v1/jobs", [this](const auto& req, auto& res, const User& u) { submit(req, res, u, false); }, kMaxSubmitBody);
    route("POST", "/api/v1/experiments", "/api/v1/experiments", [this](const auto& req, auto& res, const User& u) { submit(req, res, u, true); }, kMaxSubmitBody);
    route("POST", R"(/api/v1/jobs/([^/]+)/rerun)", "/api/v1/jobs/{name}/rerun", [this](const auto& req, auto& res, const User& u) { rerun(req, res, u); });
  }

  // A non-admin user's files: workingDir, baseDir and outputs.dir stay in
  // DATA_DIR/workspaces/<user>. Admins (and everyone without --auth, where
  // the one user owns the machine) are free.
  std::string workspaceOf(const User& u) {
    if (!opts.access.auth || u.admin || opts.data_dir.empty()) return "";
    return makeWorkspace(u.name);
  }

  // `podman build` runs as the server's Unix user (root on a shared
  // server), over a context the spec names: only administrators may ask
  // for one where there are users.
  void refuseBuild(const spec::TrainJobSpec& s, const User& u) {
    if (!s.build.context.empty() && opts.access.auth && !u.admin)
      throw ApiError(403, "Forbidden",
                     "spec.build runs podman build as the server's own user: only an administrator may build on a "
                     "shared server; build the image yourself and name it in spec.image",
                     "spec.build");
  }

  // A job again from its run record (artifacts/run_record.h), as the caller:
  // whoever may read a job may run it again as their own, within their
  // workspace and queues.
  void rerun(const http::Request& req, http::Response& res, const User& u) {
    if (!plane) throw ApiError(503, "ReadOnly", "this server does not run jobs");
    requireFreeSpace();
    auto j = job(u, req.matches[1]);
    artifacts::Rerun again = artifacts::rerunOf(j.name, j.spec, artifacts::readRunRecord(j.log_dir));
    std::string workspace = workspaceOf(u);
    if (!workspace.empty())
      if (auto [field, path] = spec::pathOutside(again.spec, workspace); !field.empty())
        throw ApiError(403, "OutsideWorkspace", fmt::format("{} is outside your workspace {}", path, workspace), field);
    refuseBuild(again.spec, u);
    const auto& o = plane->options();
    if (auto no = control::refuseAtSubmit(again.spec, u.name, plane->status().nodes, db().queueDefs(), o.scheduling))
      throw ApiError(no->code == "Forbidden" ? 403 : 400, no->code, no->message, no->field);
    std::string base = again.spec.name;
    store::JobRecord created;
    for (int i = 1;; ++i) {
      again.spec.name = i == 1 ? base : fmt::format("{}-{}", base.substr(0, 60), i);
      try {
        created = timed("create_job", [&] { return control::submitJob(db(), again.spec, o, u.name); });
        break;
      } catch (const store::NameConflict&) {
        if (i > 100) throw ApiError(409, "Conflict", fmt::format("no free name for a rerun of {}", j.name), "name");
      }
    }
    json out = jobSummary(db(), created);
    out["warnings"] = again.warnings;
    wake();
    sendJson(res, 201, out);
  }

  void submit(const http::Request& req, http::Response& res, const User& u, bool want_experiment) {
    if (!plane) throw ApiError(503, "ReadOnly", "this server does not run jobs");
    requireFreeSpace();
    std::string workspace = workspaceOf(u);
    spec::LoadedSpec loaded = loadSpecBody(req, workspace);
    if (loaded.queue) {
      // Queues and cohorts divide the cluster: administrators only.
      if (!u.admin) throw ApiError(403, "Forbidden", fmt::format("only administrators apply a {}", loaded.queue->kind), "kind");
      timed("apply_queue", [&] { control::applyQueue(db(), *loaded.queue, u.name); return 0; });
      wake();
      json out = *loaded.queue;
      out["warnings"] = loaded.warnings;
      sendJson(res, 201, out);
      return;
    }
    if (loaded.notebook)
      throw ApiError(400, "WrongKind", "this is a Notebook: POST it to /api/v1/notebooks (trainyard notebook start FILE)", "kind");
    if (loaded.experiment && !want_experiment)
      throw ApiError(400, "WrongKind", "this is an Experiment: POST it to /api/v1/experiments", "kind");
    if (!loaded.experiment && want_experiment)
      throw ApiError(400, "WrongKind", fmt::format("this is a {}: POST it to /api/v1/jobs", loaded.kind), "kind");
    // What will run: the job, or one trial as validation renders it.
    spec::TrainJobSpec runs = loaded.job;
    if (loaded.experiment) {
      if (!workspace.empty()) loaded.experiment->base_dir = loaded.experiment->workspace = workspace;
      try {
        runs = loaded.experiment->sampleTrial();  // with a workspace, throws for a path outside it
      } catch (const spec::SpecError& e) {
        if (workspace.empty()) throw;
        throw ApiError(403, "OutsideWorkspace", e.message, e.field);
      }
    } else if (!workspace.empty()) {
      if (auto [field, path] = spec::pathOutside(runs, workspace); !field.empty())
        throw ApiError(403, "OutsideWorkspace", fmt::format("{} is outside your workspace {}", path, workspace), field);
    }
    refuseBuild(runs, u);
    // A job no node could ever hold is refused now, with the numbers, rather
    // than accepted to fail as Unschedulable on the next pass.
    const auto& o = plane->options();
    if (auto no = control::refuseAtSubmit(runs, u.name, plane->status().nodes, db().queueDefs(), o.scheduling))
      throw ApiError(no->code == "Forbidden" ? 403 : 400, no->code, loaded.experiment ? "a trial: " + no->message : no->message,
                     no->field);
    json out;
    if (loaded.experiment) {
      auto e = timed("create_experiment", [&] { return control::submitExperiment(db(), *loaded.experiment, o, u.name); });
      out = experimentJson(db(), e, false);
    } else {
      auto j = timed("create_job", [&] { return control::submitJob(db(), loaded.job, o, u.name); });
      out = jobSummary(db(), j);
    }
    out["warnings"] = loaded.warnings;
    wake();
    sendJson(res, 201, out);
  }
};

}  // namespace

std::unique_ptr<RouteGroup> mountSubmitRoutes(const RouteContext& c) { return std::make_unique<SubmitRoutes>(c); }

}  // namespace trainyard::api
