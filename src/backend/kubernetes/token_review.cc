#include "backend/kubernetes/token_review.h"

#include <memory>

#include <fmt/format.h>

#include "k8s/api_client.h"

namespace trainyard::backend {
namespace {
using json = nlohmann::json;

struct Reviewer {
  std::unique_ptr<trainyard::k8s::ApiClient> api;
  std::string ns;

  bool allowed(const json& user, json attributes) {
    json sar = {{"apiVersion", "authorization.k8s.io/v1"},
                {"kind", "SubjectAccessReview"},
                {"spec", {{"user", user.value("username", "")}, {"resourceAttributes", attributes}}}};
    if (user.contains("groups")) sar["spec"]["groups"] = user["groups"];
    if (user.contains("uid")) sar["spec"]["uid"] = user["uid"];
    auto r = api->create("/apis/authorization.k8s.io/v1/subjectaccessreviews", sar);
    return r.value("status", json::object()).value("allowed", false);
  }

  std::optional<ReviewedUser> review(const std::string& token) {
    try {
      auto tr = api->create("/apis/authentication.k8s.io/v1/tokenreviews",
                            {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", {{"token", token}}}});
      const json& st = tr.value("status", json::object());
      if (!st.value("authenticated", false)) return std::nullopt;
      const json& user = st.value("user", json::object());
      if (!allowed(user, {{"namespace", ns}, {"verb", "create"}, {"group", "trainyard.dev"}, {"resource", "trainjobs"}}))
        return std::nullopt;
      ReviewedUser u;
      u.name = user.value("username", "");
      u.admin = allowed(user, {{"verb", "*"}, {"group", "*"}, {"resource", "*"}});
      return u;
    } catch (const std::exception&) {
      return std::nullopt;  // the cluster unreachable: nobody is let in
    }
  }
};

}  // namespace
}  // namespace trainyard::backend

extern "C" __attribute__((visibility("default"))) trainyard::backend::TokenReviewer* trainyard_kubernetes_token_reviewer(
    const trainyard::backend::KubernetesOptions* o) {
  auto r = std::make_shared<trainyard::backend::Reviewer>();
  auto config = trainyard::k8s::resolveKubeConfig(o->kubeconfig, o->context);
  r->ns = o->ns.empty() ? config.ns : o->ns;
  r->api = std::make_unique<trainyard::k8s::ApiClient>(config);
  return new trainyard::backend::TokenReviewer([r](const std::string& token) { return r->review(token); });
}
