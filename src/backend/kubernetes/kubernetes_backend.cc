#include "backend/kubernetes/kubernetes_backend.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "backend/byte_cursor.h"
#include "backend/kubernetes/pods.h"
#include "k8s/api_client.h"
#include "k8s/nodes.h"
#include "spec/quantity.h"
#include "util/format.h"

namespace trainyard::backend {
namespace {
using json = nlohmann::json;
using trainyard::k8s::ApiClient;
using trainyard::k8s::ApiError;


// Whether trying again later may work: the API server unreachable,
// throttling or failing; not a request it refused.
bool transient(const ApiError& e) { return e.status == 0 || e.status == 429 || e.status >= 500; }

// What the loop and the watch thread share; outlives the backend while the
// watch thread finishes its last request.
struct Shared {
  std::unique_ptr<ApiClient> api;
  std::string ns;
  std::mutex mu;
  std::condition_variable changed;
  uint64_t generation = 0;  // bumped on every pod event
  std::atomic<bool> stopping{false};
  // uid -> job name, attempt: for readLogAt from any thread
  std::map<std::string, std::pair<std::string, int>> names;
  // "uid/attempt/replica" -> (pod, container), found once: logs are read every pass
  std::map<std::string, std::pair<std::string, std::string>> log_pods;
  // "uid/attempt/replica" -> the thread copying that pod's log to a file
  // as it is written (pods/log with follow=true)
  std::map<std::string, std::shared_ptr<struct LogFollower>> followers;
};

// Copies one container's log into <log_root>/<uid>/<replica>.<attempt>.log
// as the container writes it: one pods/log request with follow=true for
// the container's life, so each byte crosses the API server once and the
// log outlives its pod. The pods/log API has no byte offsets: after a
// broken stream (the API server restarted, a node away for a moment) it
// follows again from the start and skips what the file has. Done once the
// container has ended and a stream has run to its end, or the pod is gone.
struct LogFollower {
  std::mutex mu;
  bool stop = false;              // release() took over the file: write nothing more
  std::atomic<bool> done{false};  // the file has the whole log

  static constexpr int kIdleSeconds = 600;  // a silent stream is re-opened after this

  static void run(std::shared_ptr<Shared> s, std::shared_ptr<LogFollower> f, std::string pod_path,
                  std::string container, std::filesystem::path file) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    uint64_t written = std::filesystem::exists(file, ec) ? std::filesystem::file_size(file, ec) : 0;
    std::ofstream out(file, std::ios::binary | std::ios::app);
    const std::string target = fmt::format("{}/log?container={}&follow=true", pod_path, util::percentEncode(container));
    int tries_after_exit = 0;
    while (!s->stopping && !f->done) {
      bool complete = false, refused = false;
      uint64_t seen = 0;
      try {
        complete = s->api->stream(target, [&](std::string_view bytes) {
          std::lock_guard lk(f->mu);
          if (f->stop) return false;
          uint64_t end = seen + bytes.size();
          if (end > written) {
            size_t skip = written > seen ? static_cast<size_t>(written - seen) : 0;
            out.write(bytes.data() + skip, static_cast<std::streamsize>(bytes.size() - skip));
            out.flush();
            written = end;
          }
          seen = end;
          return !s->stopping.load();
        }, kIdleSeconds);
      } catch (const ApiError& e) {
        refused = true;  // not started yet (400), the node unreachable, the pod gone (404)
      }
      {
        std::lock_guard lk(f->mu);
        if (f->stop) return;
      }
      // Where the container is now decides whether that was all of it.
      ReplicaPhase phase = ReplicaPhase::Pending;
      try {
        auto r = s->api->request("GET", pod_path);
        if (r.status == 404) break;  // gone: the file has what could be read
        if (r.status == 200) phase = k8s::statusOf(json::parse(r.body)).phase;
      } catch (const std::exception&) {
      }
      if (phase == ReplicaPhase::Exited && complete) break;
      if (phase == ReplicaPhase::Exited && ++tries_after_exit > 5) break;  // its log cannot be had (its node gone)
      if (refused || !complete) {
        std::unique_lock lk(s->mu);
        s->changed.wait_for(lk, std::chrono::seconds(1), [&] { return s->stopping.load(); });
      }
    }
    f->done = true;
  }
};

class KubernetesBackend final : public Backend {
 public:
  explicit KubernetesBackend(const KubernetesOptions& o) : opts_(o), s_(std::make_shared<Shared>()) {
    auto config = trainyard::k8s::resolveKubeConfig(o.kubeconfig, o.context);
    s_->ns = o.ns.empty() ? config.ns : o.ns;
    s_->api = std::make_unique<ApiClient>(config);
    pods_ = fmt::format("/api/v1/namespaces/{}/pods", s_->ns);
    selector_ = util::percentEncode(std::string(k8s::kManagedBy) + "=trainyard");
    std::thread([s = s_, path = pods_, sel = selector_] { watchPods(s, path, sel); }).detach();
  }
  ~KubernetesBackend() override {
    s_->stopping = true;
    s_->changed.notify_all();
  }

