#include "dist/wiring.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "util/env.h"

using namespace trainyard;

namespace {

backend::PlacedJob placed(const std::vector<std::pair<std::string, int>>& roles) {
  backend::PlacedJob job;
  for (const auto& [role, n] : roles)
    for (int i = 0; i < n; ++i) {
      backend::ReplicaLaunch r;
      r.role = role;
      r.index = i;
      r.name = role + "-" + std::to_string(i);
      job.replicas.push_back(r);
    }
  return job;
}

std::vector<backend::Endpoint> endpoints(size_t n, const std::string& host = "127.0.0.1") {
  std::vector<backend::Endpoint> v;
  for (size_t i = 0; i < n; ++i) v.push_back({host, 20000 + static_cast<int>(i)});
  return v;
}

std::map<std::string, std::string> envOf(const backend::ReplicaLaunch& r) {
  return {r.env.begin(), r.env.end()};
}

spec::TrainJobSpec specFor(const std::string& framework) {
  spec::TrainJobSpec s;
  s.framework = framework;
  return s;
}

}  // namespace

TEST(Wiring, PyTorchMasterIsRankZeroAndWorkersFollow) {
  auto job = placed({{"master", 1}, {"worker", 3}});
  dist::wire(specFor("pytorch"), job, endpoints(4));
  for (size_t i = 0; i < 4; ++i) {
    auto e = envOf(job.replicas[i]);
    EXPECT_EQ(e["MASTER_ADDR"], "127.0.0.1");
    EXPECT_EQ(e["MASTER_PORT"], "20000");
    EXPECT_EQ(e["WORLD_SIZE"], "4");
    EXPECT_EQ(e["RANK"], std::to_string(i));
    EXPECT_EQ(e["LOCAL_RANK"], "0");
    EXPECT_EQ(e["PET_NNODES"], "4");
    EXPECT_EQ(e["PET_NODE_RANK"], std::to_string(i));
    EXPECT_EQ(e["PET_NPROC_PER_NODE"], "1");
    EXPECT_EQ(e["PET_MASTER_ADDR"], "127.0.0.1");
    EXPECT_EQ(e["PET_MASTER_PORT"], "20000");
  }
}

TEST(Wiring, PyTorchWithoutMasterUsesWorkerZero) {
  auto job = placed({{"worker", 2}});
  auto eps = endpoints(2);
  eps[0].port = 31000;
  dist::wire(specFor("pytorch"), job, eps);
  EXPECT_EQ(envOf(job.replicas[0])["RANK"], "0");
  EXPECT_EQ(envOf(job.replicas[1])["RANK"], "1");
  EXPECT_EQ(envOf(job.replicas[1])["MASTER_PORT"], "31000");
}

TEST(Wiring, TfConfigNamesEveryPeerButTheEvaluator) {
  auto job = placed({{"chief", 1}, {"ps", 1}, {"worker", 2}, {"evaluator", 1}});
  dist::wire(specFor("tensorflow"), job, endpoints(5));
  auto worker1 = nlohmann::json::parse(envOf(job.replicas[3])["TF_CONFIG"]);
  EXPECT_EQ(worker1["task"], (nlohmann::json{{"type", "worker"}, {"index", 1}}));
  EXPECT_EQ(worker1["environment"], "cloud");
  EXPECT_EQ(worker1["cluster"]["chief"], (nlohmann::json{"127.0.0.1:20000"}));
  EXPECT_EQ(worker1["cluster"]["ps"], (nlohmann::json{"127.0.0.1:20001"}));
  EXPECT_EQ(worker1["cluster"]["worker"], (nlohmann::json{"127.0.0.1:20002", "127.0.0.1:20003"}));
  EXPECT_FALSE(worker1["cluster"].contains("evaluator"));
  auto eval = nlohmann::json::parse(envOf(job.replicas[4])["TF_CONFIG"]);
  EXPECT_EQ(eval["task"]["type"], "evaluator");
  EXPECT_EQ(eval["cluster"], worker1["cluster"]);
}

