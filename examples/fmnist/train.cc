// Fashion-MNIST MLP in C++ with libtorch, written to run as a Trainyard
// TrainJob (see cpp-job.yaml). Same metrics as train.py (Katib format on
// stdout) and the same TorchScript output, $TRAINYARD_OUTPUT_DIR/model.pt,
// so the model server can load either.
#include "fmnist.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>


using namespace fmnist;

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
