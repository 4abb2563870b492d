#include "serving/tensor.h"

#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

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

template <typename T>
void put(uint8_t* dst, const nlohmann::json& v, const std::string& input, DataType dt) {
  T x;
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw TensorError(input, fmt::format("input \"{}\": expected true/false (BOOL), got {}", input, v.dump()));
    x = v.get<bool>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw TensorError(input, fmt::format("input \"{}\": expected a number ({}), got {}", input, name(dt), v.dump()));
    x = v.get<T>();
  } else {
    if (!v.is_number_integer() && !(v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>()))))
      throw TensorError(input, fmt::format("input \"{}\": expected an integer ({}), got {}", input, name(dt), v.dump()));
    int64_t i = v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
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

void putValue(uint8_t* dst, const nlohmann::json& v, DataType dt, const std::string& input) {
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
      if (!v.is_number()) throw TensorError(input, fmt::format("input \"{}\": expected a number (FP16), got {}", input, v.dump()));
      uint16_t h = toHalf(v.get<float>());
      std::memcpy(dst, &h, 2);
      return;
    }
    case DataType::FP32: return put<float>(dst, v, input, dt);
    case DataType::FP64: return put<double>(dst, v, input, dt);
  }
}

nlohmann::json getValue(const uint8_t* p, DataType dt) {
  auto rd = [&](auto x) {
    std::memcpy(&x, p, sizeof x);
    return x;
  };
  switch (dt) {
    case DataType::BOOL: return rd(uint8_t{}) != 0;
    case DataType::UINT8: return rd(uint8_t{});
    case DataType::UINT16: return rd(uint16_t{});
    case DataType::UINT32: return rd(uint32_t{});
    case DataType::UINT64: return rd(uint64_t{});
    case DataType::INT8: return rd(int8_t{});
    case DataType::INT16: return rd(int16_t{});
    case DataType::INT32: return rd(int32_t{});
    case DataType::INT64: return rd(int64_t{});
    case DataType::FP16: return fromHalf(rd(uint16_t{}));
    case DataType::FP32: return rd(float{});
    case DataType::FP64: return rd(double{});
  }
  return nullptr;
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

int64_t HostTensor::elements() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::vector<int64_t> jsonShape(const nlohmann::json& j, const std::string& input) {
  std::vector<int64_t> shape;
  const nlohmann::json* cur = &j;
  while (cur->is_array()) {
    shape.push_back(static_cast<int64_t>(cur->size()));
    if (cur->empty()) break;
    cur = &(*cur)[0];
  }
  // Every sub-array must have the same length (no ragged input).
  std::function<void(const nlohmann::json&, size_t)> check = [&](const nlohmann::json& n, size_t depth) {
    if (depth == shape.size()) {
      if (n.is_array()) throw TensorError(input, fmt::format("input \"{}\": nested deeper than its first element", input));
      return;
    }
    if (!n.is_array() || static_cast<int64_t>(n.size()) != shape[depth])
      throw TensorError(input, fmt::format("input \"{}\": ragged array: expected {} elements at depth {}", input, shape[depth], depth));
    if (depth + 1 < shape.size())
      for (const auto& c : n) check(c, depth + 1);
    else
      for (const auto& c : n)
        if (c.is_array()) throw TensorError(input, fmt::format("input \"{}\": ragged array at depth {}", input, depth + 1));
  };
  check(j, 0);
  return shape;
}

void fillFromJson(HostTensor& t, const nlohmann::json& data) {
  int64_t n = t.elements();
  size_t sz = byteSize(t.dtype);
  t.bytes.assign(static_cast<size_t>(n) * sz, 0);
  int64_t k = 0;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& v) {
    if (v.is_array()) {
      for (const auto& c : v) walk(c);
      return;
    }
    if (k >= n) throw TensorError(t.name, fmt::format("input \"{}\": more values than its shape {} holds ({})", t.name, shapeText(t.shape), n));
    putValue(t.bytes.data() + k * sz, v, t.dtype, t.name);
    ++k;
  };
  walk(data);
  if (k != n)
    throw TensorError(t.name, fmt::format("input \"{}\": {} values for shape {} ({} expected)", t.name, k, shapeText(t.shape), n));
}

nlohmann::json toJson(const HostTensor& t, bool nested) {
  size_t sz = byteSize(t.dtype);
  if (!nested || t.shape.size() <= 1) {
    nlohmann::json flat = nlohmann::json::array();
    for (int64_t i = 0; i < t.elements(); ++i) flat.push_back(getValue(t.bytes.data() + i * sz, t.dtype));
    return flat;
  }
  int64_t k = 0;
  std::function<nlohmann::json(size_t)> build = [&](size_t depth) {
    nlohmann::json a = nlohmann::json::array();
    for (int64_t i = 0; i < t.shape[depth]; ++i) {
      if (depth + 1 == t.shape.size()) a.push_back(getValue(t.bytes.data() + (k++) * sz, t.dtype));
      else a.push_back(build(depth + 1));
    }
    return a;
  };
  return build(0);
}

}  // namespace trainyard::serving
