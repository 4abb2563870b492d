#include "metrics/line_parser.h"
#include "metrics/tf_events.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

#include <cmath>
#include <random>
#include <regex>

using namespace trainyard::metrics;

namespace {
std::vector<std::pair<std::string, double>> scan(std::string_view line) {
  std::vector<Pair> pairs;
  scanKatibLine(line, pairs);
  std::vector<std::pair<std::string, double>> out;
  for (auto& p : pairs) out.emplace_back(std::string(p.name), p.value);
  return out;
}
}  // namespace

TEST(KatibFormat, Basic) {
  auto v = scan("epoch 3: loss=0.25, accuracy = 0.9 lr=1e-3 f1-score=-.5 x=abc");
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], (std::pair<std::string, double>{"loss", 0.25}));
  EXPECT_EQ(v[1], (std::pair<std::string, double>{"accuracy", 0.9}));
  EXPECT_EQ(v[2], (std::pair<std::string, double>{"lr", 1e-3}));
  EXPECT_EQ(v[3], (std::pair<std::string, double>{"f1-score", -0.5}));
}

// The hand-written scanner must find exactly what Katib's regex finds (pairs
// whose value parses as a number).
TEST(KatibFormat, SameAsTheRegexOnRandomLines) {
  std::regex re(R"(([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?))");
  const std::string alphabet = "ab_|-= .eE+-0123456789,:\t=";
  std::mt19937 rng(42);
  for (int iter = 0; iter < 5000; ++iter) {
    std::string line;
    int len = rng() % 40;
    for (int i = 0; i < len; ++i) line += alphabet[rng() % alphabet.size()];
    std::vector<std::pair<std::string, double>> expected;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), re); it != std::sregex_iterator(); ++it) {
      std::string v = (*it)[2].str();
      if (!v.empty() && v[0] == '+') v.erase(0, 1);
      char* end = nullptr;
      double d = v.empty() ? 0 : std::strtod(v.c_str(), &end);
      // Non-finite values (1e999) are dropped on purpose: nothing can plot them.
      if (!v.empty() && end == v.c_str() + v.size() && std::isfinite(d)) expected.emplace_back((*it)[1].str(), d);
    }
    EXPECT_EQ(scan(line), expected) << "line: [" << line << "]";
  }
}

TEST(LineParser, StepAndEpochKeys) {
  LineParser p(LineParser::Format::Katib);
  std::vector<MetricPoint> out;
  p.feed("epoch=2 loss=0.5\nstep=7 epoch=1 acc=0.8\nloss=0.4\nloss=0.3\n", 100.0, out);
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[1].name, "loss");
  EXPECT_EQ(out[1].step, 2);  // epoch is the step when there is no step key
  EXPECT_EQ(out[4].name, "acc");
  EXPECT_EQ(out[4].step, 7);  // step wins over epoch
  EXPECT_EQ(out[5].step, 0);  // no key: index within the series
  EXPECT_EQ(out[6].step, 1);
  EXPECT_DOUBLE_EQ(out[6].timestamp, 100.0);
}

TEST(LineParser, LinesSplitAcrossChunks) {
  LineParser p(LineParser::Format::Katib);
  std::vector<MetricPoint> out;
  p.feed("lo", 1, out);
  p.feed("ss=1.", 1, out);
  EXPECT_TRUE(out.empty());
  p.feed("5\r\nacc=", 1, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_DOUBLE_EQ(out[0].value, 1.5);
  p.feed("0.9", 1, out);
  p.finish(1, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].name, "acc");
}

// A controller taking over resumes from the stored cursor and carry: the
// points are those one parser would have produced, none twice, none lost,
// whatever bytes (not UTF-8 here) the half line holds.
TEST(LineParser, CarryResumesAHalfLineInAnotherParser) {
  std::string text = "step=1 loss=0.5\nstep=2 lo\xff\xfe=1 loss=0.25\nstep=3 loss=0.125\n";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    std::vector<MetricPoint> whole, split;
    LineParser one(LineParser::Format::Katib);
    one.feed(text, 0, whole);
    LineParser a(LineParser::Format::Katib);
    a.feed(std::string_view(text).substr(0, cut), 0, split);
    std::string carry = a.carry();
    EXPECT_TRUE(carry.empty() || carry.rfind("hex:", 0) == 0) << carry;
    LineParser b(LineParser::Format::Katib);
    b.restoreCarry(carry);
    b.feed(std::string_view(text).substr(cut), 0, split);
    ASSERT_EQ(split.size(), whole.size()) << "cut at " << cut;
    for (size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(split[i].name, whole[i].name);
      EXPECT_EQ(split[i].step, whole[i].step);
      EXPECT_EQ(split[i].value, whole[i].value);
    }
  }
}

