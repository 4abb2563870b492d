// Tensors as the inference protocols carry them: a datatype (KServe V2's
// names), a shape and row-major bytes. Pure; libtorch stays in the runtime.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace simdjson::dom {
class element;
}

namespace trainyard::serving {

enum class DataType { BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64 };

const char* name(DataType t);                         // "FP32"
std::optional<DataType> dataTypeFromName(const std::string& s);  // V2 names, also TF's "DT_FLOAT"
const char* tfName(DataType t);                       // "DT_FLOAT"
size_t byteSize(DataType t);

struct HostTensor {
  std::string name;
  DataType dtype = DataType::FP32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // row-major, native endianness

  int64_t elements() const;  // -1 when the shape overflows (see checkedElements)
  template <typename T>
  T* data() { return reinterpret_cast<T*>(bytes.data()); }
  template <typename T>
  const T* data() const { return reinterpret_cast<const T*>(bytes.data()); }
};

// Thrown for input that does not fit the declared tensor; `input` names it.
struct TensorError : std::runtime_error {
  TensorError(std::string input, const std::string& msg) : std::runtime_error(msg), input(std::move(input)) {}
  std::string input;
};

// Request bodies are parsed with simdjson (the inference hot path: a
// 784-float image parses in microseconds, not the ~100 us of a DOM of
// individual numbers).
//
// Fills `t` (dtype and shape set) from JSON numbers: nested arrays matching
// the shape, or a flat row-major array of the right length (V2 allows both).
void fillFromJson(HostTensor& t, const simdjson::dom::element& data);
// Appends `data`'s values to `t` from element index `k` on (rows of a batch
// gathered from several instances); returns the index after them.
int64_t appendValues(HostTensor& t, const simdjson::dom::element& data, int64_t k);
// The shape of nested JSON arrays ([[1,2],[3,4]] -> {2, 2}); throws on ragged arrays.
std::vector<int64_t> jsonShape(const simdjson::dom::element& j, const std::string& input);

// Writes values as JSON: nested arrays (TF-Serving) or flat (V2); with
// `row`, only that row of the batch (nested below it).
void appendJson(std::string& out, const HostTensor& t, bool nested);
void appendJsonRow(std::string& out, const HostTensor& t, int64_t row);

// The product of `shape`, or nullopt when a dimension is negative or the
// product overflows int64.
std::optional<int64_t> checkedElements(const std::vector<int64_t>& shape);
// Scalars in nested JSON arrays (1 for a scalar).
int64_t countValues(const simdjson::dom::element& data);

std::string shapeText(const std::vector<int64_t>& shape);  // "[-1, 784]"

}  // namespace trainyard::serving
