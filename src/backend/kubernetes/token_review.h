// `trainyard server --auth kubernetes`: one identity for kubectl, the CLI
// and the dashboard. A bearer token is checked by the cluster (TokenReview);
// its user may use the server when the cluster lets them create TrainJobs in
// the served namespace, and is an administrator when it lets them do
// everything (SubjectAccessReview, as the API server itself asks).
#pragma once
#include <functional>
#include <optional>
#include <string>

#include "backend/kubernetes/options.h"

namespace trainyard::backend {

struct ReviewedUser {
  std::string name;
  bool admin = false;
};
// nullopt: unknown token, or a user without the right. Loads the plugin.
using TokenReviewer = std::function<std::optional<ReviewedUser>(const std::string& token)>;
TokenReviewer kubernetesTokenReviewer(const KubernetesOptions& opts);

}  // namespace trainyard::backend