// A program that prints without newlines does not grow the parser: the
// overlong line is skipped whole, the next one parsed, and "skipping"
// survives a takeover.
TEST(LineParser, OverlongLinesAreSkippedWithBoundedMemory) {
  LineParser p(LineParser::Format::Katib);
  std::vector<MetricPoint> out;
  std::string junk(LineParser::kMaxLine / 2, 'x');
  p.feed("loss=9 " + junk, 0, out);
  p.feed(junk, 0, out);
  p.feed(junk, 0, out);
  EXPECT_EQ(p.carry(), "skip");
  LineParser q(LineParser::Format::Katib);
  q.restoreCarry(p.carry());
  q.feed(junk + "\nloss=0.5\n", 0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "loss");
  EXPECT_EQ(out[0].value, 0.5);
  EXPECT_EQ(q.carry(), "");
}

TEST(LineParser, JsonLines) {
  LineParser p(LineParser::Format::JsonLines);
  std::vector<MetricPoint> out;
  p.feed("{\"step\": 3, \"loss\": 0.5, \"tag\": \"x\"}\nnot json\n[1,2]\n{\"acc\": 0.9, \"timestamp\": 42}\n", 1, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "loss");
  EXPECT_EQ(out[0].step, 3);
  EXPECT_EQ(out[2].name, "acc");
  EXPECT_DOUBLE_EQ(out[2].timestamp, 42);
}

TEST(LineParser, KatibsJsonFormatWithNumbersInStrings) {
  // cloudml-hypertune's lines, as Katib's median-stop-with-json-format example writes them.
  LineParser p(LineParser::Format::JsonLines);
  std::vector<MetricPoint> out;
  p.feed("{\"timestamp\": 1700000000.5, \"trial\": \"0\", \"loss\": \"0.7646\", \"global_step\": \"1\"}\n"
         "{\"timestamp\": \"2021-12-02T14:27:51Z\", \"loss\": \"0.5\", \"global_step\": \"2\", \"note\": \"abc\"}\n"
         "{\"epoch\": 3, \"accuracy\": \" 0.9\", \"timestamp\": \"2021-12-02T14:27:51.25+01:00\", \"bad\": \"1e999\"}\n",
         1, out);
  std::vector<std::tuple<std::string, double, int64_t>> got;
  for (const auto& m : out)
    if (m.name != "step" && m.name != "epoch") got.emplace_back(m.name, m.value, m.step);
  EXPECT_EQ(got, (std::vector<std::tuple<std::string, double, int64_t>>{{"loss", 0.7646, 1}, {"loss", 0.5, 2}, {"accuracy", 0.9, 3}}));
  EXPECT_DOUBLE_EQ(out[0].timestamp, 1700000000.5);
  for (const auto& m : out) EXPECT_NE(m.name, "trial");  // hypertune's trial id, not a metric
  EXPECT_DOUBLE_EQ(out.back().timestamp, 1638455271.25 - 3600);  // 13:27:51.25Z
  auto loss2 = std::find_if(out.begin(), out.end(), [](const auto& m) { return m.name == "loss" && m.step == 2; });
  EXPECT_DOUBLE_EQ(loss2->timestamp, 1638455271);  // 2021-12-02T14:27:51Z
}

TEST(LineParser, SeveralRegexesAllApplyToEveryLine) {
  // Katib's metricsFormat list, e.g. its "{metricName: X, metricValue: V}" format beside "X=V".
  LineParser p(LineParser::Format::Regex, "\\{metricName: ([\\w|-]+), metricValue: ((-?\\d+)(\\.\\d+)?)\\}\n([a-z]+)=([0-9.]+)");
  std::vector<MetricPoint> out;
  p.feed("{metricName: accuracy, metricValue: 0.91};{metricName: loss, metricValue: 0.25}\nlr=0.5\n", 1, out);
  std::vector<std::pair<std::string, double>> got;
  for (const auto& m : out) got.emplace_back(m.name, m.value);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, double>>{{"accuracy", 0.91}, {"loss", 0.25}, {"lr", 0.5}}));
}

TEST(LineParser, CustomRegex) {
  LineParser p(LineParser::Format::Regex, R"(([a-z]+):\s*([0-9.]+))");
  std::vector<MetricPoint> out;
  p.feed("loss: 0.5 acc: 0.25 loss=9\n", 1, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].name, "acc");
  EXPECT_DOUBLE_EQ(out[1].value, 0.25);
}

// --- TensorBoard event files (metrics/tf_events.h) ---------------------------

