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
    auto config = o.kubeconfig.empty() ? trainyard::k8s::loadKubeConfig("", o.context)
                                       : trainyard::k8s::loadKubeConfig(o.kubeconfig, o.context);
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
  std::string path() const { return fmt::format("/apis/trainyard.dev/v1/namespaces/{}/trainjobs", ns_); }

  void loop() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      lk.unlock();
      try {
        pass();
      } catch (const std::exception&) {
        // The API server away for a moment: the next pass tries again.
      }
      lk.lock();
      cv_.wait_for(lk, std::chrono::seconds(1), [&] { return stopping_; });
    }
  }

  void pass() {
    auto r = api_->request("GET", path());
    serving_ = r.status == 200;
    if (!serving_) return;  // the CRD is not installed (404): nothing to serve
    json list = json::parse(r.body);
    std::set<std::string> present;
    for (const auto& item : list["items"]) {
      std::string name = item["metadata"]["name"];
      present.insert(name);
      json status = item.value("status", json::object());
      auto state = hooks_.state(name);
      if (!state && status.value("phase", "") != "Invalid") {
        // New: submitted as the Trainyard spec it is (a TrainJob resource
        // is one), marked as coming from the resource.
        json spec = {{"apiVersion", "trainyard.dev/v1"},
                     {"kind", "TrainJob"},
                     {"metadata", {{"name", name}, {"labels", {{kFromResource, "true"}}}}},
                     {"spec", item.value("spec", json::object())}};
        std::string why = hooks_.submit(name, spec.dump(2));
        if (!why.empty()) writeStatus(name, status, {"Invalid", "Invalid", why, 0});
        continue;
      }
      if (state) writeStatus(name, status, *state);
      submitted_.insert(name);
    }
    // Resources deleted: their jobs are cancelled.
    for (auto it = submitted_.begin(); it != submitted_.end();) {
      if (present.count(*it)) {
        ++it;
        continue;
      }
      if (auto s = hooks_.state(*it); s && s->phase != "Succeeded" && s->phase != "Failed") hooks_.cancel(*it);
      it = submitted_.erase(it);
    }
  }

  void writeStatus(const std::string& name, const json& current, const JobState& s) {
    if (current.value("phase", "") == s.phase && current.value("message", "") == s.message &&
        current.value("restarts", -1) == s.restarts)
      return;  // unchanged: no write
    json status = {{"phase", s.phase}, {"reason", s.reason}, {"message", s.message}, {"restarts", s.restarts}};
    api_->request("PATCH", path() + "/" + name + "/status", json{{"status", status}}.dump(), "application/merge-patch+json");
  }

  OperatorHooks hooks_;
  std::string ns_;
  std::unique_ptr<ApiClient> api_;
  std::atomic<bool> serving_{false};
  std::set<std::string> submitted_;  // resources seen with a job (this process)
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
