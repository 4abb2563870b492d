#include "control/launch_plan.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

backend::PlacedJob planAttempt(const store::JobRecord& job, const sched::Allocation& alloc, int attempt) {
  backend::PlacedJob placed;
  placed.uid = job.uid;
  placed.name = job.name;
  placed.attempt = attempt;
  placed.node = alloc.node;
  placed.log_dir = job.log_dir;
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
      r.resources = {role.resources.cpu_millis, role.resources.memory_bytes, role.resources.gpu};
      r.run = spec::launchesProcesses(job.spec.framework, role.name);
      for (int g = 0; g < role.resources.gpu && next_gpu < alloc.gpu_ids.size(); ++g)
        r.gpu_ids.push_back(alloc.gpu_ids[next_gpu++]);

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

std::string encodeAllocation(const sched::Allocation& a) {
  return nlohmann::json{{"cpu_millis", a.held.cpu_millis},
                        {"memory_bytes", a.held.memory_bytes},
                        {"gpu", a.held.gpu},
                        {"gpu_ids", a.gpu_ids}}
      .dump();
}

sched::Allocation decodeAllocation(const std::string& job, const std::string& node, const std::string& json) {
  sched::Allocation a;
  a.job = job;
  a.node = node;
  if (json.empty()) return a;
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object()) return a;
  a.held.cpu_millis = j.value("cpu_millis", int64_t{0});
  a.held.memory_bytes = j.value("memory_bytes", int64_t{0});
  a.held.gpu = j.value("gpu", 0);
  a.gpu_ids = j.value("gpu_ids", std::vector<int>{});
  return a;
}

}  // namespace trainyard::control
