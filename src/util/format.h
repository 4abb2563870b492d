// Numbers as people read them in tables and messages: integers without a
// decimal point, others with up to 6 significant digits.
#pragma once
#include <string>

namespace trainyard::util {

std::string formatValue(double v);  // shortest faithful form: "3", "0.8771", "1.5e-05"

}  // namespace trainyard::util