namespace {

// Hand-encoded protobuf, independent of the generated classes.
std::string varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) out += static_cast<char>(v | 0x80), v >>= 7;
  return out + static_cast<char>(v);
}
std::string field(int number, int wire, const std::string& payload) {
  std::string key = varint(static_cast<uint64_t>(number) << 3 | wire);
  return key + (wire == 2 ? varint(payload.size()) : "") + payload;
}
std::string fixed32(float f) { std::string s(4, '\0'); std::memcpy(s.data(), &f, 4); return s; }
std::string fixed64(double d) { std::string s(8, '\0'); std::memcpy(s.data(), &d, 8); return s; }
std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>(v >> (8 * i));
  return s;
}
std::string record(const std::string& data) {
  std::string len = le(data.size(), 8);
  return len + le(trainyard::metrics::maskedCrc32c(len), 4) + data + le(trainyard::metrics::maskedCrc32c(data), 4);
}
// Event{wall_time, step, summary{value{tag, simple_value}}}
std::string simpleEvent(double t, int64_t step, const std::string& tag, float v) {
  std::string value = field(1, 2, tag) + field(2, 5, fixed32(v));
  return field(1, 1, fixed64(t)) + field(2, 0, varint(static_cast<uint64_t>(step))) + field(5, 2, field(1, 2, value));
}
// A TF2 scalar: a float tensor of shape [] in tensor_content.
std::string tensorEvent(double t, int64_t step, const std::string& tag, float v) {
  std::string tensor = field(1, 0, varint(1)) + field(2, 2, "") + field(4, 2, fixed32(v));
  std::string value = field(1, 2, tag) + field(8, 2, tensor);
  return field(1, 1, fixed64(t)) + field(2, 0, varint(static_cast<uint64_t>(step))) + field(5, 2, field(1, 2, value));
}

}  // namespace

TEST(TfEvents, Crc32cIsCastagnolis) {
  EXPECT_EQ(trainyard::metrics::crc32c("123456789"), 0xE3069283u);  // the standard check value
}

TEST(TfEvents, ReadsScalarsFedInPiecesAndStopsAtADamagedRecord) {
  using trainyard::metrics::TfEventReader;
  std::string file = record(field(3, 2, "brain.Event:2"))  // file_version: no metric
                     + record(simpleEvent(100.5, 1, "loss", 0.5f)) + record(tensorEvent(101.5, 2, "loss", 0.25f)) +
                     record(simpleEvent(102, 3, "accuracy_1", 0.75f));
  TfEventReader reader("train", {"accuracy", "test/loss"});
  std::vector<trainyard::metrics::MetricPoint> out;
  for (size_t i = 0; i < file.size(); i += 7) reader.feed(std::string_view(file).substr(i, 7), out);  // as appended
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].name, "train/loss");  // not test/loss: another directory
  EXPECT_EQ(out[0].step, 1);
  EXPECT_DOUBLE_EQ(out[0].value, 0.5);
  EXPECT_DOUBLE_EQ(out[0].timestamp, 100.5);
  EXPECT_DOUBLE_EQ(out[1].value, 0.25);  // a tensor scalar
  EXPECT_EQ(out[2].name, "accuracy");    // Katib: a tag starting with a wanted name is that metric
  EXPECT_TRUE(reader.carry().empty());
  EXPECT_TRUE(reader.error().empty());

  std::string bad = record(simpleEvent(1, 1, "loss", 1));
  bad[bad.size() - 6] ^= 1;  // a byte of the event
  TfEventReader damaged;
  out.clear();
  damaged.feed(bad + record(simpleEvent(2, 2, "loss", 2)), out);
  EXPECT_TRUE(out.empty());
  EXPECT_NE(damaged.error().find("checksum"), std::string::npos);

  TfEventReader huge;  // a length field that claims 1 TiB: refused before anything is allocated
  std::string len = le(1ull << 40, 8);
  huge.feed(len + le(trainyard::metrics::maskedCrc32c(len), 4), out);
  EXPECT_NE(huge.error().find("bytes"), std::string::npos);
  TfEventReader text;
  text.feed("epoch=1 loss=0.5\nepoch=2 loss=0.25\n", out);
  EXPECT_FALSE(text.error().empty());
}

TEST(TfEvents, ADirectoryResumesFromItsStateWithoutRereading) {
  using trainyard::metrics::TfEventDirectory;
  std::map<std::string, std::string> files{{"/d/events.out.tfevents.1", record(simpleEvent(1, 1, "loss", 1))}};
  auto list = [&](const std::string&) {
    std::vector<std::string> out;
    for (const auto& [p, _] : files) out.push_back(p);
    return out;
  };
  auto read = [&](const std::string& p, const std::string& cursor) {
    size_t at = cursor.empty() ? 0 : std::stoul(cursor);
    const std::string& f = files[p];
    return TfEventDirectory::Chunk{f.substr(at), std::to_string(f.size()), false};
  };
  std::vector<trainyard::metrics::MetricPoint> out;
  TfEventDirectory first("/d", {}, "");
  first.poll(list, read, out);
  ASSERT_EQ(out.size(), 1u);
  std::string second_record = record(simpleEvent(2, 2, "loss", 2));
  files["/d/events.out.tfevents.1"] += second_record.substr(0, 10);  // half written
  files["/d/eval/events.out.tfevents.2"] = record(simpleEvent(3, 7, "acc", 3));
  first.poll(list, read, out);
  // A controller that takes over from the stored state: the half record and the cursors carry over.
  TfEventDirectory taken(first.state().empty() ? "" : "/d", {}, first.state());
  files["/d/events.out.tfevents.1"] += second_record.substr(10);
  taken.poll(list, read, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].name, "eval/acc");
  EXPECT_EQ(out[2].step, 2);
  out.clear();
  taken.poll(list, read, out);
  EXPECT_TRUE(out.empty());  // nothing read twice
}
