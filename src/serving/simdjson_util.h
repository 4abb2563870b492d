// Internal to serving/: small helpers over simdjson's DOM (included by .cc
// files only: simdjson.h is a large header).
#pragma once
#include <simdjson.h>

namespace trainyard::serving {

// A DOM array by value: binding `x.get_array().value()` in a range-for
// would keep a reference into a destroyed temporary.
inline simdjson::dom::array arrayOf(const simdjson::dom::element& e) {
  simdjson::dom::array a = e.get_array();
  return a;
}

}  // namespace trainyard::serving
