// libFuzzer: the inference tensor decoder (TF-Serving rows/columns and
// KServe V2 data) as the protocols use it: a shape (from the JSON itself or
// declared), a datatype, values. TensorError is the only way out; no input
// may allocate more than its values (the process runs with -rss_limit_mb).
#include <cstdint>
#include <string>
#include <vector>

#include "serving/simdjson_util.h"
#include "serving/tensor.h"

using namespace trainyard::serving;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  DataType dt = static_cast<DataType>(data[0] % 12);
  bool declared = data[1] & 1;
  std::string json(reinterpret_cast<const char*>(data) + 2, size - 2);
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc)) return 0;
  try {
    HostTensor t{"x", dt, {}, {}};
    if (declared) {
      // {"shape": [...], "data": ...} as V2 sends them.
      simdjson::dom::element shape, values;
      if (doc.type() != simdjson::dom::element_type::OBJECT || doc["shape"].get(shape) || doc["data"].get(values)) return 0;
      if (shape.type() != simdjson::dom::element_type::ARRAY) return 0;
      for (simdjson::dom::element d : arrayOf(shape)) {
        if (d.type() != simdjson::dom::element_type::INT64) return 0;
        t.shape.push_back(d.get_int64().value());
      }
      fillFromJson(t, values);
    } else {
      t.shape = jsonShape(doc, "x");
      fillFromJson(t, doc);
    }
    std::string out;
    appendJson(out, t, true);
    appendJson(out, t, false);
    if (!t.shape.empty() && t.shape[0] > 0) appendJsonRow(out, t, 0);
  } catch (const TensorError&) {
  } catch (const simdjson::simdjson_error&) {
  }
  return 0;
}
