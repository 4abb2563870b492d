// Katib's metricsFormat regexes are Go's RE2, where a brace that does not
// make a repetition ({2}, {2,}, {2,5} after something) is a literal: Katib's
// own example is "{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}".
// ECMAScript (std::regex) rejects such braces, so they are escaped first.
#pragma once
#include <cctype>
#include <string>

namespace trainyard::spec {

inline std::string literalBraces(const std::string& re) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      out += c;
      out += re[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      continue;
    }
    if (c == '{') {
      // A repetition: {n}, {n,} or {n,m}, after an atom.
      size_t j = i + 1, digits = 0;
      while (j < re.size() && std::isdigit(static_cast<unsigned char>(re[j]))) ++j, ++digits;
      if (digits && j < re.size() && re[j] == ',') {
        ++j;
        while (j < re.size() && std::isdigit(static_cast<unsigned char>(re[j]))) ++j;
      }
      bool after_atom = !out.empty() && out.back() != '(' && out.back() != '|';
      if (digits && j < re.size() && re[j] == '}' && after_atom) {
        out.append(re, i, j - i + 1);
        i = j;
        continue;
      }
      out += "\\{";
      continue;
    }
    if (c == '}') {
      out += "\\}";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace trainyard::spec
