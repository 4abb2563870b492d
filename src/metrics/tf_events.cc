#include "metrics/tf_events.h"

#include <boost/crc.hpp>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <optional>

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tf_event.pb.h"

namespace trainyard::metrics {
namespace {

uint64_t le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint32_t le32(const char* p) { return static_cast<uint32_t>(le64(std::string(p, 4).append(4, '\0').data())); }

// IEEE 754 half precision to double.
double halfToDouble(uint16_t h) {
  int exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  double v = exp == 0 ? std::ldexp(frac, -24) : exp == 31 ? (frac ? NAN : INFINITY) : std::ldexp(frac + 1024, exp - 25);
  return (h & 0x8000) ? -v : v;
}

// The value of a one-element tensor, if it is one of a number type.
std::optional<double> scalarOf(const tfevent::TensorProto& t) {
  int64_t elements = 1;
  for (const auto& d : t.tensor_shape().dim()) elements *= d.size();
  if (elements != 1 || t.tensor_shape().unknown_rank()) return std::nullopt;
  const std::string& c = t.tensor_content();
  switch (t.dtype()) {
    case tfevent::DT_FLOAT:
      if (t.float_val_size()) return t.float_val(0);
      if (c.size() == 4) { float f; std::memcpy(&f, c.data(), 4); return f; }
      break;
    case tfevent::DT_DOUBLE:
      if (t.double_val_size()) return t.double_val(0);
      if (c.size() == 8) { double d; std::memcpy(&d, c.data(), 8); return d; }
      break;
    case tfevent::DT_INT32:
      if (t.int_val_size()) return t.int_val(0);
      if (c.size() == 4) return static_cast<int32_t>(le32(c.data()));
      break;
    case tfevent::DT_INT64:
      if (t.int64_val_size()) return static_cast<double>(t.int64_val(0));
      if (c.size() == 8) return static_cast<double>(static_cast<int64_t>(le64(c.data())));
      break;
    case tfevent::DT_BOOL:
      if (t.bool_val_size()) return t.bool_val(0) ? 1 : 0;
      if (c.size() == 1) return c[0] ? 1 : 0;
      break;
    case tfevent::DT_HALF:
      if (t.half_val_size()) return halfToDouble(static_cast<uint16_t>(t.half_val(0)));
      if (c.size() == 2) return halfToDouble(static_cast<uint16_t>(static_cast<unsigned char>(c[0]) | static_cast<unsigned char>(c[1]) << 8));
      break;
    default: break;
  }
  return std::nullopt;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  // Castagnoli's polynomial, reflected, as TFRecord (and iSCSI) use it.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

uint32_t maskedCrc32c(std::string_view bytes) {
  uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string TfEventReader::nameOf(const std::string& tag) const {
  std::string full = dir_.empty() ? tag : dir_ + "/" + tag;
  for (int exact = 1; exact >= 0; --exact)
    for (const auto& m : wanted_) {
      const std::string& against = m.find('/') != std::string::npos ? full : tag;
      if (exact ? against == m : against.starts_with(m)) return m;
    }
  return full;
}

void TfEventReader::feed(std::string_view bytes, std::vector<MetricPoint>& out) {
  if (!error_.empty()) return;
  carry_.append(bytes);
  size_t at = 0;
  tfevent::Event event;
  while (carry_.size() - at >= 12) {
    const char* p = carry_.data() + at;
    uint64_t length = le64(p);
    if (maskedCrc32c({p, 8}) != le32(p + 8)) {
      error_ = "a record's length does not match its checksum (not a TFRecord file, or damaged)";
      break;
    }
    if (length > kMaxRecord) {
      error_ = fmt::format("a record of {} bytes (more than {}): not read", length, kMaxRecord);
      break;
    }
    if (carry_.size() - at < 12 + length + 4) break;  // the rest is still being written
    std::string_view data(p + 12, length);
    if (maskedCrc32c(data) != le32(p + 12 + length)) {
      error_ = "a record does not match its checksum (damaged)";
      break;
    }
    at += 12 + length + 4;
    if (!event.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
      error_ = "a record is not an Event protobuf";
      break;
    }
    if (!event.has_summary()) continue;
    int64_t step = std::clamp<int64_t>(event.step(), -kMaxStep, kMaxStep);
    for (const auto& v : event.summary().value()) {
      std::optional<double> value;
      if (v.value_case() == tfevent::Summary::Value::kSimpleValue) value = v.simple_value();
      else if (v.value_case() == tfevent::Summary::Value::kTensor) value = scalarOf(v.tensor());
      if (!value || !std::isfinite(*value) || v.tag().empty() || v.tag().size() > 256) continue;
      out.push_back({nameOf(v.tag()), *value, step, event.wall_time()});
    }
  }
  if (!error_.empty()) carry_.clear();
  else carry_.erase(0, at);
}

namespace {
std::string hex(const std::string& b) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) out += d[c >> 4], out += d[c & 15];
  return out;
}
std::string unhex(const std::string& h) {
  std::string out;
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(v(h[i]) << 4 | v(h[i + 1]));
  return out;
}
}  // namespace

TfEventDirectory::TfEventDirectory(std::string dir, std::vector<std::string> wanted, const std::string& state)
    : dir_(std::move(dir)), wanted_(std::move(wanted)) {
  auto j = nlohmann::json::parse(state, nullptr, false);
  if (!j.is_object()) return;  // "" (nothing read yet), or a cursor of another collector
  for (auto it = j.begin(); it != j.end() && files_.size() < kMaxFiles; ++it) {
    const auto& f = it.value();
    if (!f.is_object()) continue;
    auto [at, fresh] = files_.try_emplace(it.key());
    at->second.reader = readerFor(it.key());
    at->second.cursor = f.value("c", "");
    at->second.reader.restoreCarry(unhex(f.value("k", "")));
    if (f.contains("e")) at->second.reader.fail(f.value("e", ""));
  }
}

TfEventReader TfEventDirectory::readerFor(const std::string& path) const {
  // Its tags are named after its directory below dir_ ("train/loss").
  std::string sub = std::filesystem::path(path).parent_path().lexically_relative(dir_).string();
  return TfEventReader(sub == "." ? "" : sub, wanted_);
}

bool TfEventDirectory::poll(const List& list, const Read& read, std::vector<MetricPoint>& out) {
  for (const auto& path : list(dir_)) {
    if (files_.size() >= kMaxFiles) break;
    if (files_.count(path)) continue;
    files_[path].reader = readerFor(path);
  }
  bool drained = true;
  for (auto& [path, f] : files_) {
    // Up to 64 MiB per file per poll: a huge file is read over several passes.
    for (int i = 0; i < 64 && f.reader.error().empty(); ++i) {
      Chunk c = read(path, f.cursor);
      drained = drained && !c.unavailable;
      if (c.bytes.empty()) break;
      f.cursor = c.next;
      f.reader.feed(c.bytes, out);
    }
  }
  return drained;
}

std::string TfEventDirectory::state() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [path, f] : files_) {
    nlohmann::json e = {{"c", f.cursor}};
    if (!f.reader.carry().empty()) e["k"] = hex(f.reader.carry());
    if (!f.reader.error().empty()) e["e"] = f.reader.error();
    j[path] = e;
  }
  return j.dump();
}

std::vector<std::string> TfEventDirectory::errors() const {
  std::vector<std::string> out;
  for (const auto& [path, f] : files_)
    if (!f.reader.error().empty()) out.push_back(path + ": " + f.reader.error());
  return out;
}

}  // namespace trainyard::metrics
