#include "dist/wiring.h"

#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace trainyard::dist {
namespace {

void setEnv(backend::ReplicaLaunch& r, const std::string& key, const std::string& value) {
  std::erase_if(r.env, [&](const auto& kv) { return kv.first == key; });
  r.env.emplace_back(key, value);
}

void wirePyTorch(const spec::TrainJobSpec& spec, backend::PlacedJob& job, const std::vector<backend::Endpoint>& eps) {
  size_t master = 0;
  for (size_t i = 0; i < job.replicas.size(); ++i)
    if (job.replicas[i].role == "master") master = i;
  const auto& addr = eps.at(master);
  // Rank order: the master first, then every other replica in role order.
  int next_rank = 1;
  std::string world = std::to_string(job.replicas.size());
  for (size_t i = 0; i < job.replicas.size(); ++i) {
    auto& r = job.replicas[i];
    std::string rank = i == master ? "0" : std::to_string(next_rank++);
    setEnv(r, "MASTER_ADDR", addr.host);
    setEnv(r, "MASTER_PORT", std::to_string(addr.port));
    setEnv(r, "WORLD_SIZE", world);
    setEnv(r, "RANK", rank);
    setEnv(r, "LOCAL_RANK", "0");  // one process per replica; its GPUs are renumbered from 0
    setEnv(r, "PET_NNODES", world);
    setEnv(r, "PET_NODE_RANK", rank);
    setEnv(r, "PET_NPROC_PER_NODE", "1");
    setEnv(r, "PET_MASTER_ADDR", addr.host);
    setEnv(r, "PET_MASTER_PORT", std::to_string(addr.port));
    setEnv(r, "PYTHONUNBUFFERED", "1");  // so logs and metrics arrive as they are printed
    if (!spec.elastic_env.empty()) {
      // Elastic (torchrun's dynamic rendezvous): ranks come from the
      // rendezvous at the master's address, not from a fixed node rank.
      std::erase_if(r.env, [](const auto& kv) { return kv.first == "PET_NODE_RANK"; });
      for (const auto& [k, v] : spec.elastic_env) setEnv(r, k, v);
      setEnv(r, "PET_RDZV_ENDPOINT", fmt::format("{}:{}", addr.host, addr.port));
      if (!spec.elastic_env.count("PET_RDZV_ID")) setEnv(r, "PET_RDZV_ID", job.uid);
    }
  }
}

void wireMpi(const spec::TrainJobSpec& spec, backend::PlacedJob& job, const std::vector<backend::Endpoint>& eps,
             const WireOptions& opts) {
  // Workers on the same host share one line; Open MPI counts its slots once.
  std::vector<std::pair<std::string, int>> hosts;
  for (size_t i = 0; i < job.replicas.size(); ++i) {
    if (job.replicas[i].role != "worker") continue;
    const std::string& h = eps.at(i).host;
    auto it = std::find_if(hosts.begin(), hosts.end(), [&](const auto& p) { return p.first == h; });
    if (it == hosts.end()) hosts.emplace_back(h, spec.slots_per_worker);
    else it->second += spec.slots_per_worker;
  }
  std::string hostfile;
  for (const auto& [h, slots] : hosts) hostfile += fmt::format("{} slots={}\n", h, slots);
  job.files.push_back({"hostfile", hostfile});
  for (auto& r : job.replicas) {
    if (r.role != "launcher") continue;
    setEnv(r, "OMPI_MCA_orte_default_hostfile", "$(TRAINYARD_CONFIG_DIR)/hostfile");
    setEnv(r, "OMPI_MCA_orte_keep_fqdn_hostnames", "true");
    setEnv(r, "OMPI_MCA_orte_set_default_slots", std::to_string(spec.slots_per_worker));
    if (opts.as_root) {
      setEnv(r, "OMPI_ALLOW_RUN_AS_ROOT", "1");
      setEnv(r, "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
  }
}

}  // namespace

std::string tfConfig(const backend::PlacedJob& job, const std::vector<backend::Endpoint>& eps, size_t replica) {
  nlohmann::json cluster = nlohmann::json::object();
  for (size_t i = 0; i < job.replicas.size(); ++i) {
    const auto& r = job.replicas[i];
    if (r.role == "evaluator") continue;
    cluster[r.role].push_back(fmt::format("{}:{}", eps.at(i).host, eps.at(i).port));
  }
  const auto& me = job.replicas.at(replica);
  nlohmann::json config{{"cluster", cluster},
                        {"task", {{"type", me.role}, {"index", me.index}}},
                        {"environment", "cloud"}};
  return config.dump();
}

void wire(const spec::TrainJobSpec& spec, backend::PlacedJob& job, const std::vector<backend::Endpoint>& endpoints,
          const WireOptions& opts) {
  if (spec.framework == "pytorch") wirePyTorch(spec, job, endpoints);
  if (spec.framework == "tensorflow")
    for (size_t i = 0; i < job.replicas.size(); ++i) setEnv(job.replicas[i], "TF_CONFIG", tfConfig(job, endpoints, i));
  if (spec.framework == "mpi") wireMpi(spec, job, endpoints, opts);
}

}  // namespace trainyard::dist
