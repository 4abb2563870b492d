#include "control/launch_plan.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "util/format.h"

namespace trainyard::control {
namespace {

void setDefault(std::vector<std::pair<std::string, std::string>>& env, const std::string& key,
                const std::string& value) {
  bool present = std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == key; });
  if (!present) env.emplace_back(key, value);
}

void setForced(std::vector<std::pair<std::string, std::string>>& env, const std::string& key,
               const std::string& value) {
  std::erase_if(env, [&](const auto& kv) { return kv.first == key; });
  env.emplace_back(key, value);
}

}  // namespace

// A trial's File collector path (or TensorFlowEvent directory) that is
// absolute and outside its working directory and outputs (Katib's
// /katib/mnist.json): on a cluster each pod has its own, and parallel trials
// here must not share one file. The directory is the trial's own, kept under
// its log directory.
std::optional<backend::Mount> privateCollectorDir(const store::JobRecord& job) {
  const auto& mc = job.spec.metrics;
  bool events = mc.kind == spec::MetricsCollector::Kind::TensorFlowEvent;
  if ((mc.kind != spec::MetricsCollector::Kind::File && !events) || mc.path.empty() || mc.path[0] != '/') return std::nullopt;
  if (!job.spec.labels.count(store::kExperimentLabel) || job.log_dir.empty()) return std::nullopt;
  if (!job.outputs_dir.empty() && spec::isInside(mc.path, job.outputs_dir)) return std::nullopt;
  for (const auto& role : job.spec.roles)
    if (!role.working_dir.empty() && spec::isInside(mc.path, role.working_dir)) return std::nullopt;
  std::filesystem::path dir = std::filesystem::path(mc.path).lexically_normal();
  if (!events || !dir.has_filename()) dir = dir.parent_path();  // a file's directory; "/x/" is /x
  return backend::Mount{(std::filesystem::path(job.log_dir) / "private" / dir.relative_path()).string(), dir.string(), false};
}

std::string customMetricsFile(const store::JobRecord& job, int attempt) {
  return (std::filesystem::path(job.outputs_dir) / "trainyard" / fmt::format("custom-metrics-{}.log", attempt)).string();
}

