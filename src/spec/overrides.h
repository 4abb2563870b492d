// --set path=value overrides applied to a parsed YAML tree. Paths use dots and
// [index]: "spec.args[1]=0.01", "metadata.name=run2". The value is read as a
// YAML scalar or flow collection, so "--set spec.backoffLimit=3" is an int.
#pragma once
#include <string>

namespace YAML { class Node; }

namespace trainyard::spec {

struct Override {
  std::string path;   // "spec.args[1]"
  std::string value;  // "0.01"
};

// Throws std::invalid_argument with a message naming the override on a
// malformed argument or a path that cannot be applied.
Override parseOverride(const std::string& arg);
void applyOverride(YAML::Node& root, const Override& o);

}  // namespace trainyard::spec
