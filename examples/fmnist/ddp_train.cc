// Data-parallel Fashion-MNIST training in C++ with libtorch's c10d process
// group (gloo), for the same environment as ddp.py: MASTER_ADDR,
// MASTER_PORT, WORLD_SIZE and RANK, as Kubeflow's PyTorchJob (and Trainyard)
// set them. Gradients are averaged with one allreduce per step over a
// flattened buffer; every rank prints a checksum of its final parameters.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "fmnist.h"

using namespace fmnist;

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) throw std::runtime_error(std::string(name) + " is not set: run this under a PyTorchJob/TrainJob with framework pytorch");
  return v;
}
}  // namespace

int main(int argc, char** argv) {
  int epochs = 5, batch = 128, hidden = 256, log_every = 50;
  double lr = 2e-3;
  int64_t train_limit = 0;
  std::string data_dir = std::getenv("FMNIST_DIR") ? std::getenv("FMNIST_DIR") : "/usr/share/datasets/fashion-mnist";
  std::string out_dir = std::getenv("TRAINYARD_OUTPUT_DIR") ? std::getenv("TRAINYARD_OUTPUT_DIR") : ".";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--epochs") epochs = std::stoi(v);
    else if (k == "--lr") lr = std::stod(v);
    else if (k == "--batch-size") batch = std::stoi(v);
    else if (k == "--train-limit") train_limit = std::stoll(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  const int rank = std::stoi(env("RANK")), world = std::stoi(env("WORLD_SIZE"));
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(std::stoi(env("MASTER_PORT")));
  so.isServer = rank == 0;
  so.numWorkers = world;
  auto store = c10::make_intrusive<c10d::TCPStore>(env("MASTER_ADDR"), so);
  auto opts = c10d::ProcessGroupGloo::Options::create();
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  c10d::ProcessGroupGloo pg(store, rank, world, opts);

  torch::manual_seed(0);
  auto [x_all, y_all] = load(data_dir, "train", train_limit);
  auto shard = torch::arange(rank, x_all.size(0), world, torch::kInt64);
  auto xtr = x_all.index_select(0, shard), ytr = y_all.index_select(0, shard);
  auto [xte, yte] = load(data_dir, "t10k", 0);
  std::printf("rank %d/%d: %ld train images\n", rank, world, static_cast<long>(xtr.size(0)));
  std::fflush(stdout);

  Mlp model(hidden, 0.1);
  // Identical starting point on every rank, whatever the seeds did.
  {
    std::vector<at::Tensor> params;
    for (auto& p : model->parameters()) params.push_back(p.data());
    for (auto& p : params) {
      std::vector<at::Tensor> one{p};
      pg.broadcast(one)->wait();
    }
  }
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(lr));
  const int64_t steps_per_epoch = x_all.size(0) / world / batch;  // equal on all ranks
  int64_t step = 0;
  auto gen_seed = 1000 + rank;
  torch::manual_seed(gen_seed);
  auto start = std::chrono::steady_clock::now();
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    auto perm = torch::randperm(xtr.size(0), torch::kInt64);
    double running = 0;
    for (int64_t i = 0; i < steps_per_epoch; ++i) {
      auto idx = perm.slice(0, i * batch, (i + 1) * batch);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(xtr.index_select(0, idx)), ytr.index_select(0, idx));
      loss.backward();
      std::vector<at::Tensor> grads;
      for (auto& p : model->parameters()) grads.push_back(p.grad().view(-1));
      std::vector<at::Tensor> flat{torch::cat(grads)};
      pg.allreduce(flat)->wait();
      flat[0].div_(world);
      int64_t off = 0;
      for (auto& p : model->parameters()) {
        int64_t n = p.grad().numel();
        p.grad().copy_(flat[0].slice(0, off, off + n).view_as(p.grad()));
        off += n;
      }
      opt.step();
      running += loss.item<double>();
      if (++step % log_every == 0 && rank == 0) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("step=%ld steps=%ld loss=%.4f step_time=%.5f\n", static_cast<long>(step),
                    static_cast<long>(steps_per_epoch * epochs), loss.item<double>(), secs / static_cast<double>(step));
        std::fflush(stdout);
      }
    }
    if (rank == 0) {
      std::printf("epoch=%d epochs=%d train_loss=%.4f test_accuracy=%.4f\n", epoch, epochs,
                  running / static_cast<double>(steps_per_epoch), evaluate(model, xte, yte));
      std::fflush(stdout);
    }
  }
  double checksum = 0;
  for (auto& p : model->parameters()) checksum += p.detach().to(torch::kFloat64).sum().item<double>();
  std::printf("rank %d parameter checksum %.10f\n", rank, checksum);
  std::fflush(stdout);
  if (rank == 0) {
    std::filesystem::create_directories(out_dir);
    saveTorchScript(model, out_dir + "/model.pt");
  }
  std::vector<at::Tensor> token{torch::zeros({1})};
  pg.allreduce(token)->wait();  // nobody leaves while another rank still needs the group
  return 0;
}