TEST(Wiring, MpiHostfileAndLauncherEnvironment) {
  auto job = placed({{"launcher", 1}, {"worker", 3}});
  auto s = specFor("mpi");
  s.slots_per_worker = 2;
  auto eps = endpoints(4);
  eps[3].host = "node-b";
  dist::wire(s, job, eps, {.as_root = true});
  ASSERT_EQ(job.files.size(), 1u);
  EXPECT_EQ(job.files[0].name, "hostfile");
  EXPECT_EQ(job.files[0].content, "127.0.0.1 slots=4\nnode-b slots=2\n");  // same host: one line, slots added
  auto e = envOf(job.replicas[0]);
  EXPECT_EQ(e["OMPI_MCA_orte_default_hostfile"], "$(TRAINYARD_CONFIG_DIR)/hostfile");
  EXPECT_EQ(e["OMPI_MCA_orte_keep_fqdn_hostnames"], "true");
  EXPECT_EQ(e["OMPI_MCA_orte_set_default_slots"], "2");
  EXPECT_EQ(e["OMPI_ALLOW_RUN_AS_ROOT"], "1");
  EXPECT_TRUE(envOf(job.replicas[1]).empty());  // workers are slots, not processes
}

// Where peers are known only on the node (Slurm), wiring carries
// $(TRAINYARD_PEER_HOST_<i>) references; bound there, every replica sees
// what early wiring would have given it.
TEST(Wiring, LateBoundWiringEqualsEarlyWiringOnceBound) {
  std::vector<std::string> hosts = {"10.0.0.5", "10.0.0.5", "10.0.0.7"};
  std::vector<std::pair<std::string, std::string>> node_env;
  for (size_t i = 0; i < hosts.size(); ++i) node_env.emplace_back(backend::latePeerHostVar(i), hosts[i]);
  for (std::string fw : {"pytorch", "tensorflow", "mpi"}) {
    auto roles = fw == "mpi" ? std::vector<std::pair<std::string, int>>{{"launcher", 1}, {"worker", 2}}
                             : std::vector<std::pair<std::string, int>>{{"worker", 3}};
    auto early = placed(roles), late = placed(roles);
    auto early_eps = endpoints(3), late_eps = endpoints(3);
    for (size_t i = 0; i < 3; ++i) early_eps[i].host = hosts[i], late_eps[i].host = backend::latePeerHost(i);
    dist::wire(specFor(fw), early, early_eps);
    dist::wire(specFor(fw), late, late_eps);
    for (size_t i = 0; i < 3; ++i) {
      auto e = envOf(early.replicas[i]);
      for (auto& [k, v] : late.replicas[i].env) EXPECT_EQ(util::expandVars(v, node_env), e[k]) << fw << " " << k;
    }
    ASSERT_EQ(late.files.size(), early.files.size());
    if (fw == "mpi") {
      // (Two workers on one node would be two lines until bound, where early
      // wiring writes one with their slots added.)
      EXPECT_EQ(util::expandVars(late.files[0].content, node_env), "10.0.0.5 slots=1\n10.0.0.7 slots=1\n");
      EXPECT_EQ(early.files[0].content, "10.0.0.5 slots=1\n10.0.0.7 slots=1\n");
    }
  }
}

TEST(Wiring, NoneFrameworkAddsNothing) {
  auto job = placed({{"worker", 1}});
  dist::wire(specFor("none"), job, endpoints(1));
  EXPECT_TRUE(job.replicas[0].env.empty());
}

TEST(ExpandVars, KubernetesSemantics) {
  std::vector<std::pair<std::string, std::string>> env{{"A", "1"}, {"DIR", "/x"}};
  EXPECT_EQ(util::expandVars("$(DIR)/hostfile", env), "/x/hostfile");
  EXPECT_EQ(util::expandVars("a$(A)b$(A)", env), "a1b1");
  EXPECT_EQ(util::expandVars("$(MISSING) stays", env), "$(MISSING) stays");
  EXPECT_EQ(util::expandVars("$$(A) is literal", env), "$(A) is literal");
  EXPECT_EQ(util::expandVars("cost: $5, $((1+2))", env), "cost: $5, $((1+2))");
  EXPECT_EQ(util::expandVars("trailing $", env), "trailing $");
}
