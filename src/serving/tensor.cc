#include "serving/tensor.h"

#include <cstring>

#include <fmt/format.h>
#include "serving/simdjson_util.h"

#include <cmath>
#include <limits>
#include <functional>

namespace trainyard::serving {
namespace {
struct TypeInfo {
  DataType t;
  const char* v2;
  const char* tf;
  size_t size;
};
const TypeInfo kTypes[] = {
    {DataType::BOOL, "BOOL", "DT_BOOL", 1},       {DataType::UINT8, "UINT8", "DT_UINT8", 1},
    {DataType::UINT16, "UINT16", "DT_UINT16", 2}, {DataType::UINT32, "UINT32", "DT_UINT32", 4},
    {DataType::UINT64, "UINT64", "DT_UINT64", 8}, {DataType::INT8, "INT8", "DT_INT8", 1},
    {DataType::INT16, "INT16", "DT_INT16", 2},    {DataType::INT32, "INT32", "DT_INT32", 4},
    {DataType::INT64, "INT64", "DT_INT64", 8},    {DataType::FP16, "FP16", "DT_HALF", 2},
    {DataType::FP32, "FP32", "DT_FLOAT", 4},      {DataType::FP64, "FP64", "DT_DOUBLE", 8},
};
const TypeInfo& info(DataType t) { return kTypes[static_cast<int>(t)]; }

// IEEE half from float (round to nearest even), enough for FP16 inputs.
uint16_t toHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
  int exp = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00 | (((x >> 23) & 0xff) == 0xff && mant ? 0x200 : 0));
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    if ((mant >> (shift - 1)) & 1) h += 1;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  if (mant & 0x1000) h += 1;
  return static_cast<uint16_t>(h);
}
float fromHalf(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) x = sign;
    else {
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) mant <<= 1, --exp;
      x = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000 | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string text(const element& v) { return simdjson::minify(v); }

template <typename T>
void put(uint8_t* dst, const element& v, const std::string& input, DataType dt) {
  T x;
  auto type = v.type();
  if constexpr (std::is_same_v<T, bool>) {
    if (type != element_type::BOOL) throw TensorError(input, fmt::format("input \"{}\": expected true/false (BOOL), got {}", input, text(v)));
    x = v.get_bool().value();
  } else if constexpr (std::is_floating_point_v<T>) {
    double d;
    if (type == element_type::DOUBLE) d = v.get_double().value();
    else if (type == element_type::INT64) d = static_cast<double>(v.get_int64().value());
    else if (type == element_type::UINT64) d = static_cast<double>(v.get_uint64().value());
    else throw TensorError(input, fmt::format("input \"{}\": expected a number ({}), got {}", input, name(dt), text(v)));
    // Narrowing would turn 3.5e38 into infinity (FP32) or 70000 into it (FP16).
    double max = dt == DataType::FP16 ? 65504.0 : static_cast<double>(std::numeric_limits<T>::max());
    if (!(std::fabs(d) <= max)) throw TensorError(input, fmt::format("input \"{}\": {} is out of range for {}", input, text(v), name(dt)));
    x = static_cast<T>(d);
  } else {
    int64_t i;
    if (type == element_type::INT64) i = v.get_int64().value();
    else if (type == element_type::UINT64 && v.get_uint64().value() <= uint64_t(INT64_MAX)) i = static_cast<int64_t>(v.get_uint64().value());
    else if (double d = type == element_type::DOUBLE ? v.get_double().value() : 0.5;
             d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == std::trunc(d))  // 3.0 is an integer; 1e30 is not an int64
      i = static_cast<int64_t>(d);
    else throw TensorError(input, fmt::format("input \"{}\": expected an integer ({}), got {}", input, name(dt), text(v)));
    if constexpr (std::is_unsigned_v<T>) {
      if (i < 0 || static_cast<uint64_t>(i) > std::numeric_limits<T>::max())
        throw TensorError(input, fmt::format("input \"{}\": {} is out of range for {}", input, i, name(dt)));
    } else {
      if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
        throw TensorError(input, fmt::format("input \"{}\": {} is out of range for {}", input, i, name(dt)));
    }
    x = static_cast<T>(i);
  }
  std::memcpy(dst, &x, sizeof(T));
}

