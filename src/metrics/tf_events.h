// TensorBoard event files (Katib's TensorFlowEvent collector): TFRecord
// framing -- uint64 length, masked CRC32C of the length, the record, masked
// CRC32C of the record, all little-endian -- around Event protobufs
// (tf_event.proto). Scalars come from Summary values' simple_value or a
// one-element tensor (float, double, int32, int64, bool, half). Bytes are fed
// as they are appended; an incomplete record waits in carry(). A record whose
// CRC does not match, or longer than kMaxRecord, ends the file: the reader
// reports it in error() and ignores the rest, never guessing at a frame.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/metric.h"

namespace trainyard::metrics {

uint32_t crc32c(std::string_view bytes);
// TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t maskedCrc32c(std::string_view bytes);

class TfEventReader {
 public:
  static constexpr uint64_t kMaxRecord = 16u << 20;

  // A value's name is its tag, after `dir` ("train/accuracy" for a file in
  // train/), unless it is one of `wanted` as Katib matches them: a wanted
  // name with a '/' is compared with dir/tag, one without with the tag, and
  // a tag matches when it starts with the name.
  explicit TfEventReader(std::string dir = "", std::vector<std::string> wanted = {})
      : dir_(std::move(dir)), wanted_(std::move(wanted)) {}
  void feed(std::string_view bytes, std::vector<MetricPoint>& out);
  const std::string& carry() const { return carry_; }
  void restoreCarry(std::string carry) { carry_ = std::move(carry); }
  const std::string& error() const { return error_; }
  void fail(std::string why) { error_ = std::move(why); }

 private:
  std::string nameOf(const std::string& tag) const;

  std::string dir_;
  std::vector<std::string> wanted_;
  std::string carry_;
  std::string error_;
};

// The event files under one directory (TensorFlowEvent collector), each
// read from where it was. Files are listed and read through the caller's
// functions (the backend's, wherever the replica runs). Its whole state --
// per file its cursor, an incomplete record, an error -- is one string, kept
// in the store as the replica's file cursor, so a controller taking over
// continues where the last one was, and no point is read twice.
class TfEventDirectory {
 public:
  struct Chunk {
    std::string bytes, next;
    bool unavailable = false;
  };
  using List = std::function<std::vector<std::string>(const std::string& dir)>;
  using Read = std::function<Chunk(const std::string& path, const std::string& cursor)>;
  static constexpr size_t kMaxFiles = 64;

  TfEventDirectory(std::string dir, std::vector<std::string> wanted, const std::string& state);
  // Reads what was appended; false when some file could not be read now.
  bool poll(const List& list, const Read& read, std::vector<MetricPoint>& out);
  std::string state() const;
  // Files that were given up on, and why ("path: error").
  std::vector<std::string> errors() const;

 private:
  struct File {
    std::string cursor;
    TfEventReader reader;
  };
  TfEventReader readerFor(const std::string& path) const;

  std::string dir_;
  std::vector<std::string> wanted_;
  std::map<std::string, File> files_;
};

}  // namespace trainyard::metrics