  std::string name() const override { return "kubernetes"; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.enforces_memory = true;
    c.runs_images = true;
    c.survives_restart = true;
    c.places_replicas = opts_.gang == "default";  // kube-scheduler's placement, not Trainyard's
    return c;
  }

  std::vector<sched::Node> capacity() override {
    auto nodes = trainyard::k8s::nodesFromList(call([&] { return s_->api->get("/api/v1/nodes"); }));
    // What pods Trainyard does not run already hold on each node is not its to give.
    auto pods = call([&] { return s_->api->get("/api/v1/pods?fieldSelector=" + util::percentEncode("status.phase!=Succeeded,status.phase!=Failed")); });
    std::map<std::string, sched::Resources> held;
    for (const auto& p : pods["items"]) {
      const auto& labels = p["metadata"].value("labels", json::object());
      if (labels.value(k8s::kManagedBy, "") == "trainyard") continue;
      std::string node = p["spec"].value("nodeName", "");
      if (node.empty()) continue;
      for (const auto& c : p["spec"]["containers"]) {
        json req = c.value("resources", json::object()).value("requests", json::object());
        auto& h = held[node];
        if (req.contains("cpu") && req["cpu"].is_string()) h.cpu_millis += spec::parseCpuMillis(req["cpu"].get<std::string>()).value_or(0);
        if (req.contains("memory") && req["memory"].is_string())
          h.memory_bytes += spec::parseMemoryBytes(req["memory"].get<std::string>()).value_or(0);
      }
    }
    for (auto& n : nodes) {
      auto it = held.find(n.name);
      if (it == held.end()) continue;
      n.allocatable.cpu_millis = std::max<int64_t>(0, n.allocatable.cpu_millis - it->second.cpu_millis);
      n.allocatable.memory_bytes = std::max<int64_t>(0, n.allocatable.memory_bytes - it->second.memory_bytes);
    }
    return nodes;
  }

  std::vector<Endpoint> resolvePeers(const PlacedJob& job) override {
    std::vector<Endpoint> out;
    for (size_t i = 0; i < job.replicas.size(); ++i) out.push_back({k8s::serviceName(job, job.replicas[i]), fixedPeerPort(job.uid, i)});
    return out;
  }