void putValue(uint8_t* dst, const element& v, DataType dt, const std::string& input) {
  switch (dt) {
    case DataType::BOOL: return put<bool>(dst, v, input, dt);
    case DataType::UINT8: return put<uint8_t>(dst, v, input, dt);
    case DataType::UINT16: return put<uint16_t>(dst, v, input, dt);
    case DataType::UINT32: return put<uint32_t>(dst, v, input, dt);
    case DataType::UINT64: return put<uint64_t>(dst, v, input, dt);
    case DataType::INT8: return put<int8_t>(dst, v, input, dt);
    case DataType::INT16: return put<int16_t>(dst, v, input, dt);
    case DataType::INT32: return put<int32_t>(dst, v, input, dt);
    case DataType::INT64: return put<int64_t>(dst, v, input, dt);
    case DataType::FP16: {
      float f;
      put<float>(reinterpret_cast<uint8_t*>(&f), v, input, DataType::FP16);
      uint16_t h = toHalf(f);
      std::memcpy(dst, &h, 2);
      return;
    }
    case DataType::FP32: return put<float>(dst, v, input, dt);
    case DataType::FP64: return put<double>(dst, v, input, dt);
  }
}

void writeValue(std::string& out, const uint8_t* p, DataType dt) {
  auto rd = [&](auto x) {
    std::memcpy(&x, p, sizeof x);
    return x;
  };
  auto num = [&](auto x) {
    if constexpr (std::is_floating_point_v<decltype(x)>) {
      if (!std::isfinite(x)) {  // JSON has no NaN/Infinity
        out += "null";
        return;
      }
    }
    fmt::format_to(std::back_inserter(out), "{}", x);
  };
  switch (dt) {
    case DataType::BOOL: out += rd(uint8_t{}) ? "true" : "false"; return;
    case DataType::UINT8: return num(rd(uint8_t{}));
    case DataType::UINT16: return num(rd(uint16_t{}));
    case DataType::UINT32: return num(rd(uint32_t{}));
    case DataType::UINT64: return num(rd(uint64_t{}));
    case DataType::INT8: return num(int(rd(int8_t{})));
    case DataType::INT16: return num(rd(int16_t{}));
    case DataType::INT32: return num(rd(int32_t{}));
    case DataType::INT64: return num(rd(int64_t{}));
    case DataType::FP16: return num(fromHalf(rd(uint16_t{})));
    case DataType::FP32: return num(rd(float{}));
    case DataType::FP64: return num(rd(double{}));
  }
}

// Nested arrays for dimensions [depth, shape.size()), elements from k on.
void writeNested(std::string& out, const HostTensor& t, size_t depth, int64_t& k) {
  size_t sz = byteSize(t.dtype);
  if (depth == t.shape.size()) {
    writeValue(out, t.bytes.data() + (k++) * sz, t.dtype);
    return;
  }
  out += '[';
  for (int64_t i = 0; i < t.shape[depth]; ++i) {
    if (i) out += ',';
    writeNested(out, t, depth + 1, k);
  }
  out += ']';
}
}  // namespace

const char* name(DataType t) { return info(t).v2; }
const char* tfName(DataType t) { return info(t).tf; }
size_t byteSize(DataType t) { return info(t).size; }

std::optional<DataType> dataTypeFromName(const std::string& s) {
  for (const auto& i : kTypes)
    if (s == i.v2 || s == i.tf) return i.t;
  return std::nullopt;
}

int64_t HostTensor::elements() const { return checkedElements(shape).value_or(-1); }

