// Internal to tune/: the string settings of an algorithm or early stopper
// (as YAML and Katib give them), checked against the names it knows.
#pragma once
#include <initializer_list>
#include <map>
#include <string>

namespace trainyard::tune {

class Settings {
 public:
  // `context` prefixes every message ("algorithm tpe", "earlyStopping asha").
  // Throws std::invalid_argument for a setting not in `known`.
  Settings(std::string context, const std::map<std::string, std::string>& values,
           std::initializer_list<const char*> known);
  double number(const char* key, double def, double min) const;
  bool flag(const char* key, bool def) const;

 private:
  std::string context_;
  const std::map<std::string, std::string>& values_;
};

}  // namespace trainyard::tune
