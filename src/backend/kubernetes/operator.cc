#include "backend/kubernetes/operator.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/kubernetes/tenancy.h"
#include "k8s/api_client.h"

namespace trainyard::backend {
namespace {
using json = nlohmann::json;
using trainyard::k8s::ApiClient;
using trainyard::k8s::ApiError;

// Jobs this operator submitted carry this label in their spec, so a job
// submitted otherwise is never cancelled for lack of a resource.
constexpr const char* kFromResource = "trainyard.dev/from-resource";
constexpr const char* kFinalizer = "trainyard.dev/cancel";

bool hasFinalizer(const json& meta) {
  if (!meta.contains("finalizers") || !meta["finalizers"].is_array()) return false;
  for (const auto& f : meta["finalizers"])
    if (f == kFinalizer) return true;
  return false;
}

class KubernetesOperator final : public Operator {
 public:
  KubernetesOperator(const KubernetesOptions& o, OperatorHooks hooks) : hooks_(std::move(hooks)) {
    auto config = trainyard::k8s::resolveKubeConfig(o.kubeconfig, o.context);
    ns_ = o.ns.empty() ? config.ns : o.ns;
    for (const auto& n : o.watch_namespaces) {
      if (n == "*") all_namespaces_ = true;
      else namespaces_.push_back(n);
    }
    if (namespaces_.empty()) namespaces_.push_back(ns_);
    api_ = std::make_unique<ApiClient>(config);
    thread_ = std::thread([this] { loop(); });
  }
  ~KubernetesOperator() override {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool serving() const override { return serving_; }

 private:
  // The resources served: Trainyard's own, and (when deploy/kubeflow-compat
  // is installed) Kubeflow's and Katib's, whose YAML the spec parser reads
  // as it is. `category` is what the server makes of them.
  struct Kind {
    const char* api_version;
    const char* kind;
    const char* plural;
    const char* category;  // TrainJob, Experiment or Queue (cluster-scoped)
    bool cluster_scoped() const { return std::string_view(category) == "Queue"; }
  };
  static constexpr Kind kKinds[] = {
      {"trainyard.dev/v1", "TrainJob", "trainjobs", "TrainJob"},
      {"trainyard.dev/v1", "Experiment", "experiments", "Experiment"},
      {"kubeflow.org/v1", "PyTorchJob", "pytorchjobs", "TrainJob"},
      {"kubeflow.org/v1", "TFJob", "tfjobs", "TrainJob"},
      {"kubeflow.org/v1", "MPIJob", "mpijobs", "TrainJob"},
      {"kubeflow.org/v1beta1", "Experiment", "experiments", "Experiment"},
      {"trainyard.dev/v1", "Queue", "queues", "Queue"},
  };

  // Where a kind's resources are listed: each served namespace, or the
  // whole cluster.
  std::vector<std::string> listPaths(const Kind& k) const {
    if (all_namespaces_ || k.cluster_scoped()) return {fmt::format("/apis/{}/{}", k.api_version, k.plural)};
    std::vector<std::string> out;
    for (const auto& ns : namespaces_) out.push_back(fmt::format("/apis/{}/namespaces/{}/{}", k.api_version, ns, k.plural));
    return out;
  }
  static std::string itemPath(const Kind& k, const std::string& ns, const std::string& name) {
    if (k.cluster_scoped()) return fmt::format("/apis/{}/{}/{}", k.api_version, k.plural, name);
    return fmt::format("/apis/{}/namespaces/{}/{}/{}", k.api_version, ns, k.plural, name);
  }

  void loop() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      lk.unlock();
      bool any = false;
      ns_labels_.clear();  // re-read once a pass: a namespace's queue may change
      for (const auto& k : kKinds) {
        try {
          any |= pass(k);
        } catch (const std::exception&) {
          // The API server away for a moment: the next pass tries again.
        }
      }
      serving_ = any;
      lk.lock();
      cv_.wait_for(lk, std::chrono::seconds(1), [&] { return stopping_; });
    }
  }

