// Gang binding on a real Kubernetes control plane: Trainyard's scheduler
// placing whole gangs and binding their pods (pods/binding) against
// kube-scheduler binding the same pods one by one, in the same run on the
// same control plane. Starts its own control plane (etcd, kube-apiserver,
// kube-scheduler, kube-controller-manager v1.28.7 from the scripts in
// TRAINYARD_TEST_K8S, default ../shared/k8s) and registers 50 Node objects
// (nothing runs the pods: binding is what is measured).
//
//   build/bin/k8s_binding [--jobs 100] [--replicas 4] [--nodes 50]
//
// Prints key=value lines: pods bound per second and p50/p99 time to a fully
// bound gang for each, their ratio, and this process's CPU time per 1,000
// pod events read from a watch (the controller's cost of observing).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "k8s/api_client.h"
#include "k8s/kubeconfig.h"
#include "k8s/nodes.h"
#include "sched/scheduler.h"

using namespace trainyard;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double cpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

json podFor(const std::string& name, const std::string& job, const std::string& scheduler) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"bench-job", job}}}}},
          {"spec",
           {{"schedulerName", scheduler},
            {"containers", json::array({{{"name", "main"}, {"image", "debian:12"}, {"command", {"/bin/true"}},
                                         {"resources", {{"requests", {{"cpu", "1"}, {"memory", "1Gi"}}}}}}})}}}};
}

struct Result {
  double seconds = 0;
  std::vector<double> gang_bound;  // seconds from the start to each gang's last binding
};

