// Kubernetes-style $(VAR) references in env values and args.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace trainyard::util {

// Replaces $(NAME) with NAME's value from `env` (the last definition wins);
// unknown references stay as written and $$ stands for a literal $, as in
// Kubernetes.
std::string expandVars(const std::string& text, const std::vector<std::pair<std::string, std::string>>& env);

}  // namespace trainyard::util
