// Load client and in-process baseline for bench/serving.py.
//   serving_load http HOST PORT PATH BODY_FILE CONNECTIONS SECONDS
//     keep-alive connections each sending BODY in a loop; prints JSON with
//     requests/s, latency p50/p99 (us) and, from the server's
//     X-Inference-Timing header, overhead (parse+queue+serialize) p50/p99
//     and the mean batch formed.
//   serving_load inprocess MODEL.pt FEATURES... --batch B --seconds S
//     libtorch forward of the same model in this process (1 thread).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "http/client.h"

#ifdef WITH_TORCH
#include <ATen/Parallel.h>
#include <torch/script.h>
#endif

using Clock = std::chrono::steady_clock;

static double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

static int http(int argc, char** argv) {
  std::string host = argv[2], path = argv[4];
  int port = std::stoi(argv[3]), conns = std::stoi(argv[6]);
  double seconds = std::stod(argv[7]);
  std::ifstream in(argv[5]);
  std::string body((std::istreambuf_iterator<char>(in)), {});
  std::mutex mu;
  std::vector<double> lat, overhead;
  double batch_sum = 0;
  long batches = 0, failures = 0;
  std::atomic<bool> go{false};
  auto end = Clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  std::vector<std::thread> ts;
  for (int c = 0; c < conns; ++c)
    ts.emplace_back([&] {
      trainyard::http::Client cl(host + ":" + std::to_string(port));
      cl.set_timeouts(std::chrono::seconds(5), std::chrono::seconds(30));
      std::vector<double> l, o;
      double bs = 0;
      long nb = 0, fails = 0;
      while (!go) std::this_thread::yield();
      while (Clock::now() < end) {
        auto t0 = Clock::now();
        trainyard::http::ClientResponse r;
        std::string error;
        try {
          r = cl.request("POST", path, body, "application/json");
          if (r.status != 200) error = std::to_string(r.status) + " " + r.body;
        } catch (const std::exception& e) {
          error = e.what();
        }
        double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        if (!error.empty()) {
          if (++fails == 1) std::fprintf(stderr, "first failure: %s\n", error.c_str());
          continue;
        }
        l.push_back(us);
        auto it = r.headers.find("X-Inference-Timing");
        std::string t = it == r.headers.end() ? "" : it->second;
        if (!t.empty()) {
          double parse = 0, queue = 0, ser = 0, batch = 0;
          std::sscanf(t.c_str(), "parse_us=%lf;queue_us=%lf;compute_us=%*f;serialize_us=%lf;batch=%lf", &parse, &queue, &ser, &batch);
          o.push_back(parse + queue + ser);
          bs += batch;
          ++nb;
        }
      }
      std::lock_guard lk(mu);
      lat.insert(lat.end(), l.begin(), l.end());
      overhead.insert(overhead.end(), o.begin(), o.end());
      batch_sum += bs;
      batches += nb;
      failures += fails;
    });
  auto t0 = Clock::now();
  go = true;
  for (auto& t : ts) t.join();
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("{\"requests\": %zu, \"failures\": %ld, \"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
              "\"overhead_p50_us\": %.1f, \"overhead_p99_us\": %.1f, \"mean_batch\": %.2f}\n",
              lat.size(), failures, lat.size() / took, pct(lat, 0.5), pct(lat, 0.99), pct(overhead, 0.5), pct(overhead, 0.99),
              batches ? batch_sum / batches : 0.0);
  return 0;
}

static int inprocess(int argc, char** argv) {
#ifdef WITH_TORCH
  std::string model = argv[2];
  std::vector<int64_t> features;
  int batch = 1;
  double seconds = 3;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--batch") batch = std::stoi(argv[++i]);
    else if (a == "--seconds") seconds = std::stod(argv[++i]);
    else features.push_back(std::stoll(a));
  }
  at::set_num_threads(1);
  auto m = torch::jit::load(model);
  m.eval();
  std::vector<int64_t> shape{batch};
  shape.insert(shape.end(), features.begin(), features.end());
  auto x = torch::randn(shape);
  c10::InferenceMode guard;
  for (int i = 0; i < 20; ++i) m.forward({x});
  std::vector<double> lat;
  auto end = Clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  while (Clock::now() < end) {
    auto t0 = Clock::now();
    m.forward({x});
    lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  double mean = 0;
  for (double l : lat) mean += l;
  mean /= lat.size();
  std::printf("{\"batch\": %d, \"forward_p50_us\": %.1f, \"forward_p99_us\": %.1f, \"images_per_s\": %.1f}\n", batch,
              pct(lat, 0.5), pct(lat, 0.99), batch * 1e6 / mean);
  return 0;
#else
  std::fprintf(stderr, "built without libtorch\n");
  return 1;
#endif
}

int main(int argc, char** argv) {
  if (argc >= 8 && std::string(argv[1]) == "http") return http(argc, argv);
  if (argc >= 3 && std::string(argv[1]) == "inprocess") return inprocess(argc, argv);
  std::fprintf(stderr, "usage: serving_load http HOST PORT PATH BODY CONNECTIONS SECONDS | inprocess MODEL DIMS... [--batch B]\n");
  return 2;
}