// Every gang placed by Trainyard's scheduler (one admission cycle over all
// of them), then each pod created and bound, gang after gang.
Result trainyardBinder(k8s::ApiClient& api, const std::string& ns, int jobs, int replicas) {
  Result r;
  auto t0 = Clock::now();
  sched::Scheduler s;
  s.setNodes(k8s::nodesFromList(api.get("/api/v1/nodes")));
  for (int j = 0; j < jobs; ++j) {
    sched::Request q;
    q.job = fmt::format("ty-{}", j);
    q.seq = j;
    for (int i = 0; i < replicas; ++i) q.replicas.push_back({fmt::format("worker-{}", i), {1000, 1LL << 30, 0}});
    s.enqueue(q);
  }
  auto d = s.schedule(0);
  std::string pods = fmt::format("/api/v1/namespaces/{}/pods", ns);
  for (const auto& a : d.admitted) {
    for (const auto& p : a.placements) {
      std::string name = a.job + "-" + p.replica;
      api.create(pods, podFor(name, a.job, "trainyard"));
      api.create(pods + "/" + name + "/binding",
                 {{"apiVersion", "v1"}, {"kind", "Binding"}, {"metadata", {{"name", name}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", p.node}}}});
    }
    r.gang_bound.push_back(since(t0));
  }
  r.seconds = since(t0);
  if (static_cast<int>(d.admitted.size()) != jobs)
    std::fprintf(stderr, "k8s_binding: trainyard admitted %zu of %d gangs\n", d.admitted.size(), jobs);
  return r;
}

// The same pods for kube-scheduler: created, then watched until every one
// has a node. Also measures this process's CPU per watch event.
Result kubeScheduler(k8s::ApiClient& api, const std::string& ns, int jobs, int replicas, double& cpu_per_1000_events) {
  Result r;
  std::string pods = fmt::format("/api/v1/namespaces/{}/pods", ns);
  std::string rv = api.get(pods)["metadata"]["resourceVersion"];
  auto t0 = Clock::now();
  for (int j = 0; j < jobs; ++j)
    for (int i = 0; i < replicas; ++i) {
      std::string job = fmt::format("ks-{}", j);
      api.create(pods, podFor(fmt::format("{}-worker-{}", job, i), job, "default-scheduler"));
    }
  std::map<std::string, int> bound;  // job -> pods with a node
  std::set<std::string> seen;
  int64_t events = 0;
  double cpu0 = cpuSeconds();
  while (static_cast<int>(r.gang_bound.size()) < jobs && since(t0) < 300) {
    rv = api.watch(pods, rv, [&](const std::string& type, const json& obj) {
      if (type == "BOOKMARK") return true;
      ++events;
      std::string name = obj["metadata"]["name"];
      if (obj["spec"].value("nodeName", "").empty() || seen.count(name)) return true;
      seen.insert(name);
      std::string job = obj["metadata"]["labels"]["bench-job"];
      if (++bound[job] == replicas) r.gang_bound.push_back(since(t0));
      return static_cast<int>(r.gang_bound.size()) < jobs;
    }, 60);
  }
  r.seconds = since(t0);
  cpu_per_1000_events = events ? (cpuSeconds() - cpu0) / static_cast<double>(events) * 1000 : 0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 100, replicas = 4, nodes = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--jobs")) jobs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--replicas")) replicas = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--nodes")) nodes = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: k8s_binding [--jobs N] [--replicas N] [--nodes N]\n");
      return 2;
    }
  }
  const char* scripts = std::getenv("TRAINYARD_TEST_K8S");
  std::string k8s = scripts ? scripts : "../shared/k8s";
  if (!std::filesystem::exists(k8s + "/cluster-up.sh")) {
    std::fprintf(stderr, "k8s_binding: no %s/cluster-up.sh (set TRAINYARD_TEST_K8S to the Kubernetes test scripts)\n", k8s.c_str());
    return 2;
  }
  std::string dir = fmt::format("/tmp/trainyard-k8s-bench-{}", getpid());
  if (std::system(fmt::format("{}/cluster-up.sh {}/cluster > {}.log 2>&1", k8s, dir, dir).c_str()) != 0) {
    std::fprintf(stderr, "k8s_binding: the control plane did not start; see %s.log\n", dir.c_str());
    return 3;
  }
  int rc = 0;
  try {
    k8s::ApiClient api(k8s::loadKubeConfig(dir + "/cluster/kubeconfig"));
    // Nodes with room for both runs' pods (each run fills half).
    int64_t per_node = (static_cast<int64_t>(jobs) * replicas * 2 + nodes - 1) / nodes;
    for (int n = 0; n < nodes; ++n) {
      std::string name = fmt::format("bench-node-{}", n);
      api.create("/api/v1/nodes", {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}});
      json res = {{"cpu", std::to_string(per_node)}, {"memory", fmt::format("{}Gi", per_node)}, {"pods", "250"}};
      api.mergePatch("/api/v1/nodes/" + name + "/status",
                     {{"status", {{"capacity", res}, {"allocatable", res},
                                  {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}})}}}});
    }
    // Schedulable once the node lifecycle controller lifts their not-ready taints.
    auto ready = [&] {
      int n = 0;
      for (const auto& x : k8s::nodesFromList(api.get("/api/v1/nodes"))) n += x.schedulable;
      return n;
    };
    for (auto t0 = Clock::now(); ready() < nodes && since(t0) < 120;) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (const char* ns : {"bench-ty", "bench-ks"})
      api.create("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});

    Result ty = trainyardBinder(api, "bench-ty", jobs, replicas);
    double cpu_per_1000 = 0;
    Result ks = kubeScheduler(api, "bench-ks", jobs, replicas, cpu_per_1000);
    int pods = jobs * replicas;
    std::printf("jobs=%d\nreplicas=%d\nnodes=%d\n", jobs, replicas, nodes);
    std::printf("trainyard.pods_per_second=%.0f\n", pods / ty.seconds);
    std::printf("trainyard.gang_bound_p50_seconds=%.3f\n", percentile(ty.gang_bound, 0.5));
    std::printf("trainyard.gang_bound_p99_seconds=%.3f\n", percentile(ty.gang_bound, 0.99));
    std::printf("kube_scheduler.pods_per_second=%.0f\n", pods / ks.seconds);
    std::printf("kube_scheduler.gang_bound_p50_seconds=%.3f\n", percentile(ks.gang_bound, 0.5));
    std::printf("kube_scheduler.gang_bound_p99_seconds=%.3f\n", percentile(ks.gang_bound, 0.99));
    std::printf("kube_scheduler.gangs_bound=%zu\n", ks.gang_bound.size());
    std::printf("pods_per_second_ratio_trainyard_over_kube_scheduler=%.2f\n", ks.seconds / ty.seconds);
    std::printf("watch_cpu_ms_per_1000_pod_events=%.1f\n", cpu_per_1000 * 1000);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "k8s_binding: %s\n", e.what());
    rc = 3;
  }
  std::system(fmt::format("{}/cluster-down.sh {}/cluster > /dev/null 2>&1", k8s, dir).c_str());
  return rc;
}
