// Serving's pure parts and its lifecycle: batch policy, tensors from JSON,
// model config, the dynamic batcher and the version manager. Models here
// are small in-process stand-ins (the TorchScript runtime is exercised end
// to end by tests/e2e/serving_test.py).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <latch>
#include <thread>

#include <deque>

#include <simdjson.h>

#include "serving/batch_policy.h"
#include "serving/batcher.h"
#include "serving/manager.h"
#include "serving/model_config.h"
#include "serving/tensor.h"
#include "spec/parser.h"
#include "test_util.h"

using namespace trainyard::serving;

namespace {
// A parsed document that stays valid for the test (each parser owns one).
simdjson::dom::element parse(const std::string& text) {
  static std::deque<simdjson::dom::parser> parsers;
  return parsers.emplace_back().parse(text).value();
}
std::string written(const HostTensor& t, bool nested) {
  std::string out;
  appendJson(out, t, nested);
  return out;
}
}  // namespace
namespace fs = std::filesystem;

TEST(BatchPolicy, RunsFullBatchesPreferredSizesAndAfterTheDelay) {
  BatchPolicy p{8, 1000, {4}};
  EXPECT_EQ(decideBatch(p, {}, 0).take, 0);
  EXPECT_EQ(decideBatch(p, {1, 1}, 10).take, 0);           // wait for more
  EXPECT_EQ(decideBatch(p, {1, 1}, 10).wait_us, 990);
  EXPECT_EQ(decideBatch(p, {1, 1, 2}, 10).take, 3);        // 4 rows: a preferred size
  EXPECT_EQ(decideBatch(p, {3, 3, 3}, 0).take, 2);         // >= 8 rows queued: the 6 that fit
  EXPECT_EQ(decideBatch(p, {1, 2}, 1000).take, 2);         // the oldest waited long enough
  EXPECT_EQ(decideBatch(BatchPolicy{1, 1000, {}}, {1, 1}, 0).take, 1);  // no batching
  EXPECT_EQ(decideBatch(BatchPolicy{8, 0, {}}, {1}, 0).take, 1);        // no delay: run at once
}

