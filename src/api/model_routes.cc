// The model repository of `trainyard server --models DIR`, for a remote
// user: POST /api/v1/models {"from": JOB or EXPERIMENT, "name": MODEL}
// pushes the job's model.pt (an experiment's best trial's) as the model's
// next version, with the job's access rules (serving/model_push.h).
#include "api/route_context.h"

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "api/views.h"
#include "http/server.h"
#include "serving/model_push.h"

namespace trainyard::api {
namespace fs = std::filesystem;
namespace {

class ModelRoutes final : public RouteGroup, RouteContext {
 public:
  explicit ModelRoutes(const RouteContext& c) : RouteContext(c) { mount(); }

 private:
  void mount() {
    route("POST", "/api/v1/models", "/api/v1/models", [this](const auto& req, auto& res, const User& u) { push(req, res, u); });
  }

  void push(const http::Request& req, http::Response& res, const User& u) {
    if (opts.models_dir.empty())
      throw ApiError(409, "NoModelRepository", "this server hosts no model repository (start it with --models DIR)");
    json b = json::parse(req.body, nullptr, false);
    if (!b.is_object() || !b.contains("from") || !b["from"].is_string() || !b.contains("name") || !b["name"].is_string())
      throw ApiError(400, "InvalidRequest", "expected {\"from\": \"<job or experiment>\", \"name\": \"<model>\"}", "from");
    std::string from = b["from"].get<std::string>(), name = b["name"].get<std::string>();
    if (from.size() > 253 || name.size() > 253) throw ApiError(400, "InvalidRequest", "names are at most 253 characters", "name");
    ModelSource src;
    try {
      src = timed("model_source", [&] { return modelSource(db(), from); });
    } catch (const std::invalid_argument& e) {
      // Whether it exists is not told to who may not read it: the access check first.
      if (db().getExperiment(from)) experiment(u, from);
      else if (db().getJob(from)) job(u, from);
      throw ApiError(409, "NothingToPush", e.what(), "from");
    }
    // The caller must be allowed to read what is pushed.
    if (!src.experiment.empty()) experiment(u, src.experiment);
    else job(u, src.job.name);
    serving::Pushed pushed;
    try {
      pushed = serving::pushModel(opts.models_dir, name, (fs::path(src.job.outputs_dir) / "model.pt").string());
    } catch (const serving::PushError& e) {
      throw ApiError(400, "InvalidRequest", e.what(), spec::isValidName(name) ? "from" : "name");
    }
    sendJson(res, 201, {{"model", name}, {"version", pushed.version}, {"path", pushed.path}, {"from", src.what}});
  }
};

}  // namespace

std::unique_ptr<RouteGroup> mountModelRoutes(const RouteContext& c) { return std::make_unique<ModelRoutes>(c); }

}  // namespace trainyard::api
