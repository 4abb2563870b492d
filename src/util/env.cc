#include "util/env.h"

namespace trainyard::util {

std::string expandVars(const std::string& text, const std::vector<std::pair<std::string, std::string>>& env) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out += text[i];
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t close = text[i + 1] == '(' ? text.find(')', i + 2) : std::string::npos;
    if (close == std::string::npos) {
      out += text[i];
      continue;
    }
    std::string name = text.substr(i + 2, close - i - 2);
    const std::string* value = nullptr;
    for (const auto& kv : env)
      if (kv.first == name) value = &kv.second;
    if (value) out += *value;
    else out += text.substr(i, close - i + 1);
    i = close;
  }
  return out;
}

}  // namespace trainyard::util