// The Custom collector: the primary's program runs under a shell that starts
// the collector beside it (told the program's pid), sends the collector's
// output to a file of the attempt, gives it 30 s after the program ends to
// finish, and exits with the program's status. It runs in the same process
// tree, container or pod, so every backend runs it the same way.
std::vector<std::string> wrapWithCustomCollector(const std::vector<std::string>& argv,
                                                 const std::vector<std::string>& collector) {
  std::string cmd;
  for (const auto& a : collector) cmd += (cmd.empty() ? "" : " ") + util::shellQuote(a);
  std::string script =
      "d=\"$TRAINYARD_OUTPUT_DIR/trainyard\"; mkdir -p \"$d\"\n"
      "\"$@\" & main=$!\n"
      "trap 'kill -TERM $main 2>/dev/null' TERM INT\n"
      "TRAINYARD_MAIN_PID=$main; export TRAINYARD_MAIN_PID\n" +
      cmd + " >\"$d/custom-metrics-$TRAINYARD_ATTEMPT.log\" 2>&1 </dev/null & col=$!\n"
      "wait $main; rc=$?\n"
      "while kill -0 $main 2>/dev/null; do wait $main; rc=$?; done\n"
      "i=0; while kill -0 $col 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
      "kill -TERM $col 2>/dev/null; wait $col 2>/dev/null\n"
      "exit $rc\n";
  std::vector<std::string> out{"/bin/sh", "-c", script, "trainyard-custom-collector"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

backend::PlacedJob planAttempt(const store::JobRecord& job, const std::vector<sched::Placement>& placements, int attempt) {
  backend::PlacedJob placed;
  placed.uid = job.uid;
  placed.name = job.name;
  placed.kind = job.spec.kind;
  placed.labels = job.spec.labels;
  placed.slurm = job.spec.slurm;
  placed.spread = job.spec.placement == "spread";
  placed.slots_per_worker = job.spec.slots_per_worker;
  placed.deadline_seconds = job.spec.active_deadline_seconds.value_or(0);
  placed.attempt = attempt;
  placed.log_dir = job.log_dir;
  const sched::Placement* whole = nullptr;
  for (const auto& p : placements)
    if (p.replica == "*") whole = &p;
  size_t next_gpu = 0;
  for (const auto& role : job.spec.roles) {
    for (int i = 0; i < role.replicas; ++i) {
      backend::ReplicaLaunch r;
      r.role = role.name;
      r.index = i;
      r.name = fmt::format("{}-{}", role.name, i);
      r.argv = role.command;
      r.argv.insert(r.argv.end(), role.args.begin(), role.args.end());
      r.working_dir = role.working_dir;
      r.image = role.image;
      r.image_pull_policy = role.image_pull_policy;
      if (!job.spec.build.context.empty()) {
        r.build_context = job.spec.build.context;
        r.build_file = job.spec.build.containerfile;
        if (r.image.empty()) {
          // Named by the context (its tag is its content's hash), not the
          // job: every job of an unchanged context finds the same image.
          std::string base = std::filesystem::path(job.spec.build.context).filename().string(), repo;
          for (char c : base)
            repo += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                                                                : (c == '.' || c == '_' || c == '-') ? c : '-';
          r.image = "localhost/trainyard-build-" + (repo.empty() || !std::isalnum(static_cast<unsigned char>(repo[0])) ? "context" + repo : repo);
        }
      }
      r.image_entrypoint = role.command.empty();  // args alone: the image's entrypoint stays
      if (job.spec.metrics.kind == spec::MetricsCollector::Kind::Custom && r.name == job.spec.primaryReplica() && r.run &&
          !r.image_entrypoint)
        r.argv = wrapWithCustomCollector(r.argv, job.spec.metrics.command);
      for (const auto& v : role.volumes) r.mounts.push_back({v.host_path, v.mount_path, v.read_only});
      if (auto own = privateCollectorDir(job)) r.private_mounts.push_back(*own);
      r.node_selector = job.spec.node_selector;
      r.pod_template = role.pod_template;
      r.main_container = role.main_container;
      r.resources = {role.resources.cpu_millis, role.resources.memory_bytes, role.resources.gpu};
      r.resources.gpu_share = role.resources.gpu_share;
      r.run = spec::launchesProcesses(job.spec.framework, role.name);
      auto own = std::find_if(placements.begin(), placements.end(), [&](const auto& p) { return p.replica == r.name; });
      if (own != placements.end()) {
        r.node = own->node;
        r.gpu_ids = own->gpu_ids;
      } else if (whole) {
        r.node = whole->node;
        for (int g = 0; g < role.resources.gpu && next_gpu < whole->gpu_ids.size(); ++g)
          r.gpu_ids.push_back(whole->gpu_ids[next_gpu++]);
      }

      r.env = role.env;
      std::string threads = std::to_string(std::max<int64_t>(1, role.resources.cpu_millis / 1000));
      for (const char* k : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"})
        setDefault(r.env, k, threads);
      // PyTorch already runs OpenMP threads around its BLAS calls; a pthread
      // OpenBLAS spawning as many again oversubscribes the cores (measured
      // 3x slower on the Fashion-MNIST example), so BLAS stays single-threaded
      // unless the spec says otherwise.
      setDefault(r.env, "OPENBLAS_NUM_THREADS", "1");
      std::string gpus;
      for (int g : r.gpu_ids) gpus += (gpus.empty() ? "" : ",") + std::to_string(g);
      // Exclusive by construction: a replica sees only its own devices.
      setForced(r.env, "CUDA_VISIBLE_DEVICES", gpus);
      setForced(r.env, "TRAINYARD_JOB_NAME", job.name);
      setForced(r.env, "TRAINYARD_JOB_UID", job.uid);
      setForced(r.env, "TRAINYARD_REPLICA", r.name);
      setForced(r.env, "TRAINYARD_ATTEMPT", std::to_string(attempt));
      setForced(r.env, "TRAINYARD_OUTPUT_DIR", job.outputs_dir);
      placed.replicas.push_back(std::move(r));
    }
  }
  return placed;
}

}  // namespace trainyard::control
