// Numbers as people read them in tables and messages: integers without a
// decimal point, others with up to 6 significant digits.
#pragma once
#include <string>

namespace trainyard::util {

std::string formatValue(double v);  // shortest faithful form: "3", "0.8771", "1.5e-05"

// Percent-encodes a URL path segment or query value (RFC 3986 unreserved kept).
std::string percentEncode(const std::string& s);

}  // namespace trainyard::util
