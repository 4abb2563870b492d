// Dynamic batching for one model version: requests wait in a bounded queue;
// `instances` worker threads each take batches decided by decideBatch()
// (batch_policy.h) and run them on their own Model. A full queue refuses a
// request at once (the caller answers 429) instead of letting it grow.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "serving/batch_policy.h"
#include "serving/model.h"

namespace trainyard::serving {

struct InferResult {
  std::vector<HostTensor> outputs;
  std::string error;      // set when the batch failed
  int64_t queue_us = 0;   // waiting for a batch
  int64_t compute_us = 0; // the batch's run()
  int batch_rows = 0;     // rows in the batch it ran in
};

class DynamicBatcher {
 public:
  DynamicBatcher(BatchPolicy policy, int capacity, std::vector<std::unique_ptr<Model>> instances);
  ~DynamicBatcher();  // finishes what is queued, then stops the workers

  // Queues one request (inputs with the batch dimension first). Nothing
  // when the queue is full.
  std::optional<std::future<InferResult>> submit(std::vector<HostTensor> inputs);
  size_t queued() const;
  // Called after each batch (rows, compute time): metrics.
  std::function<void(int rows, int64_t compute_us)> on_batch;

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    std::vector<HostTensor> inputs;
    int rows;
    Clock::time_point arrived;
    std::promise<InferResult> done;
  };
  void work(Model& model);
  void runBatch(Model& model, std::vector<Pending>& batch);

  BatchPolicy policy_;
  size_t capacity_;
  std::vector<std::unique_ptr<Model>> models_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace trainyard::serving
