#include "serving/batcher.h"

#include <cstring>

#include <fmt/format.h>

namespace trainyard::serving {

DynamicBatcher::DynamicBatcher(BatchPolicy policy, int capacity, std::vector<std::unique_ptr<Model>> instances)
    : policy_(std::move(policy)), capacity_(static_cast<size_t>(std::max(1, capacity))), models_(std::move(instances)) {
  for (auto& m : models_) workers_.emplace_back([this, mp = m.get()] { work(*mp); });
}

DynamicBatcher::~DynamicBatcher() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

size_t DynamicBatcher::queued() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

std::optional<std::future<InferResult>> DynamicBatcher::submit(std::vector<HostTensor> inputs) {
  Pending p;
  p.rows = inputs.empty() || inputs[0].shape.empty() ? 1 : static_cast<int>(inputs[0].shape[0]);
  p.inputs = std::move(inputs);
  p.arrived = Clock::now();
  auto fut = p.done.get_future();
  {
    std::lock_guard lk(mu_);
    if (queue_.size() >= capacity_ || stopping_) return std::nullopt;
    queue_.push_back(std::move(p));
  }
  cv_.notify_one();
  return fut;
}

void DynamicBatcher::work(Model& model) {
  std::vector<int> rows;
  for (;;) {
    std::vector<Pending> batch;
    bool more = false;
    {
      std::unique_lock lk(mu_);
      for (;;) {
        if (queue_.empty()) {
          if (stopping_) return;
          cv_.wait(lk);
          continue;
        }
        rows.clear();
        for (const auto& q : queue_) rows.push_back(q.rows);
        auto waited = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - queue_.front().arrived).count();
        auto d = decideBatch(policy_, rows, stopping_ ? policy_.max_queue_delay_us : waited);
        if (d.take > 0) {
          for (int i = 0; i < d.take; ++i) {
            batch.push_back(std::move(queue_.front()));
            queue_.pop_front();
          }
          more = !queue_.empty();
          break;
        }
        cv_.wait_for(lk, std::chrono::microseconds(d.wait_us));
      }
    }
    if (more) cv_.notify_one();  // another instance may take the rest
    runBatch(model, batch);
  }
}

void DynamicBatcher::runBatch(Model& model, std::vector<Pending>& batch) {
  auto start = Clock::now();
  int total = 0;
  for (const auto& p : batch) total += p.rows;
  std::vector<HostTensor> merged;
  std::string error;
  std::vector<HostTensor> out;
  try {
    if (batch.size() == 1) {
      out = model.run(batch[0].inputs);
    } else {
      // Concatenate every input along the batch dimension.
      merged = batch[0].inputs;
      for (auto& t : merged) t.shape[0] = total;
      for (size_t i = 0; i < merged.size(); ++i) {
        merged[i].bytes.clear();
        for (const auto& p : batch) {
          const auto& b = p.inputs[i].bytes;
          merged[i].bytes.insert(merged[i].bytes.end(), b.begin(), b.end());
        }
      }
      out = model.run(merged);
    }
    for (const auto& o : out)
      if (o.shape.empty() || o.shape[0] != total)
        throw std::runtime_error(fmt::format("output \"{}\" has shape {}, not a batch of {}", o.name, shapeText(o.shape), total));
  } catch (const std::exception& e) {
    error = e.what();
  }
  auto end = Clock::now();
  int64_t compute = std::chrono::duration_cast<std::chrono::microseconds>(end - start).count();
  if (on_batch) on_batch(total, compute);
  int64_t row = 0;
  for (auto& p : batch) {
    InferResult r;
    r.queue_us = std::chrono::duration_cast<std::chrono::microseconds>(start - p.arrived).count();
    r.compute_us = compute;
    r.batch_rows = total;
    r.error = error;
    if (error.empty()) {
      if (batch.size() == 1) {
        r.outputs = std::move(out);
      } else {
        for (const auto& o : out) {
          HostTensor part = o;
          part.shape[0] = p.rows;
          size_t row_bytes = o.bytes.size() / static_cast<size_t>(total);
          part.bytes.assign(o.bytes.begin() + row * row_bytes, o.bytes.begin() + (row + p.rows) * row_bytes);
          r.outputs.push_back(std::move(part));
        }
      }
    }
    row += p.rows;
    p.done.set_value(std::move(r));
  }
}

}  // namespace trainyard::serving
