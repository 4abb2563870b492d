// The state-change stream: the watcher diffs job and experiment states (no
// spec parsed) every 300 ms and publishes changes; /api/v1/stream sends each
// SSE client the events about what it may read, resuming at Last-Event-ID.
#include "api/route_context.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/server.h"

namespace trainyard::api {
namespace {

// Recent state changes for /api/v1/stream: the loop writes the store, a
// watcher thread turns differences into numbered events.
class ChangeFeed {
 public:
  void publish(json ev) {
    std::lock_guard lk(mu_);
    ev["seq"] = ++seq_;
    log_.push_back(std::move(ev));
    if (log_.size() > 1000) log_.erase(log_.begin(), log_.begin() + 500);
    cv_.notify_all();
  }
  // Events after `after`, waiting up to `timeout` for one.
  std::vector<json> since(uint64_t after, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] { return seq_ > after || closed_; });
    std::vector<json> out;
    for (const auto& e : log_)
      if (e["seq"].get<uint64_t>() > after) out.push_back(e);
    return out;
  }
  uint64_t seq() {
    std::lock_guard lk(mu_);
    return seq_;
  }
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;
  std::vector<json> log_;
  bool closed_ = false;
};

class Watcher final : public ChangeStream, RouteContext {
 public:
  explicit Watcher(const RouteContext& c) : RouteContext(c) { mount(); }
  ~Watcher() override { stop(); }
  void start() override { watcher = std::thread([this] { watch(); }); }
  void stop() override {
    feed.close();
    {
      std::lock_guard lk(watch_mu);
      done = true;
    }
    watch_cv.notify_all();
    if (watcher.joinable()) watcher.join();
  }

 private:
  void mount() {
    route("GET", "/api/v1/stream", "/api/v1/stream", [this](const auto& req, auto& res, const User& u) {
      uint64_t start = feed.seq();
      if (req.has_header("Last-Event-ID")) start = std::strtoull(req.get_header_value("Last-Event-ID").c_str(), nullptr, 10);
      auto after = std::make_shared<uint64_t>(start);
      User who = u;
      res.set_header("Cache-Control", "no-cache");
      res.status = 200;
      res.set_chunked_content_provider("text/event-stream", [this, after, who](http::StreamSink& sink) {
        while (!stopping && sink.is_writable()) {
          auto evs = feed.since(*after, std::chrono::seconds(10));
          if (stopping) break;
          if (evs.empty()) {
            if (!sink.write(": keep-alive\n\n", 14)) return false;
            continue;
          }
          std::string out;
          for (auto& e : evs) {
            *after = e["seq"].get<uint64_t>();
            if (!who.admin && e.value("user", "") != who.name && !e.value("shared", false)) continue;
            out += fmt::format("event: {}\nid: {}\ndata: {}\n\n", e["kind"].get<std::string>(), *after, e.dump());
          }
          if (out.empty()) continue;
          return sink.write(out.data(), out.size());
        }
        return false;
      });
    });
  }

  // Turns store differences into change events for /api/v1/stream. Reads
  // states only (Store::jobStates): no spec is parsed on a pass.
  void watch() {
    std::map<std::string, std::string> jobs, exps;  // active ones: their state as last reported
    std::set<std::string> final_reported;           // finished jobs already reported (or finished before start)
    std::map<int64_t, bool> exp_shared;              // labels never change: read once per experiment
    bool first = true;
    auto& st = threadStore(opts.store);
    auto publishJob = [&](const store::StateRow& j) {
      feed.publish({{"kind", "job"}, {"name", j.name}, {"phase", j.phase}, {"reason", j.reason}, {"restarts", j.restarts},
                    {"user", j.user}, {"shared", j.shared}});
    };
    while (!stopping) {
      try {
        // The active jobs, and the newest ones: one may start and end between two polls.
        auto seen = st.jobStates(100);
        std::map<std::string, std::string> now;
        for (const auto& j : seen) {
          if (store::isTerminal(j.phase)) {
            if (final_reported.insert(j.name).second && !first) publishJob(j);
            continue;
          }
          std::string sig = j.phase + "/" + std::to_string(j.restarts);
          now[j.name] = sig;
          if (jobs[j.name] != sig) publishJob(j);
        }
        for (const auto& [name, sig] : jobs)  // ended, and older than the newest 100
          if (!now.count(name) && !final_reported.count(name))
            if (auto j = st.getJob(name); j && store::isTerminal(j->phase)) {
              final_reported.insert(name);
              publishJob({j->id, j->name, j->phase, j->reason, j->user, j->restarts, shared(j->spec.labels)});
            }
        jobs = std::move(now);
        first = false;
        // Experiments: the active ones each pass, and once more when one ends.
        auto publishExperiment = [&](const store::StateRow& e) {
          int64_t total = 0, done = 0;
          for (const auto& [state, n] : st.trialCounts(e.id)) {
            total += n;
            if (state != store::kTrialRunning) done += n;
          }
          std::string sig = fmt::format("{}/{}/{}", e.phase, total, done);
          if (exps[e.name] != sig) {
            auto it = exp_shared.find(e.id);
            if (it == exp_shared.end()) {
              auto rec = st.getExperimentById(e.id);
              it = exp_shared.emplace(e.id, rec && shared(rec->spec.labels)).first;
            }
            feed.publish({{"kind", "experiment"}, {"name", e.name}, {"phase", e.phase}, {"trials", total}, {"finished", done},
                          {"user", e.user}, {"shared", it->second}});
          }
          exps[e.name] = sig;
        };
        std::set<std::string> active;
        for (const auto& e : st.activeExperimentStates()) {
          active.insert(e.name);
          publishExperiment(e);
        }
        for (auto it = exps.begin(); it != exps.end();) {
          if (active.count(it->first)) {
            ++it;
            continue;
          }
          if (auto e = st.getExperiment(it->first)) publishExperiment({e->id, e->name, e->phase, e->reason, e->user, 0, false});
          it = exps.erase(it);
        }
      } catch (const std::exception& e) {
        spdlog::warn("change watcher: {}", e.what());
      }
      std::unique_lock lk(watch_mu);
      watch_cv.wait_for(lk, std::chrono::milliseconds(300), [&] { return done || stopping.load(); });
    }
  }

  ChangeFeed feed;
  std::thread watcher;
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool done = false;
};

}  // namespace

std::unique_ptr<ChangeStream> mountChangeStream(const RouteContext& c) { return std::make_unique<Watcher>(c); }

}  // namespace trainyard::api