  const std::map<std::string, std::string>& namespaceLabels(const std::string& ns) {
    auto it = ns_labels_.find(ns);
    if (it != ns_labels_.end()) return it->second;
    std::map<std::string, std::string> labels;
    auto r = api_->request("GET", "/api/v1/namespaces/" + ns);
    if (r.status == 200) {
      json n = json::parse(r.body, nullptr, false);
      if (n.is_object() && n["metadata"].contains("labels") && n["metadata"]["labels"].is_object())
        for (const auto& [key, v] : n["metadata"]["labels"].items())
          if (v.is_string()) labels[key] = v.get<std::string>();
    }
    return ns_labels_[ns] = std::move(labels);
  }

  // One kind's resources against what the server has; false when its CRD is not installed.
  bool pass(const Kind& k) {
    std::vector<json> items;
    for (const auto& p : listPaths(k)) {
      auto r = api_->request("GET", p);
      if (r.status != 200) return false;  // the CRD is not installed (404): nothing to serve
      json list = json::parse(r.body);
      for (auto& item : list["items"]) items.push_back(std::move(item));
    }
    std::set<std::string> present;
    auto& submitted = submitted_[std::string(k.api_version) + "/" + k.kind];
    if (k.cluster_scoped()) {
      for (const auto& item : items) reconcileQueue(k, item);
      return true;
    }
    for (const auto& item : items) {
      const json& meta = item["metadata"];
      std::string ns = meta.value("namespace", ns_), name = meta.value("name", "");
      present.insert(ns + "/" + name);
      json current = item.value("status", json::object());
      auto tenant = k8s::tenantOf(ns, name, ns_, namespaceLabels(ns));
      ServedResource res{k.category, k.api_version, k.kind, ns, name, tenant.job_name, tenant.user, tenant.queue};
      bool finalized = hasFinalizer(meta);
      if (meta.contains("deletionTimestamp")) {
        // Deleted: its job is stopped first, then the resource may go.
        if (finalized && (tenant.job_name.empty() || hooks_.cancel(res))) setFinalizer(k, item, false);
        submitted.erase(ns + "/" + name);
        continue;
      }
      if (!tenant.error.empty()) {
        writeStatus(k, ns, name, current, {{"phase", "Invalid"}, {"reason", "Invalid"}, {"message", tenant.error}});
        continue;
      }
      auto now = hooks_.status(res);
      if (!now && current.value("phase", "") != "Invalid") {
        // The finalizer first: once the job runs, a deletion must find it.
        if (!finalized && !setFinalizer(k, item, true)) continue;
        // New: submitted as the Trainyard spec it is (the resource is one).
        json labels = {{kFromResource, "true"}, {kFromNamespaceLabel, ns}};
        // Its owner: objects made for it in its own namespace are
        // garbage-collected with it (the finalizer covers the others).
        std::string version = k.api_version, group = "core";
        if (auto slash = version.find('/'); slash != std::string::npos)
          group = version.substr(0, slash), version = version.substr(slash + 1);
        labels[kOwnerKindLabel] = fmt::format("{}.{}.{}", k.kind, version, group);
        labels[kOwnerNamespaceLabel] = ns;
        labels[kOwnerNameLabel] = name;
        labels[kOwnerUidLabel] = meta.value("uid", "");
        json spec = {{"apiVersion", k.api_version},
                     {"kind", k.kind},
                     {"metadata", {{"name", tenant.job_name}, {"labels", labels}}},
                     {"spec", item.value("spec", json::object())}};
        std::string why = hooks_.submit(res, spec.dump(2));
        if (!why.empty()) writeStatus(k, ns, name, current, {{"phase", "Invalid"}, {"reason", "Invalid"}, {"message", why}});
        else submitted[ns + "/" + name] = res;
        continue;
      }
      if (now) writeStatus(k, ns, name, current, json::parse(*now));
      submitted[ns + "/" + name] = res;
    }
    // Resources gone without their finalizer (removed by hand, or deleted
    // before it was set): what they started is cancelled all the same.
    for (auto it = submitted.begin(); it != submitted.end();) {
      if (present.count(it->first)) {
        ++it;
        continue;
      }
      hooks_.cancel(it->second);
      it = submitted.erase(it);
    }
    return true;
  }

