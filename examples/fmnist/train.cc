// Fashion-MNIST MLP in C++ with libtorch, written to run as a Trainyard
// TrainJob (see cpp-job.yaml). Same metrics as train.py (Katib format on
// stdout) and the same TorchScript output, $TRAINYARD_OUTPUT_DIR/model.pt,
// so the model server can load either.
#include <torch/script.h>
#include <torch/torch.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// IDX file (gzip): big-endian magic, dims, then uint8 data.
std::vector<uint8_t> readIdx(const std::string& path, std::vector<int64_t>& dims) {
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

std::pair<torch::Tensor, torch::Tensor> load(const std::string& dir, const std::string& prefix, int64_t limit) {
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

double evaluate(Mlp& model, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard guard;
  model->eval();
  auto correct = model->forward(x).argmax(1).eq(y).sum().item<int64_t>();
  model->train();
  return static_cast<double>(correct) / static_cast<double>(x.size(0));
}

// The C++ frontend has no TorchScript export, so the trained weights go into
// a scripted module whose forward is the same network.
void saveTorchScript(Mlp& model, const std::string& path) {
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

}  // namespace

int main(int argc, char** argv) {
  int epochs = 5, batch = 128, hidden = 256, log_every = 100;
  int64_t train_limit = 0, test_limit = 0;
  double lr = 1e-3, dropout = 0.1;
  const char* out_env = std::getenv("TRAINYARD_OUTPUT_DIR");
  const char* data_env = std::getenv("FMNIST_DIR");
  std::string out_dir = out_env ? out_env : ".";
  std::string data_dir = data_env ? data_env : "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--epochs") epochs = std::stoi(v);
    else if (k == "--lr") lr = std::stod(v);
    else if (k == "--batch-size") batch = std::stoi(v);
    else if (k == "--hidden") hidden = std::stoi(v);
    else if (k == "--dropout") dropout = std::stod(v);
    else if (k == "--train-limit") train_limit = std::stoll(v);
    else if (k == "--test-limit") test_limit = std::stoll(v);
    else if (k == "--log-every") log_every = std::stoi(v);
    else if (k == "--output-dir") out_dir = v;
    else if (k == "--data-dir") data_dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  torch::manual_seed(0);
  auto [xtr, ytr] = load(data_dir, "train", train_limit);
  auto [xte, yte] = load(data_dir, "t10k", test_limit);
  std::printf("data: %ld train, %ld test images; torch threads: %d\n", static_cast<long>(xtr.size(0)),
              static_cast<long>(xte.size(0)), torch::get_num_threads());
  std::fflush(stdout);

  Mlp model(hidden, dropout);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(lr));
  int64_t n = xtr.size(0);
  int64_t steps_per_epoch = (n + batch - 1) / batch;
  int64_t total = steps_per_epoch * epochs, step = 0;
  auto start = std::chrono::steady_clock::now();
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    auto perm = torch::randperm(n, torch::kInt64);
    double running = 0;
    for (int64_t i = 0; i < n; i += batch) {
      auto idx = perm.slice(0, i, std::min(n, i + batch));
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(xtr.index_select(0, idx)), ytr.index_select(0, idx));
      loss.backward();
      opt.step();
      double l = loss.item<double>();
      running += l;
      if (++step % log_every == 0) {
        std::printf("step=%ld steps=%ld loss=%.4f\n", static_cast<long>(step), static_cast<long>(total), l);
        std::fflush(stdout);
      }
    }
    std::printf("epoch=%d epochs=%d train_loss=%.4f test_accuracy=%.4f\n", epoch, epochs,
                running / static_cast<double>(steps_per_epoch), evaluate(model, xte, yte));
    std::fflush(stdout);
  }
  std::filesystem::create_directories(out_dir);
  std::string path = out_dir + "/model.pt";
  saveTorchScript(model, path);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("saved TorchScript model to %s after %.1fs\n", path.c_str(), secs);
  return 0;
}