  void launch(const PlacedJob& job) override {
    {
      std::lock_guard lk(s_->mu);
      auto it = s_->names.find(job.uid);
      if (it != s_->names.end() && it->second.second == job.attempt) return;  // launched already
    }
    // Shapes first: a replica this backend cannot run fails before anything is created.
    std::vector<json> pods;
    for (size_t i = 0; i < job.replicas.size(); ++i)
      if (job.replicas[i].run) pods.push_back(k8s::podFor(job, job.replicas[i], i, opts_));
    // Everything made for a job from a resource is that resource's.
    json owners = k8s::ownerReferencesFor(job, s_->ns);
    auto owned = [&](json o) {
      if (!owners.empty()) o["metadata"]["ownerReferences"] = owners;
      return o;
    };
    for (auto& pod : pods) pod = owned(std::move(pod));
    std::vector<std::string> created;
    try {
      if (!job.files.empty())
        createOrKeep(fmt::format("/api/v1/namespaces/{}/configmaps", s_->ns), owned(k8s::configMapFor(job)));
      if (!opts_.pod_group.empty()) createOrKeep(k8s::podGroupPath(s_->ns, opts_.pod_group), owned(k8s::podGroupFor(job, opts_)));
      for (const auto& r : job.replicas)
        createOrKeep(fmt::format("/api/v1/namespaces/{}/services", s_->ns), owned(k8s::serviceFor(job, r)));
      for (size_t i = 0, p = 0; i < job.replicas.size(); ++i) {
        const auto& r = job.replicas[i];
        if (!r.run) continue;
        const json& pod = pods[p++];
        std::string name = pod["metadata"]["name"];
        createOrKeep(pods_, pod);
        created.push_back(name);
        if (opts_.gang == "default") continue;  // placed by kube-scheduler (or the PodGroup's scheduler)
        // Bound where Trainyard's scheduler placed it (the gang's placement).
        json binding = {{"apiVersion", "v1"},
                        {"kind", "Binding"},
                        {"metadata", {{"name", name}}},
                        {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", r.node}}}};
        auto res = s_->api->request("POST", pods_ + "/" + name + "/binding", binding.dump());
        if (res.status >= 400 && res.status != 409)
          throw ApiError(res.status, "", fmt::format("binding pod {} to node {}: {} {}", name, r.node, res.status, res.body.substr(0, 300)));
      }
    } catch (const ApiError& e) {
      // All or none: what was created goes.
      for (const auto& name : created) s_->api->remove(pods_ + "/" + name);
      throw BackendError(e.what(), transient(e));
    }
    seen_.erase(job.uid);
    stopping_.erase(job.uid);
    gang_ended_.erase(job.uid);
    auto& order = order_[job.uid];
    order.clear();
    for (const auto& r : job.replicas)
      if (r.run) order.push_back(r.name);
    std::lock_guard lk(s_->mu);
    s_->names[job.uid] = {job.name, job.attempt};
  }

  void stop(const std::string& uid, std::chrono::milliseconds grace) override {
    // The first stop sets when the grace ends (a repeated stop does not extend it).
    stopping_.emplace(uid, std::chrono::steady_clock::now() + grace);
    int attempt = attemptOf(uid);
    json opts = {{"kind", "DeleteOptions"},
                 {"apiVersion", "v1"},
                 {"gracePeriodSeconds", std::max<int64_t>(1, (grace.count() + 999) / 1000)},
                 {"propagationPolicy", "Background"}};
    std::string sel = util::percentEncode(fmt::format("{}={},{}={}", k8s::kJobUid, uid, k8s::kAttempt, attempt));
    // Only pods still running: a finished one keeps its log for release().
    std::string running = util::percentEncode("status.phase!=Succeeded,status.phase!=Failed");
    try {
      s_->api->request("DELETE", pods_ + "?labelSelector=" + sel + "&fieldSelector=" + running, opts.dump());
    } catch (const ApiError&) {
      // Unreachable now: the controller stops again (a stop is repeated until the replicas end).
    }
  }

  std::vector<ReplicaStatus> observe(const std::string& uid) override {
    auto all = observeAll();
    auto it = all.find(uid);
    return it == all.end() ? std::vector<ReplicaStatus>{} : it->second;
  }

  std::map<std::string, std::vector<ReplicaStatus>> observeAll() override {
    std::map<std::string, std::vector<ReplicaStatus>> out;
    json list;
    try {
      list = s_->api->get(pods_ + "?labelSelector=" + selector_);
    } catch (const ApiError&) {
      return last_;  // the API server unreachable for a moment: nothing changed as far as we know
    }
    std::map<std::string, int> attempts;
    {
      std::lock_guard lk(s_->mu);
      for (const auto& [uid, na] : s_->names) attempts[uid] = na.second, out[uid];
    }
    for (const auto& pod : list["items"]) {
      const auto& labels = pod["metadata"].value("labels", json::object());
      std::string uid = labels.value(k8s::kJobUid, "");
      auto it = attempts.find(uid);
      if (it == attempts.end() || std::to_string(it->second) != labels.value(k8s::kAttempt, "")) continue;
      out[uid].push_back(k8s::statusOf(pod));
      if (out[uid].back().phase != ReplicaPhase::Pending) follow(uid, it->second, out[uid].back().name, pod);
    }
    for (auto& [uid, statuses] : out) {
      auto& seen = seen_[uid];
      for (const auto& [name, last] : seen) {
        if (std::any_of(statuses.begin(), statuses.end(), [&](const auto& r) { return r.name == name; })) continue;
        if (last.phase == ReplicaPhase::Exited) {
          statuses.push_back(last);
        } else if (auto stop = stopping_.find(uid); stop != stopping_.end()) {
          // Deleted by this backend before its end was seen: ended by the
          // signal its kubelet sends at this point of the grace period.
          ReplicaStatus ended = last;
          ended.phase = ReplicaPhase::Exited;
          ended.signal = std::chrono::steady_clock::now() < stop->second ? SIGTERM : SIGKILL;
          ended.exit_code.reset();
          ended.reason = "Signaled";
          statuses.push_back(ended);
        }
      }
      for (const auto& r : statuses) seen[r.name] = r;
      // In the job's replica order (as launched), whatever order the API listed them in.
      if (auto o = order_.find(uid); o != order_.end()) {
        auto rank = [&](const ReplicaStatus& r) {
          return std::find(o->second.begin(), o->second.end(), r.name) - o->second.begin();
        };
        std::stable_sort(statuses.begin(), statuses.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
      }
      // A member that could not start: the others must not run alone.
      bool start_error = std::any_of(statuses.begin(), statuses.end(), [](const auto& r) {
        return r.reason == "StartError" || r.reason == "ContainerCannotRun" || r.reason == "RunContainerError";
      });
      if (start_error && !gang_ended_.count(uid)) {
        gang_ended_.insert(uid);
        stop(uid, std::chrono::milliseconds(0));
      }
    }
    last_ = out;
    return out;
  }

  LogChunk readLogAt(const std::string& uid, int attempt, const std::string& replica, const std::string& cursor,
                     size_t max_bytes) override {
    std::string pod, container;
    const std::string key = fmt::format("{}/{}/{}", uid, attempt, replica);
    std::shared_ptr<LogFollower> follower;
    {
      std::lock_guard lk(s_->mu);
      if (auto it = s_->followers.find(key); it != s_->followers.end()) follower = it->second;
    }
    if (follower) {
      // Followed into a file: read there, by the same byte cursors. At its
      // end and not done, more may come: a reader draining an ended
      // replica waits for it.
      std::string local = cursor.rfind('k', 0) == 0 ? cursor.substr(1) : cursor;
      bool done = follower->done;  // before the read: what it wrote until then is in the file
      auto c = readLocalLog(opts_.log_root + "/" + uid, replica, attempt, local, max_bytes);
      return {c.bytes, c.next == local ? cursor : "k" + c.next, c.bytes.empty() && !done};
    }
    try {
      {
        std::lock_guard lk(s_->mu);
        if (auto it = s_->log_pods.find(key); it != s_->log_pods.end()) std::tie(pod, container) = it->second;
      }
      if (pod.empty()) {
        std::string sel = util::percentEncode(fmt::format("{}={},{}={}", k8s::kJobUid, uid, k8s::kAttempt, attempt));
        json list = s_->api->get(pods_ + "?labelSelector=" + sel);  // kept: a range-for over a temporary's member dangles
        for (const auto& p : list["items"])
          if (k8s::statusOf(p).name == replica) {
            pod = p["metadata"]["name"];
            container = p["metadata"].value("annotations", json::object()).value("trainyard.dev/container", "trainyard");
          }
        if (!pod.empty()) {
          std::lock_guard lk(s_->mu);
          s_->log_pods[key] = {pod, container};
        }
      }
      if (pod.empty()) {
        // Released: its log was kept where the local backend keeps logs.
        if (opts_.log_root.empty()) return {"", cursor};
        std::string local = cursor.rfind('k', 0) == 0 ? cursor.substr(1) : cursor;  // "" and tail:N as they are
        auto c = readLocalLog(opts_.log_root + "/" + uid, replica, attempt, local, max_bytes);
        return {c.bytes, c.next == local ? cursor : "k" + c.next};
      }
      // The log API has no byte offsets: read up to the cursor's offset plus
      // what is asked for, and keep what lies beyond the cursor.
      auto probe = cursorOffset(cursor, 0, "k");
      uint64_t offset = probe.value_or(0);
      bool tail = cursor.rfind("tail:", 0) == 0;
      size_t limit = tail ? (16u << 20) : offset + max_bytes;
      auto r = s_->api->request("GET", fmt::format("{}/{}/log?container={}&limitBytes={}", pods_, pod, util::percentEncode(container), limit));
      if (r.status != 200) {
        if (r.status == 404) {  // released since: its log is kept locally (read on the next call)
          std::lock_guard lk(s_->mu);
          s_->log_pods.erase(key);
        }
        return {"", cursor, true};
      }
      if (tail) offset = cursorOffset(cursor, r.body.size(), "k").value_or(0);
      else if (!probe) return {"", cursor};
      if (offset >= r.body.size()) return {"", offsetCursor(offset, "k")};
      std::string bytes = r.body.substr(offset, max_bytes);
      return {bytes, offsetCursor(offset + bytes.size(), "k")};
    } catch (const ApiError&) {
      return {"", cursor, true};
    }
  }

  LogChunk readFileAt(const std::string&, int, const std::string&, const std::string&, const std::string& cursor,
                      size_t) override {
    // A file inside a pod's container is not reachable from here without
    // exec; the File metrics collector needs a shared volume (not yet).
    return {"", cursor};
  }

  void waitForChange(std::chrono::milliseconds timeout) override {
    std::unique_lock lk(s_->mu);
    uint64_t seen = s_->generation;
    s_->changed.wait_for(lk, timeout, [&] { return s_->generation != seen || s_->stopping; });
  }

  std::vector<ReplicaStatus> reattach(const std::string& uid, int attempt, const std::vector<ReplicaStatus>& recorded) override {
    {
      std::lock_guard lk(s_->mu);
      s_->names[uid] = {"", attempt};
    }
    auto live = observe(uid);
    for (const auto& r : recorded)
      if (std::none_of(live.begin(), live.end(), [&](const auto& s) { return s.name == r.name; })) {
        ReplicaStatus lost = r;
        lost.phase = ReplicaPhase::Exited;
        lost.signal = 9;
        lost.reason = "Lost";
        lost.message = "its pod no longer exists";
        live.push_back(lost);
      }
    return live;
  }

  void release(const std::string& uid) override {
    std::string sel = util::percentEncode(fmt::format("{}={}", k8s::kJobUid, uid));
    json now = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"gracePeriodSeconds", 0}, {"propagationPolicy", "Background"}};
    try {
      // Logs outlive pods: every attempt's log is kept before its pod goes.
      if (!opts_.log_root.empty()) {
        json pods = s_->api->get(pods_ + "?labelSelector=" + sel);
        std::filesystem::path dir = std::filesystem::path(opts_.log_root) / uid;
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        for (const auto& p : pods["items"]) {
          auto st = k8s::statusOf(p);
          std::shared_ptr<LogFollower> follower;
          {
            std::lock_guard lk(s_->mu);
            if (auto it = s_->followers.find(fmt::format("{}/{}/{}", uid, st.attempt, st.name)); it != s_->followers.end())
              follower = it->second;
          }
          if (follower) {
            std::lock_guard lk(follower->mu);
            follower->stop = true;  // from here the file is this function's
            if (follower->done) continue;  // it has the whole log
          }
          // What the file lacks (a pod never followed, or its follower cut short).
          std::string container = p["metadata"].value("annotations", json::object()).value("trainyard.dev/container", "trainyard");
          auto r = s_->api->request("GET", fmt::format("{}/{}/log?container={}&limitBytes={}", pods_,
                                                       p["metadata"]["name"].get<std::string>(), util::percentEncode(container), 64u << 20));
          if (r.status != 200) continue;
          std::filesystem::path file = dir / logFileName(st.name, st.attempt);
          uint64_t has = std::filesystem::exists(file, ec) ? std::filesystem::file_size(file, ec) : 0;
          if (has >= r.body.size()) continue;
          std::ofstream out(file, std::ios::binary | std::ios::app);
          out.write(r.body.data() + has, static_cast<std::streamsize>(r.body.size() - has));
        }
      }
      s_->api->request("DELETE", pods_ + "?labelSelector=" + sel, now.dump());
      s_->api->request("DELETE", fmt::format("/api/v1/namespaces/{}/configmaps?labelSelector={}", s_->ns, sel));
      if (!opts_.pod_group.empty()) s_->api->request("DELETE", k8s::podGroupPath(s_->ns, opts_.pod_group) + "?labelSelector=" + sel);
      // Services have no deletecollection: one by one.
      json services = s_->api->get(fmt::format("/api/v1/namespaces/{}/services?labelSelector={}", s_->ns, sel));
      for (const auto& svc : services["items"])
        s_->api->remove(fmt::format("/api/v1/namespaces/{}/services/{}", s_->ns, svc["metadata"]["name"].get<std::string>()));
    } catch (const ApiError&) {
      // Left for the garbage collector of a later release (labels say whose they are).
    }
    seen_.erase(uid);
    stopping_.erase(uid);
    gang_ended_.erase(uid);
    order_.erase(uid);
    std::lock_guard lk(s_->mu);
    s_->names.erase(uid);
    std::erase_if(s_->log_pods, [&](const auto& kv) { return kv.first.rfind(uid + "/", 0) == 0; });
    std::erase_if(s_->followers, [&](const auto& kv) { return kv.first.rfind(uid + "/", 0) == 0; });
  }

  std::vector<std::string> warnings() const override { return {}; }

 private:
  template <typename F>
  json call(F f) {
    try {
      return f();
    } catch (const ApiError& e) {
      throw BackendError(e.what(), transient(e));
    }
  }
  void createOrKeep(const std::string& collection, const json& object) {
    auto r = s_->api->request("POST", collection, object.dump());
    if (r.status == 409) {
      // Launched before (idempotent by uid and attempt), unless it is
      // another job's: a pod or Service of the same name left by a job of
      // the same name from another store. Not ours to delete.
      std::string name = object["metadata"].value("name", "");
      json existing = s_->api->get(collection + "/" + name);
      std::string uid = object["metadata"]["labels"].value(k8s::kJobUid, "");
      std::string theirs = existing["metadata"].value("labels", json::object()).value(k8s::kJobUid, "");
      if (theirs != uid)
        throw ApiError(409, "AlreadyExists",
                       fmt::format("{} {} already exists and belongs to another job ({}={}); delete it, or name this job "
                                   "differently",
                                   object.value("kind", ""), name, k8s::kJobUid, theirs.empty() ? "none" : theirs));
      return;
    }
    if (r.status >= 400) {
      std::string message = r.body.substr(0, 300);
      try {
        message = json::parse(r.body).value("message", message);
      } catch (const json::exception&) {
      }
      throw ApiError(r.status, "", fmt::format("creating {} {}: {}", object.value("kind", ""),
                                               object["metadata"].value("name", ""), message));
    }
  }
  // Starts copying a started pod's log to its file, once per replica and attempt.
  void follow(const std::string& uid, int attempt, const std::string& replica, const json& pod) {
    if (opts_.log_root.empty()) return;  // nowhere to keep it: read through pods/log each time
    std::string key = fmt::format("{}/{}/{}", uid, attempt, replica);
    std::shared_ptr<LogFollower> f;
    {
      std::lock_guard lk(s_->mu);
      auto& slot = s_->followers[key];
      if (slot) return;  // followed already (every pass sees every started pod)
      f = slot = std::make_shared<LogFollower>();
    }
    std::string container = pod["metadata"].value("annotations", json::object()).value("trainyard.dev/container", "trainyard");
    std::filesystem::path file = std::filesystem::path(opts_.log_root) / uid / logFileName(replica, attempt);
    std::thread(LogFollower::run, s_, f, pods_ + "/" + pod["metadata"]["name"].get<std::string>(), container, file).detach();
  }

  int attemptOf(const std::string& uid) {
    std::lock_guard lk(s_->mu);
    auto it = s_->names.find(uid);
    return it == s_->names.end() ? 0 : it->second.second;
  }

  // Wakes waitForChange on every change of Trainyard's pods, as client-go's
  // reflector watches: list for a resourceVersion, watch from it, watch on
  // from the last one seen when the stream ends or the server is away for
  // a moment (nothing missed), list again on 410 Gone (that version is
  // no longer kept: changes may have been missed, so observe everything).
  static void watchPods(std::shared_ptr<Shared> s, std::string path, std::string sel) {
    std::string rv;
    auto wake = [&] {
      std::lock_guard lk(s->mu);
      ++s->generation;
      s->changed.notify_all();
    };
    while (!s->stopping) {
      try {
        if (rv.empty()) {
          rv = s->api->get(path + "?labelSelector=" + sel + "&limit=1")["metadata"].value("resourceVersion", "");
          wake();
        }
        rv = s->api->watch(path + "?labelSelector=" + sel, rv, [&](const std::string& type, const json&) {
          if (type != "BOOKMARK") wake();
          return !s->stopping.load();
        }, 10);
      } catch (const ApiError& e) {
        if (e.status == 410) {
          fmt::print(stderr, "trainyard: kubernetes: the pods watch at resourceVersion {} expired (410 Gone): listing again\n", rv);
          rv.clear();
        } else if (e.status != 0 && e.status != 429 && e.status < 500) {
          rv.clear();  // refused (403...): start over once it is allowed
        }
        std::unique_lock lk(s->mu);
        s->changed.wait_for(lk, std::chrono::seconds(1), [&] { return s->stopping.load(); });
      }
    }
  }

  KubernetesOptions opts_;
  std::shared_ptr<Shared> s_;
  std::string pods_, selector_;
  std::map<std::string, std::vector<ReplicaStatus>> last_;
  // Per job, the last status of each replica of its current attempt: a pod
  // this backend deleted (stop, or a gang whose member could not start)
  // vanishes, and its replica is then reported ended, not lost.
  std::map<std::string, std::map<std::string, ReplicaStatus>> seen_;
  std::map<std::string, std::chrono::steady_clock::time_point> stopping_;  // jobs asked to stop: when their grace ends
  std::set<std::string> gang_ended_;  // jobs whose gang was stopped after a member could not start
  std::map<std::string, std::vector<std::string>> order_;  // replica names as launched
};

}  // namespace
}  // namespace trainyard::backend

// The plugin's entry point (libtrainyard_k8s.so; see util/plugin.h).
extern "C" __attribute__((visibility("default"))) trainyard::backend::Backend* trainyard_kubernetes_backend(
    const trainyard::backend::KubernetesOptions* opts) {
  return new trainyard::backend::KubernetesBackend(*opts);
}