TEST(Tensor, FromNestedOrFlatJsonAndBack) {
  HostTensor t{"x", DataType::FP32, {2, 3}, {}};
  fillFromJson(t, parse("[[1, 2, 3], [4, 5, 6]]"));
  EXPECT_EQ(t.data<float>()[4], 5.0f);
  HostTensor flat{"x", DataType::FP32, {2, 3}, {}};
  fillFromJson(flat, parse("[1, 2, 3, 4, 5, 6]"));
  EXPECT_EQ(flat.bytes, t.bytes);
  EXPECT_EQ(written(t, true), "[[1,2,3],[4,5,6]]");
  EXPECT_EQ(written(t, false), "[1,2,3,4,5,6]");
  std::string row;
  appendJsonRow(row, t, 1);
  EXPECT_EQ(row, "[4,5,6]");
  EXPECT_EQ(jsonShape(parse("[[1, 2], [3, 4], [5, 6]]"), "x"), (std::vector<int64_t>{3, 2}));
  EXPECT_THROW(jsonShape(parse("[[1, 2], [3]]"), "x"), TensorError);
  HostTensor few{"x", DataType::FP32, {2, 3}, {}};
  try {
    fillFromJson(few, parse("[1, 2, 3]"));
    FAIL();
  } catch (const TensorError& e) {
    EXPECT_EQ(e.input, "x");
    EXPECT_NE(std::string(e.what()).find("3 values for shape [2, 3]"), std::string::npos) << e.what();
  }
  HostTensor b{"m", DataType::BOOL, {2}, {}};
  fillFromJson(b, parse("[true, false]"));
  EXPECT_EQ(written(b, false), "[true,false]");
  EXPECT_THROW(fillFromJson(b, parse("[1, 0]")), TensorError);
  HostTensor i8{"i", DataType::INT8, {1}, {}};
  EXPECT_THROW(fillFromJson(i8, parse("[300]")), TensorError);
  HostTensor h{"h", DataType::FP16, {3}, {}};
  fillFromJson(h, parse("[0.5, -2, 65504]"));
  EXPECT_EQ(written(h, false), "[0.5,-2,65504]");
  for (const char* n : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"})
    EXPECT_STREQ(name(*dataTypeFromName(n)), n);
  EXPECT_EQ(dataTypeFromName("DT_FLOAT"), DataType::FP32);
  EXPECT_FALSE(dataTypeFromName("FP8"));
}

// A shape is a claim; the values sent are the fact. A declared 10^9 x 4
// tensor with 4 values is refused before anything is allocated for it, and
// sizes that overflow int64 are refused, not wrapped.
TEST(Tensor, DeclaredShapeIsCheckedAgainstTheDataBeforeAllocation) {
  EXPECT_EQ(checkedElements({1000000000, 4}), 4000000000);
  EXPECT_FALSE(checkedElements({INT64_MAX, 4}));
  EXPECT_FALSE(checkedElements({1LL << 62, 2, 2}));
  EXPECT_FALSE(checkedElements({-1, 4}));
  EXPECT_EQ(countValues(parse("[[1, 2], [3, [4, 5]]]")), 5);
  for (std::vector<int64_t> shape : {std::vector<int64_t>{1000000000, 4}, {INT64_MAX, 4}, {0, 4}}) {
    HostTensor t{"x", DataType::FP32, shape, {}};
    try {
      fillFromJson(t, parse("[1, 2, 3, 4]"));
      FAIL() << shapeText(shape);
    } catch (const TensorError& e) {
      EXPECT_EQ(e.input, "x");
    }
    EXPECT_EQ(t.bytes.capacity(), 0u) << shapeText(shape);
  }
  HostTensor f{"x", DataType::FP32, {2}, {}};
  EXPECT_THROW(fillFromJson(f, parse("[1, 3.5e38]")), TensorError);   // would be +inf
  EXPECT_THROW(fillFromJson(f, parse("[1, -1e39]")), TensorError);
  fillFromJson(f, parse("[1, 3.4e38]"));
  HostTensor h{"h", DataType::FP16, {1}, {}};
  EXPECT_THROW(fillFromJson(h, parse("[70000]")), TensorError);
}

TEST(ModelConfig, ParsesAndNamesTheBadField) {
  auto dir = trainyard::test::freshDir();
  std::ofstream(dir + "/ok.yaml") << "inputs: [{name: img, datatype: FP32, shape: [-1, 1, 28, 28]}]\n"
                                     "max_batch_size: 16\nmax_queue_delay_us: 200\npreferred_batch_sizes: [8, 4]\n"
                                     "instances: 2\nversion_policy: {latest: 2}\nlabels: {stable: 1, canary: 2}\n";
  auto c = loadModelConfig(dir + "/ok.yaml");
  EXPECT_EQ(c.inputs.at(0).shape, (std::vector<int64_t>{-1, 1, 28, 28}));
  EXPECT_EQ(c.preferred_batch_sizes, (std::vector<int>{4, 8}));
  EXPECT_EQ(c.instances, 2);
  EXPECT_EQ(c.labels.at("canary"), 2);
  EXPECT_EQ(selectVersions(c.version_policy, {3, 1, 2}), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(selectVersions({VersionPolicy::Kind::Specific, 1, {1, 3}}, {1, 2, 3}), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(selectVersions({VersionPolicy::Kind::All, 1, {}}, {2, 1}), (std::vector<int64_t>{1, 2}));
  std::ofstream(dir + "/bad.yaml") << "max_batch_size: 16\ninputs:\n  - {name: x, datatype: FP33, shape: [-1, 4]}\n";
  try {
    loadModelConfig(dir + "/bad.yaml");
    FAIL();
  } catch (const trainyard::spec::SpecError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.yaml:3:"), std::string::npos) << m;
    EXPECT_NE(m.find("inputs[0].datatype"), std::string::npos) << m;
  }
  EXPECT_EQ(loadModelConfig(dir + "/missing.yaml").max_batch_size, 32);  // defaults
}

namespace {
// Doubles its input; counts the batch sizes it saw; can be held at a latch.
class Doubler : public Model {
 public:
  explicit Doubler(std::latch* gate = nullptr, std::vector<int>* sizes = nullptr, std::mutex* mu = nullptr)
      : gate_(gate), sizes_(sizes), mu_(mu) {}
  const std::vector<TensorSpec>& inputs() const override { return in_; }
  const std::vector<TensorSpec>& outputs() const override { return out_; }
  std::string platform() const override { return "test"; }
  std::vector<HostTensor> run(const std::vector<HostTensor>& batch) override {
    if (gate_) gate_->wait();
    if (sizes_) {
      std::lock_guard lk(*mu_);
      sizes_->push_back(static_cast<int>(batch[0].shape[0]));
    }
    HostTensor o = batch[0];
    o.name = "y";
    for (int64_t i = 0; i < o.elements(); ++i) o.data<float>()[i] *= 2;
    return {o};
  }

 private:
  std::latch* gate_;
  std::vector<int>* sizes_;
  std::mutex* mu_;
  std::vector<TensorSpec> in_{{"x", DataType::FP32, {-1, 2}}}, out_{{"y", DataType::FP32, {-1, 2}}};
};

std::vector<HostTensor> rows(std::initializer_list<float> v) {
  HostTensor t{"x", DataType::FP32, {static_cast<int64_t>(v.size() / 2), 2}, {}};
  t.bytes.resize(v.size() * 4);
  std::memcpy(t.bytes.data(), std::data(v), v.size() * 4);
  return {t};
}
}  // namespace

TEST(DynamicBatcher, BatchesWaitingRequestsAndSplitsTheirOutputs) {
  std::latch gate(1);
  std::vector<int> sizes;
  std::mutex mu;
  std::vector<std::unique_ptr<Model>> models;
  models.push_back(std::make_unique<Doubler>(&gate, &sizes, &mu));
  DynamicBatcher b(BatchPolicy{8, 0, {}}, 100, std::move(models));
  // The first request occupies the instance (held at the gate); the next
  // three queue up meanwhile and must run as one batch of 4 rows.
  auto f0 = b.submit(rows({1, 1}));
  while (b.queued() != 0) std::this_thread::yield();  // the worker took it
  auto f1 = b.submit(rows({1, 2}));
  auto f2 = b.submit(rows({3, 4, 5, 6}));
  auto f3 = b.submit(rows({7, 8}));
  gate.count_down();
  auto r2 = f2->get();
  EXPECT_TRUE(r2.error.empty()) << r2.error;
  ASSERT_EQ(r2.outputs.at(0).shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r2.outputs[0].data<float>()[0], 6.0f);
  EXPECT_EQ(r2.outputs[0].data<float>()[3], 12.0f);
  EXPECT_EQ(f3->get().outputs[0].data<float>()[1], 16.0f);
  EXPECT_EQ(f1->get().batch_rows, 4);
  f0->get();
  std::lock_guard lk(mu);
  EXPECT_EQ(sizes, (std::vector<int>{1, 4}));
}

TEST(DynamicBatcher, AFullQueueRefusesAtOnce) {
  std::latch gate(1);
  std::vector<std::unique_ptr<Model>> models;
  models.push_back(std::make_unique<Doubler>(&gate));
  auto b = std::make_unique<DynamicBatcher>(BatchPolicy{1, 0, {}}, 2, std::move(models));
  auto running = b->submit(rows({1, 1}));
  while (b->queued() != 0) std::this_thread::yield();
  auto q1 = b->submit(rows({1, 1}));
  auto q2 = b->submit(rows({1, 1}));
  EXPECT_TRUE(q1 && q2);
  EXPECT_FALSE(b->submit(rows({1, 1})));  // capacity 2 reached
  gate.count_down();
  EXPECT_TRUE(q2->get().error.empty());
  b.reset();  // drains: every accepted request was answered
  EXPECT_TRUE(running->get().error.empty());
}

namespace {
class FakeLoader : public ModelLoader {
 public:
  std::unique_ptr<Model> load(const std::string& path, const ModelConfig&) override {
    std::ifstream in(path);
    std::string content((std::istreambuf_iterator<char>(in)), {});
    if (content != "ok") throw std::runtime_error("not a model: " + content);
    loads++;
    return std::make_unique<Doubler>();
  }
  std::atomic<int> loads{0};
};

void writeVersion(const std::string& repo, const std::string& model, int v, const std::string& content) {
  fs::create_directories(fs::path(repo) / model / std::to_string(v));
  std::ofstream(fs::path(repo) / model / std::to_string(v) / "model.pt") << content;
}
}  // namespace

TEST(ModelManager, NewVersionReplacesOldAndABadOneLeavesItServing) {
  auto repo = trainyard::test::freshDir();
  writeVersion(repo, "m", 1, "ok");
  auto loader = std::make_shared<FakeLoader>();
  ModelManager mgr(repo, loader);
  auto changes = mgr.poll();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "model m version 1 is available");
  auto v1 = mgr.find("m", std::nullopt, std::nullopt);
  EXPECT_EQ(v1->version, 1);
  writeVersion(repo, "m", 2, "ok");
  changes = mgr.poll();
  ASSERT_EQ(changes.size(), 2u) << (changes.empty() ? "" : changes[0]);
  EXPECT_EQ(mgr.find("m", std::nullopt, std::nullopt)->version, 2);
  EXPECT_THROW(mgr.find("m", 1, std::nullopt), std::out_of_range);  // latest 1: v1 unloaded
  // A request holding v1 still completes on it (drained, then freed).
  auto f = v1->batcher->submit(rows({1, 2}));
  EXPECT_EQ(f->get().outputs[0].data<float>()[1], 4.0f);
  writeVersion(repo, "m", 3, "garbage");
  mgr.poll();
  EXPECT_EQ(mgr.find("m", std::nullopt, std::nullopt)->version, 2);  // still v2
  auto st = mgr.status("m");
  auto s3 = std::find_if(st.begin(), st.end(), [](const auto& s) { return s.version == 3; });
  ASSERT_NE(s3, st.end());
  EXPECT_EQ(s3->state, "END");
  EXPECT_NE(s3->error.find("not a model"), std::string::npos);
  int loads = loader->loads;
  mgr.poll();  // the bad file is not retried until it changes
  EXPECT_EQ(loader->loads, loads);
  std::ofstream(fs::path(repo) / "m" / "config.yaml") << "labels: {stable: 2}\nversion_policy: {all: true}\n";
  writeVersion(repo, "m", 3, "ok");
  mgr.poll();
  EXPECT_EQ(mgr.find("m", std::nullopt, std::string("stable"))->version, 2);
  EXPECT_EQ(mgr.versions("m"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_THROW(mgr.find("m", std::nullopt, std::string("canary")), std::out_of_range);
  EXPECT_THROW(mgr.find("other", std::nullopt, std::nullopt), std::out_of_range);
}