  // A Queue resource is applied to the server's queues whenever its spec
  // changed (metadata.generation against status.observedGeneration), and
  // removed from them when it is deleted (the finalizer again).
  void reconcileQueue(const Kind& k, const json& item) {
    const json& meta = item["metadata"];
    std::string name = meta.value("name", "");
    ServedResource res{k.category, k.api_version, k.kind, "", name, name, "", ""};
    bool finalized = hasFinalizer(meta);
    if (meta.contains("deletionTimestamp")) {
      if (finalized && hooks_.cancel(res)) setFinalizer(k, item, false);
      return;
    }
    json current = item.value("status", json::object());
    int64_t generation = meta.value("generation", int64_t{0});
    if (current.value("observedGeneration", int64_t{-1}) == generation) return;
    if (!finalized && !setFinalizer(k, item, true)) return;
    json spec = {{"apiVersion", k.api_version}, {"kind", k.kind}, {"metadata", {{"name", name}}},
                 {"spec", item.value("spec", json::object())}};
    std::string why = hooks_.submit(res, spec.dump(2));
    writeStatus(k, "", name, current,
                {{"phase", why.empty() ? "Active" : "Invalid"}, {"message", why}, {"observedGeneration", generation}});
  }

  // Adds or removes this operator's finalizer; false when the resource
  // changed meanwhile (the next pass sees the new version).
  bool setFinalizer(const Kind& k, const json& item, bool add) {
    const json& meta = item["metadata"];
    json finalizers = json::array();
    if (meta.contains("finalizers") && meta["finalizers"].is_array())
      for (const auto& f : meta["finalizers"])
        if (f != kFinalizer) finalizers.push_back(f);
    if (add) finalizers.push_back(kFinalizer);
    // The resourceVersion makes the merge patch conditional: another
    // controller's finalizer added meanwhile is not dropped.
    json patch = {{"metadata", {{"finalizers", finalizers}, {"resourceVersion", meta.value("resourceVersion", "")}}}};
    auto r = api_->request("PATCH", itemPath(k, meta.value("namespace", ns_), meta.value("name", "")), patch.dump(),
                           "application/merge-patch+json");
    return r.status == 200;
  }

  void writeStatus(const Kind& k, const std::string& ns, const std::string& name, const json& current,
                   const json& status) {
    bool same = true;
    for (const auto& [key, v] : status.items()) same = same && current.contains(key) && current[key] == v;
    if (same) return;  // unchanged: no write
    api_->request("PATCH", itemPath(k, ns, name) + "/status", json{{"status", status}}.dump(),
                  "application/merge-patch+json");
  }

  OperatorHooks hooks_;
  std::string ns_;
  std::unique_ptr<ApiClient> api_;
  std::atomic<bool> serving_{false};
  bool all_namespaces_ = false;
  std::vector<std::string> namespaces_;
  std::map<std::string, std::map<std::string, std::string>> ns_labels_;  // this pass's
  // Per kind, by "ns/name": resources seen started (this process).
  std::map<std::string, std::map<std::string, ServedResource>> submitted_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace
}  // namespace trainyard::backend

extern "C" __attribute__((visibility("default"))) trainyard::backend::Operator* trainyard_kubernetes_operator(
    const trainyard::backend::KubernetesOptions* opts, trainyard::backend::OperatorHooks* hooks) {
  return new trainyard::backend::KubernetesOperator(*opts, std::move(*hooks));
}