std::optional<int64_t> checkedElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

int64_t countValues(const element& data) {
  if (data.type() != element_type::ARRAY) return 1;
  int64_t n = 0;
  for (element c : arrayOf(data)) n += countValues(c);
  return n;
}

std::vector<int64_t> jsonShape(const element& j, const std::string& input) {
  std::vector<int64_t> shape;
  element cur = j;
  while (cur.type() == element_type::ARRAY) {
    auto arr = arrayOf(cur);
    shape.push_back(static_cast<int64_t>(arr.size()));
    if (arr.size() == 0) break;
    cur = arr.at(0).value();
  }
  // Every sub-array must have the same length (no ragged input).
  std::function<void(const element&, size_t)> check = [&](const element& n, size_t depth) {
    if (depth == shape.size()) {
      if (n.type() == element_type::ARRAY) throw TensorError(input, fmt::format("input \"{}\": nested deeper than its first element", input));
      return;
    }
    if (n.type() != element_type::ARRAY || static_cast<int64_t>(arrayOf(n).size()) != shape[depth])
      throw TensorError(input, fmt::format("input \"{}\": ragged array: expected {} elements at depth {}", input, shape[depth], depth));
    for (element c : arrayOf(n)) check(c, depth + 1);
  };
  check(j, 0);
  return shape;
}

int64_t appendValues(HostTensor& t, const element& data, int64_t k) {
  auto checked = checkedElements(t.shape);
  if (!checked) throw TensorError(t.name, fmt::format("input \"{}\": shape {} does not describe a tensor (negative or overflowing size)", t.name, shapeText(t.shape)));
  int64_t n = *checked;
  size_t sz = byteSize(t.dtype);
  if (t.bytes.size() != static_cast<size_t>(n) * sz) t.bytes.assign(static_cast<size_t>(n) * sz, 0);
  std::function<void(const element&)> walk = [&](const element& v) {
    if (v.type() == element_type::ARRAY) {
      for (element c : arrayOf(v)) walk(c);
      return;
    }
    if (k >= n) throw TensorError(t.name, fmt::format("input \"{}\": more values than its shape {} holds ({})", t.name, shapeText(t.shape), n));
    putValue(t.bytes.data() + k * sz, v, t.dtype, t.name);
    ++k;
  };
  walk(data);
  return k;
}

void fillFromJson(HostTensor& t, const element& data) {
  t.bytes.clear();
  // The declared shape is checked against the values actually sent before
  // a byte is allocated for it: a shape is a claim, the data is the fact.
  auto declared = checkedElements(t.shape);
  int64_t present = countValues(data);
  if (!declared || *declared != present)
    throw TensorError(t.name, fmt::format("input \"{}\": {} values for shape {} ({} expected)", t.name, present, shapeText(t.shape),
                                          declared ? std::to_string(*declared) : std::string("more than 2^63")));
  int64_t k = appendValues(t, data, 0);
  if (k != t.elements())
    throw TensorError(t.name, fmt::format("input \"{}\": {} values for shape {} ({} expected)", t.name, k, shapeText(t.shape), t.elements()));
}

void appendJson(std::string& out, const HostTensor& t, bool nested) {
  int64_t k = 0;
  if (nested && !t.shape.empty()) {
    writeNested(out, t, 0, k);
    return;
  }
  size_t sz = byteSize(t.dtype);
  out += '[';
  for (int64_t i = 0; i < t.elements(); ++i) {
    if (i) out += ',';
    writeValue(out, t.bytes.data() + i * sz, t.dtype);
  }
  out += ']';
}

void appendJsonRow(std::string& out, const HostTensor& t, int64_t row) {
  int64_t per_row = t.shape.empty() || t.shape[0] == 0 ? 0 : t.elements() / t.shape[0];
  int64_t k = row * per_row;
  writeNested(out, t, 1, k);
}

}  // namespace trainyard::serving
