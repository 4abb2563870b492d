// The Kubernetes REST client (k8s/api_client.h) against a real control
// plane (the ctest fixture "k8s": etcd + kube-apiserver v1.28.7 with RBAC
// and token auth), and its kubeconfig reader on files written here.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "k8s/api_client.h"
#include "k8s/kubeconfig.h"
#include "k8s/nodes.h"

using namespace trainyard;
using namespace trainyard::k8s;
using json = nlohmann::json;

namespace {

std::string tempFile(const std::string& text) {
  static int n = 0;
  auto p = std::filesystem::temp_directory_path() / ("ty-kubeconfig-" + std::to_string(getpid()) + "-" + std::to_string(n++));
  std::ofstream(p) << text;
  return p.string();
}

// The fixture's cluster directory, or "" with the reason it is absent.
std::string clusterDir(std::string& why) {
  const char* d = std::getenv("TRAINYARD_TEST_K8S_DIR");
  if (!d) {
    why = "TRAINYARD_TEST_K8S_DIR not set: run through ctest (fixture k8s)";
    return "";
  }
  if (std::ifstream skipped(std::string(d) + "/skipped"); skipped) {
    std::getline(skipped, why);
    return "";
  }
  return std::string(d) + "/cluster";
}

class RealCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dir = clusterDir(why);
    if (dir.empty()) GTEST_SKIP() << "SKIPPED, no Kubernetes: " << why;
    admin = std::make_unique<ApiClient>(loadKubeConfig(dir + "/kubeconfig"));
  }
  std::string dir;
  std::unique_ptr<ApiClient> admin;
};

}  // namespace

TEST(KubeConfig, ContextClusterUserAndTheirFields) {
  std::string token_file = tempFile("file-token\n");
  std::string path = tempFile(R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: "LS0tLS1CRUdJTg=="}
- name: c2
  cluster: {server: "https://k8s.example:443/prefix", insecure-skip-tls-verify: true}
users:
- name: u1
  user: {token: abc}
- name: u2
  user: {tokenFile: )" + token_file + R"(}
contexts:
- name: dev
  context: {cluster: c1, user: u1, namespace: team-a}
- name: prod
  context: {cluster: c2, user: u2}
)");
  auto dev = loadKubeConfig(path);
  EXPECT_EQ(dev.server, "https://127.0.0.1:6443");
  EXPECT_EQ(dev.ca_pem, "-----BEGIN");
  EXPECT_FALSE(dev.insecure);
  EXPECT_EQ(dev.token, "abc");
  EXPECT_EQ(dev.ns, "team-a");
  auto prod = loadKubeConfig(path, "prod");
  EXPECT_TRUE(prod.insecure);
  EXPECT_EQ(prod.token, "file-token");
  EXPECT_EQ(prod.ns, "default");
}

TEST(KubeConfig, BadFilesNameTheFileAndTheField) {
  auto fails = [](const std::string& text, const std::string& context, const std::string& expected) {
    std::string path = tempFile(text);
    try {
      loadKubeConfig(path, context);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const std::runtime_error& e) {
      std::string what = e.what();
      EXPECT_EQ(what.rfind(path, 0), 0u) << what;
      EXPECT_NE(what.find(expected), std::string::npos) << what;
    }
  };
  fails("clusters: [\n", "", ":2:1");  // YAML error with its line
  fails("clusters: []\ncontexts: []\n", "", "current-context: not set");
  fails("current-context: x\ncontexts: []\n", "", "contexts: no entry named \"x\"");
  fails("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: ftp://x}}]\n", "",
        "clusters.c.cluster.server: expected an https:// URL");
  fails("current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "
        "https://x}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n",
        "", "exec and auth-provider plugins are not supported");
  fails("current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: https://x, "
        "certificate-authority-data: \"@@@\"}}]\n",
        "", "certificate-authority-data: not base64");
}

TEST_F(RealCluster, ListsCreatesPatchesAppliesAndDeletes) {
  auto nss = admin->get("/api/v1/namespaces");
  bool has_default = false;
  for (const auto& ns : nss["items"]) has_default |= ns["metadata"]["name"] == "default";
  EXPECT_TRUE(has_default);

  const std::string coll = "/api/v1/namespaces/default/configmaps";
  admin->remove(coll + "/ty-client-test");
  auto made = admin->create(coll, {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
                                   {"metadata", {{"name", "ty-client-test"}}}, {"data", {{"a", "1"}}}});
  EXPECT_EQ(made["data"]["a"], "1");
  try {
    admin->create(coll, {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "ty-client-test"}}}});
    ADD_FAILURE() << "created twice";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 409);
    EXPECT_EQ(e.reason, "AlreadyExists");
  }
  auto patched = admin->mergePatch(coll + "/ty-client-test", {{"data", {{"b", "2"}}}});
  EXPECT_EQ(patched["data"]["a"], "1");
  EXPECT_EQ(patched["data"]["b"], "2");
  auto applied = admin->apply(coll + "/ty-client-test",
                              {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "ty-client-test"}}},
                               {"data", {{"c", "3"}}}},
                              "trainyard-test");
  EXPECT_EQ(applied["data"]["c"], "3");
  bool managed = false;
  for (const auto& f : applied["metadata"]["managedFields"]) managed |= f["manager"] == "trainyard-test";
  EXPECT_TRUE(managed);
  EXPECT_TRUE(admin->remove(coll + "/ty-client-test"));
  EXPECT_FALSE(admin->remove(coll + "/ty-client-test"));  // already gone: not an error
  try {
    admin->get(coll + "/ty-client-test");
    ADD_FAILURE() << "still there";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 404);
    EXPECT_EQ(e.reason, "NotFound");
  }
}

