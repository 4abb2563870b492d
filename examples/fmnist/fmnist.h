// Shared by the C++ Fashion-MNIST trainers (train.cc, ddp_train.cc): IDX
// loading, the MLP, evaluation and TorchScript export.
#pragma once
#include <torch/script.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace fmnist {

// IDX file (gzip): big-endian magic, dims, then uint8 data.
inline std::vector<uint8_t> readIdx(const std::string& path, std::vector<int64_t>& dims) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.insert(data.end(), buf, buf + n);
  gzclose(f);
  auto be32 = [&](size_t off) {
    return (int64_t{data[off]} << 24) | (int64_t{data[off + 1]} << 16) | (int64_t{data[off + 2]} << 8) | data[off + 3];
  };
  if (data.size() < 4) throw std::runtime_error("truncated IDX file " + path);
  int ndim = data[3];
  dims.clear();
  for (int i = 0; i < ndim; ++i) dims.push_back(be32(4 + 4 * i));
  data.erase(data.begin(), data.begin() + 4 + 4 * ndim);
  return data;
}

inline std::pair<torch::Tensor, torch::Tensor> load(const std::string& dir, const std::string& prefix, int64_t limit) {
  std::vector<int64_t> idims, ldims;
  auto images = readIdx(dir + "/" + prefix + "-images-idx3-ubyte.gz", idims);
  auto labels = readIdx(dir + "/" + prefix + "-labels-idx1-ubyte.gz", ldims);
  int64_t n = idims[0];
  if (limit > 0 && limit < n) n = limit;
  auto x = torch::from_blob(images.data(), {idims[0], 784}, torch::kUInt8).slice(0, 0, n).to(torch::kFloat32);
  x = (x / 255.0 - 0.2860) / 0.3530;
  auto y = torch::from_blob(labels.data(), {ldims[0]}, torch::kUInt8).slice(0, 0, n).to(torch::kInt64);
  return {x.clone(), y.clone()};
}

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t hidden, double dropout)
      : fc1(register_module("fc1", torch::nn::Linear(784, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, hidden / 2))),
        fc3(register_module("fc3", torch::nn::Linear(hidden / 2, 10))),
        drop(register_module("drop", torch::nn::Dropout(dropout))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = drop(torch::relu(fc1(x)));
    return fc3(torch::relu(fc2(x)));
  }
  torch::nn::Linear fc1, fc2, fc3;
  torch::nn::Dropout drop;
};
TORCH_MODULE(Mlp);

inline double evaluate(Mlp& model, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard guard;
  model->eval();
  auto correct = model->forward(x).argmax(1).eq(y).sum().item<int64_t>();
  model->train();
  return static_cast<double>(correct) / static_cast<double>(x.size(0));
}

// The C++ frontend has no TorchScript export, so the trained weights go into
// a scripted module whose forward is the same network.
inline void saveTorchScript(Mlp& model, const std::string& path) {
  torch::jit::Module m("FashionMnistMlp");
  for (const auto& p : model->named_parameters()) {
    std::string name = p.key();
    std::replace(name.begin(), name.end(), '.', '_');
    m.register_parameter(name, p.value().detach().clone(), false);
  }
  m.define(R"(
def forward(self, x):
    x = torch.relu(torch.addmm(self.fc1_bias, x, self.fc1_weight.t()))
    x = torch.relu(torch.addmm(self.fc2_bias, x, self.fc2_weight.t()))
    return torch.addmm(self.fc3_bias, x, self.fc3_weight.t())
)");
  m.eval();
  m.save(path);
}

}  // namespace fmnist
