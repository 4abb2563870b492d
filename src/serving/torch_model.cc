// The TorchScript runtime, built as a plugin (libtrainyard_torch.so) so that
// only `trainyard serve` pays for loading libtorch. Entry point:
// trainyard_torch_loader(), a ModelLoader.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <mutex>

#include <fmt/format.h>

#include "serving/model.h"

namespace trainyard::serving {
namespace {

c10::ScalarType scalarType(DataType t) {
  switch (t) {
    case DataType::BOOL: return torch::kBool;
    case DataType::UINT8: return torch::kUInt8;
    case DataType::INT8: return torch::kInt8;
    case DataType::INT16: return torch::kInt16;
    case DataType::INT32: return torch::kInt32;
    case DataType::INT64: return torch::kInt64;
    case DataType::FP16: return torch::kHalf;
    case DataType::FP32: return torch::kFloat;
    case DataType::FP64: return torch::kDouble;
    default: throw std::runtime_error(fmt::format("datatype {} is not supported by libtorch", name(t)));
  }
}

std::optional<DataType> fromScalar(c10::ScalarType s) {
  switch (s) {
    case torch::kBool: return DataType::BOOL;
    case torch::kUInt8: return DataType::UINT8;
    case torch::kInt8: return DataType::INT8;
    case torch::kInt16: return DataType::INT16;
    case torch::kInt32: return DataType::INT32;
    case torch::kInt64: return DataType::INT64;
    case torch::kHalf: return DataType::FP16;
    case torch::kFloat: return DataType::FP32;
    case torch::kDouble: return DataType::FP64;
    default: return std::nullopt;
  }
}

class TorchModel final : public Model {
 public:
  TorchModel(const std::string& path, const ModelConfig& config) : inputs_(config.inputs), outputs_(config.outputs) {
    try {
      module_ = torch::jit::load(path, torch::kCPU);
    } catch (const c10::Error& e) {
      throw std::runtime_error(fmt::format("cannot load TorchScript {}: {}", path, e.what_without_backtrace()));
    }
    module_.eval();
    if (inputs_.empty()) guessSignature();
    warmUp();
  }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  std::string platform() const override { return "pytorch_torchscript"; }

  std::vector<HostTensor> run(const std::vector<HostTensor>& batch) override {
    c10::InferenceMode guard;
    std::vector<torch::jit::IValue> args;
    for (const auto& t : batch)
      args.emplace_back(torch::from_blob(const_cast<uint8_t*>(t.bytes.data()), t.shape,
                                         torch::TensorOptions().dtype(scalarType(t.dtype))));
    torch::jit::IValue result;
    try {
      result = module_.forward(args);
    } catch (const c10::Error& e) {
      throw std::runtime_error(e.what_without_backtrace());
    }
    std::vector<torch::Tensor> outs;
    if (result.isTensor()) outs.push_back(result.toTensor());
    else if (result.isTuple())
      for (const auto& v : result.toTuple()->elements()) outs.push_back(v.toTensor());
    else if (result.isTensorList())
      for (const auto& v : result.toTensorList()) outs.push_back(v);
    else throw std::runtime_error("the model returned something other than tensors");
    std::vector<HostTensor> host;
    for (size_t i = 0; i < outs.size(); ++i) {
      auto t = outs[i].contiguous();
      HostTensor h;
      h.name = i < outputs_.size() ? outputs_[i].name : fmt::format("output{}", i);
      auto dt = fromScalar(t.scalar_type());
      if (!dt) throw std::runtime_error(fmt::format("output {} has an unsupported dtype", i));
      h.dtype = *dt;
      h.shape.assign(t.sizes().begin(), t.sizes().end());
      auto* p = static_cast<const uint8_t*>(t.data_ptr());
      h.bytes.assign(p, p + t.numel() * t.element_size());
      host.push_back(std::move(h));
    }
    return host;
  }

 private:
  // No config: a first Linear layer's weight [out, in] says [-1, in] FP32.
  void guessSignature() {
    for (const auto& p : module_.named_parameters(true)) {
      auto w = p.value;
      if (w.dim() == 2) {
        inputs_.push_back({"input", DataType::FP32, {-1, w.size(1)}});
        return;
      }
      break;
    }
    throw std::runtime_error(
        "cannot tell the model's input signature (its first parameter is not a Linear weight): declare inputs in "
        "config.yaml, e.g. inputs: [{name: input, datatype: FP32, shape: [-1, 784]}]");
  }
  // One forward of a batch of one before the version takes traffic; it also
  // fills in the output signature when config.yaml does not give it.
  void warmUp() {
    std::vector<HostTensor> in;
    for (const auto& s : inputs_) {
      HostTensor t;
      t.name = s.name;
      t.dtype = s.dtype;
      t.shape = s.shape;
      for (auto& d : t.shape)
        if (d < 0) d = 1;
      t.bytes.assign(static_cast<size_t>(t.elements()) * byteSize(t.dtype), 0);
      in.push_back(std::move(t));
    }
    std::vector<HostTensor> out;
    try {
      out = run(in);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format("warm-up with the declared inputs failed: {}", e.what()));
    }
    if (outputs_.empty())
      for (const auto& o : out) {
        std::vector<int64_t> shape = o.shape;
        if (!shape.empty()) shape[0] = -1;
        outputs_.push_back({o.name, o.dtype, shape});
      }
  }

  torch::jit::script::Module module_;
  std::vector<TensorSpec> inputs_, outputs_;
};

class TorchLoader final : public ModelLoader {
 public:
  std::unique_ptr<Model> load(const std::string& path, const ModelConfig& config) override {
    // Threads per instance: libtorch's intra-op pool is per process, sized
    // once by the first model loaded (later changes are refused by libtorch
    // once it has run), then only raised.
    static std::once_flag first;
    std::call_once(first, [&] { at::set_num_threads(config.intra_op_threads); });
    if (config.intra_op_threads > at::get_num_threads()) at::set_num_threads(config.intra_op_threads);
    return std::make_unique<TorchModel>(path, config);
  }
};

}  // namespace
}  // namespace trainyard::serving

extern "C" __attribute__((visibility("default"))) trainyard::serving::ModelLoader* trainyard_torch_loader() {
  return new trainyard::serving::TorchLoader();
}
