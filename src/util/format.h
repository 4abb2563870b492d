// Numbers as people read them in tables and messages: integers without a
// decimal point, others with up to 6 significant digits.
#pragma once
#include <string>

namespace trainyard::util {

std::string formatValue(double v);  // shortest faithful form: "3", "0.8771", "1.5e-05"

// Percent-encodes a URL path segment or query value (RFC 3986 unreserved kept).
std::string percentEncode(const std::string& s);

// One POSIX shell word: 'it'\''s' for it's.
inline std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace trainyard::util