// A watch from a list's resourceVersion sees every change after it, in
// order, even those made before the watch call began.
TEST_F(RealCluster, WatchesFromAResourceVersion) {
  const std::string coll = "/api/v1/namespaces/default/configmaps";
  admin->remove(coll + "/ty-watched");
  std::string rv = admin->get(coll)["metadata"]["resourceVersion"];
  admin->create(coll, {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "ty-watched"}}}});
  admin->mergePatch(coll + "/ty-watched", {{"data", {{"x", "1"}}}});
  admin->remove(coll + "/ty-watched");
  std::vector<std::string> seen;
  std::string last = admin->watch(coll, rv, [&](const std::string& type, const json& obj) {
    if (type == "BOOKMARK" || obj["metadata"]["name"] != "ty-watched") return true;
    seen.push_back(type);
    return type != "DELETED";
  }, 30);
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));
  EXPECT_NE(last, rv);
}

TEST_F(RealCluster, RbacRefusalsAreForbidden) {
  ApiClient alice(loadKubeConfig(dir + "/alice.kubeconfig"));
  try {
    alice.get("/api/v1/namespaces/default/pods");
    ADD_FAILURE() << "alice listed pods without a Role";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 403);
    EXPECT_EQ(e.reason, "Forbidden");
  }
}

TEST_F(RealCluster, AnUnreachableServerIsAnErrorNotAHang) {
  KubeConfig c = loadKubeConfig(dir + "/kubeconfig");
  c.server = "https://127.0.0.1:1";  // nothing listens there
  ApiClient nobody(c);
  try {
    nobody.get("/api/v1/namespaces");
    ADD_FAILURE() << "reached port 1";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 0);
    EXPECT_NE(std::string(e.what()).find("cannot reach the Kubernetes API"), std::string::npos) << e.what();
  }
}

TEST(Nodes, AllocatableLabelsAndWhetherPodsMayGoThere) {
  json node = json::parse(R"({
    "metadata": {"name": "gpu-1", "labels": {"zone": "a", "kubernetes.io/hostname": "gpu-1"}},
    "spec": {},
    "status": {"allocatable": {"cpu": "7500m", "memory": "30Gi", "nvidia.com/gpu": "4", "pods": "110"},
               "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]}})");
  auto n = nodeFromObject(node);
  EXPECT_EQ(n.name, "gpu-1");
  EXPECT_EQ(n.allocatable.cpu_millis, 7500);
  EXPECT_EQ(n.allocatable.memory_bytes, 30LL << 30);
  EXPECT_EQ(n.allocatable.gpu, 4);
  EXPECT_EQ(n.gpu_ids.size(), 4u);
  EXPECT_EQ(n.labels["zone"], "a");
  EXPECT_TRUE(n.schedulable);
  auto notReady = node;
  notReady["status"]["conditions"][1]["status"] = "Unknown";
  EXPECT_FALSE(nodeFromObject(notReady).schedulable);
  auto cordoned = node;
  cordoned["spec"]["unschedulable"] = true;
  EXPECT_FALSE(nodeFromObject(cordoned).schedulable);
  auto tainted = node;
  tainted["spec"]["taints"] = json::parse(R"([{"key": "k", "effect": "NoSchedule"}])");
  EXPECT_FALSE(nodeFromObject(tainted).schedulable);
  auto garbage = node;
  garbage["status"]["allocatable"]["memory"] = "lots";
  std::string why;
  EXPECT_FALSE(nodeFromObject(garbage, &why).schedulable);
  EXPECT_EQ(why, "status.allocatable.memory: not a quantity");
}

// What the kubelet stand-in will do for its nodes: register a Node, report
// its capacity and Ready through the status subresource; read back as the
// scheduler's node.
TEST_F(RealCluster, ARegisteredNodeReadsBackAsASchedulerNode) {
  admin->remove("/api/v1/nodes/ty-node-1");
  admin->create("/api/v1/nodes", {{"apiVersion", "v1"}, {"kind", "Node"},
                                  {"metadata", {{"name", "ty-node-1"}, {"labels", {{"pool", "train"}}}}}});
  json status = {{"status",
                  {{"capacity", {{"cpu", "4"}, {"memory", "16Gi"}, {"pods", "110"}}},
                   {"allocatable", {{"cpu", "3500m"}, {"memory", "15Gi"}, {"pods", "110"}}},
                   {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"},
                                                {"message", "stand-in"}}})}}}};
  auto patched = admin->mergePatch("/api/v1/nodes/ty-node-1/status", status);
  // A new node carries the node.kubernetes.io/not-ready:NoSchedule taint
  // until the node lifecycle controller sees it Ready and lifts it: watch
  // for that, as Trainyard's binder will.
  sched::Node seen = nodeFromObject(patched);
  if (!seen.schedulable)
    admin->watch("/api/v1/nodes?fieldSelector=metadata.name%3Dty-node-1",
                 patched["metadata"]["resourceVersion"].get<std::string>(), [&](const std::string& type, const json& obj) {
                   if (type == "BOOKMARK") return true;
                   seen = nodeFromObject(obj);
                   return !seen.schedulable;
                 }, 60);
  EXPECT_EQ(seen.allocatable.cpu_millis, 3500);
  EXPECT_EQ(seen.allocatable.memory_bytes, 15LL << 30);
  EXPECT_EQ(seen.labels["pool"], "train");
  EXPECT_TRUE(seen.schedulable);
  EXPECT_TRUE(admin->remove("/api/v1/nodes/ty-node-1"));
}
