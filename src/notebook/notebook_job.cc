#include "notebook/notebook_job.h"

#include <stdexcept>

#include <fmt/format.h>

#include "spec/parser.h"

namespace trainyard::notebook {
namespace {
constexpr const char* kNameLabel = "trainyard.dev/notebook";
constexpr const char* kOwnerLabel = "trainyard.dev/notebook-owner";
constexpr const char* kIdleLabel = "trainyard.dev/notebook-idle-timeout";

// Started by /bin/sh so that the scoped token is read from its file at
// start, not written into the spec: $1 is the state dir, then Jupyter's
// arguments.
constexpr const char* kStartScript =
    "TRAINYARD_TOKEN=\"$(cat \"$1/user-token\" 2>/dev/null)\"; export TRAINYARD_TOKEN; "
    "[ -n \"$TRAINYARD_BIN\" ] && PATH=\"$PATH:${TRAINYARD_BIN%/*}\"; export PATH; shift; exec jupyter-notebook \"$@\"";
}  // namespace

std::string ownerSegment(const std::string& owner) { return owner.empty() ? "_" : owner; }

std::string basePath(const std::string& owner, const std::string& name) {
  return fmt::format("/notebooks/{}/{}/", ownerSegment(owner), name);
}

std::string jobName(const std::string& owner, const std::string& name) {
  std::string o;
  for (char c : owner) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    o += (std::isalnum(static_cast<unsigned char>(l)) ? l : '-');
  }
  std::string job = o.empty() ? "nb-" + name : fmt::format("nb-{}-{}", o, name);
  while (job.find("--") != std::string::npos) job.replace(job.find("--"), 2, "-");
  if (!spec::isValidName(job))
    throw std::invalid_argument(fmt::format("the notebook's job name \"{}\" (nb-<owner>-<name>) is not a valid name of at most 63 "
                                            "characters: choose a shorter name",
                                            job));
  return job;
}

std::optional<NotebookRef> notebookOf(const spec::TrainJobSpec& job) {
  auto n = job.labels.find(kNameLabel);
  if (n == job.labels.end()) return std::nullopt;
  NotebookRef r;
  r.name = n->second;
  if (auto o = job.labels.find(kOwnerLabel); o != job.labels.end()) r.owner = o->second;
  if (auto t = job.labels.find(kIdleLabel); t != job.labels.end()) {
    try {
      r.idle_timeout_seconds = std::stoll(t->second);
    } catch (const std::exception&) {
    }
  }
  return r;
}

spec::TrainJobSpec notebookJob(const spec::NotebookSpec& nb, const std::string& owner, const Launch& at) {
  spec::TrainJobSpec job = nb.job;
  job.name = jobName(owner, nb.name);
  job.kind = "TrainJob";
  job.framework = "none";
  job.labels[kNameLabel] = nb.name;
  job.labels[kOwnerLabel] = owner;
  job.labels[kIdleLabel] = std::to_string(nb.idle_timeout_seconds);
  // A Jupyter server that dies is started again (its workspace is on disk);
  // one that is stopped (cancelled, culled) is not.
  job.restart_policy = spec::RestartPolicy::OnFailure;
  job.backoff_limit = 3;
  job.metrics.kind = spec::MetricsCollector::Kind::None;
  auto& r = job.roles.at(0);
  r.name = "notebook";
  r.replicas = 1;
  r.working_dir = at.working_dir;
  r.command = {"/bin/sh", "-c", kStartScript, "trainyard-notebook", at.state_dir,
               "--no-browser",
               "--ip=127.0.0.1",
               fmt::format("--port={}", at.port),
               "--port-retries=50",
               fmt::format("--NotebookApp.base_url={}", basePath(owner, nb.name)),
               fmt::format("--NotebookApp.notebook_dir={}", at.working_dir),
               // Only the server's proxy talks to it, with the token: no
               // browser ever opens it directly, and no password is set.
               "--NotebookApp.allow_remote_access=False",
               "--NotebookApp.quit_button=False",
               // Jupyter refuses root unless told; whether jobs run as root
               // is the server's --run-as decision, not Jupyter's.
               "--allow-root"};
  r.args.clear();
  // A container (host network, as every local one) sees both directories
  // where the server made them.
  if (!r.image.empty())
    for (const auto& dir : {at.state_dir, at.working_dir}) r.volumes.push_back({dir, dir, false});
  auto setEnv = [&](const std::string& k, const std::string& v) {
    for (auto& [name, value] : r.env)
      if (name == k) return void(value = v);
    r.env.emplace_back(k, v);
  };
  setEnv("JUPYTER_TOKEN_FILE", at.state_dir + "/jupyter-token");
  setEnv("JUPYTER_RUNTIME_DIR", at.state_dir + "/runtime");
  setEnv("JUPYTER_CONFIG_DIR", at.state_dir + "/config");
  setEnv("JUPYTER_DATA_DIR", at.state_dir + "/data");
  setEnv("IPYTHONDIR", at.state_dir + "/ipython");
  setEnv("MPLCONFIGDIR", at.state_dir + "/matplotlib");
  setEnv("TRAINYARD_SERVER", at.server_url);
  if (!at.trainyard_bin.empty()) setEnv("TRAINYARD_BIN", at.trainyard_bin);
  setEnv("TRAINYARD_NOTEBOOK", ownerSegment(owner) + "/" + nb.name);
  return job;
}

}  // namespace trainyard::notebook
