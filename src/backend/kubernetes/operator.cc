#include "backend/kubernetes/operator.h"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "k8s/api_client.h"

namespace trainyard::backend {
namespace {
using json = nlohmann::json;
using trainyard::k8s::ApiClient;
using trainyard::k8s::ApiError;

// Jobs this operator submitted carry this label in their spec, so a job
// submitted otherwise is never cancelled for lack of a resource.
constexpr const char* kFromResource = "trainyard.dev/from-resource";

class KubernetesOperator final : public Operator {
 public:
  KubernetesOperator(const KubernetesOptions& o, OperatorHooks hooks) : hooks_(std::move(hooks)) {
    auto config = trainyard::k8s::resolveKubeConfig(o.kubeconfig, o.context);
    ns_ = o.ns.empty() ? config.ns : o.ns;
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
    const char* category;  // TrainJob or Experiment
  };
  static constexpr Kind kKinds[] = {
      {"trainyard.dev/v1", "TrainJob", "trainjobs", "TrainJob"},
      {"trainyard.dev/v1", "Experiment", "experiments", "Experiment"},
      {"kubeflow.org/v1", "PyTorchJob", "pytorchjobs", "TrainJob"},
      {"kubeflow.org/v1", "TFJob", "tfjobs", "TrainJob"},
      {"kubeflow.org/v1", "MPIJob", "mpijobs", "TrainJob"},
      {"kubeflow.org/v1beta1", "Experiment", "experiments", "Experiment"},
  };

  std::string path(const Kind& k) const { return fmt::format("/apis/{}/namespaces/{}/{}", k.api_version, ns_, k.plural); }

  void loop() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      lk.unlock();
      bool any = false;
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

  // One kind's resources against what the server has; false when its CRD is not installed.
  bool pass(const Kind& k) {
    auto r = api_->request("GET", path(k));
    if (r.status != 200) return false;  // the CRD is not installed (404): nothing to serve
    json list = json::parse(r.body);
    std::set<std::string> present;
    auto& submitted = submitted_[std::string(k.api_version) + "/" + k.kind];
    for (const auto& item : list["items"]) {
      std::string name = item["metadata"]["name"];
      present.insert(name);
      json current = item.value("status", json::object());
      auto now = hooks_.status(k.category, name);
      if (!now && current.value("phase", "") != "Invalid") {
        // New: submitted as the Trainyard spec it is (the resource is one).
        json spec = {{"apiVersion", k.api_version},
                     {"kind", k.kind},
                     {"metadata", {{"name", name}, {"labels", {{kFromResource, "true"}}}}},
                     {"spec", item.value("spec", json::object())}};
        std::string why = hooks_.submit(k.category, name, spec.dump(2));
        if (!why.empty()) writeStatus(k, name, current, {{"phase", "Invalid"}, {"reason", "Invalid"}, {"message", why}});
        continue;
      }
      if (now) writeStatus(k, name, current, json::parse(*now));
      submitted.insert(name);
    }
    // Resources deleted: what they started is cancelled.
    for (auto it = submitted.begin(); it != submitted.end();) {
      if (present.count(*it)) {
        ++it;
        continue;
      }
      hooks_.cancel(k.category, *it);
      it = submitted.erase(it);
    }
    return true;
  }

  void writeStatus(const Kind& k, const std::string& name, const json& current, const json& status) {
    bool same = true;
    for (const auto& [key, v] : status.items()) same = same && current.contains(key) && current[key] == v;
    if (same) return;  // unchanged: no write
    api_->request("PATCH", path(k) + "/" + name + "/status", json{{"status", status}}.dump(), "application/merge-patch+json");
  }

  OperatorHooks hooks_;
  std::string ns_;
  std::unique_ptr<ApiClient> api_;
  std::atomic<bool> serving_{false};
  std::map<std::string, std::set<std::string>> submitted_;  // per kind, resources seen started (this process)
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
