#include "backend/slurm/slurm_state.h"

#include <algorithm>
#include <csignal>
#include <ctime>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace trainyard::backend::slurm {
using json = nlohmann::json;

std::string slurmJobName(const std::string& uid, int attempt) { return fmt::format("trainyard-{}-{}", uid, attempt); }

namespace {

json parse(const std::string& text, const char* what) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) throw std::runtime_error(fmt::format("{}: not JSON", what));
  return j;
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key)) return "";
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return "";
}

double num(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0; }

}  // namespace

std::vector<std::string> squeueCommand() {
  return {"squeue", "--noheader", "--states=all", "--format=%i|%j|%T|%r|%N|%S|%e"};
}

namespace {

// squeue's times are local ("2026-11-29T21:04:17"); N/A, Unknown or none: 0.
double localTime(const std::string& text) {
  std::tm tm{};
  if (!strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm));
}

}  // namespace

std::vector<SlurmJob> parseSqueue(const std::string& text) {
  std::vector<SlurmJob> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    std::vector<std::string> f;
    for (size_t at = 0;;) {
      size_t bar = line.find('|', at);
      f.push_back(line.substr(at, bar == std::string::npos ? std::string::npos : bar - at));
      if (bar == std::string::npos) break;
      at = bar + 1;
    }
    if (f.size() != 7 || f[0].empty() || f[0].find_first_not_of("0123456789_[]-+") != std::string::npos)
      throw std::runtime_error(fmt::format("squeue: unexpected line \"{}\"", line.substr(0, 200)));
    if (!f[1].starts_with("trainyard-")) continue;
    SlurmJob j{f[0], f[1], f[2], f[3], f[4], localTime(f[5]), localTime(f[6])};
    // A heterogeneous job is listed per component ("12+0", "12+1"): one job
    // 12, in the state that says most (a failure over running over done).
    if (size_t plus = j.id.find('+'); plus != std::string::npos) {
      j.id.resize(plus);
      auto same = std::find_if(out.begin(), out.end(), [&](const SlurmJob& o) { return o.id == j.id; });
      if (same != out.end()) {
        auto rank = [](const std::string& st) { return st == "COMPLETED" ? 0 : isActive(st) ? 1 : 2; };
        if (rank(j.state) > rank(same->state)) same->state = j.state, same->reason = j.reason;
        same->nodes += "," + j.nodes;
        if (j.start > 0 && (same->start == 0 || j.start < same->start)) same->start = j.start;
        same->end = std::max(same->end, j.end);
        continue;
      }
    }
    out.push_back(std::move(j));
  }
  return out;
}

bool isActive(const std::string& state) {
  static const char* kActive[] = {"PENDING", "CONFIGURING", "RUNNING",   "COMPLETING", "SUSPENDED", "REQUEUED",
                                  "RESIZING", "SIGNALING",  "STAGE_OUT", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"};
  for (const char* a : kActive)
    if (state == a) return true;
  return false;
}

std::vector<sched::Node> parseSinfo(const std::string& json_text, const std::string& partition) {
  json j = parse(json_text, "sinfo --json");
  std::vector<sched::Node> out;
  if (!j.contains("nodes") || !j["nodes"].is_array()) throw std::runtime_error("sinfo --json: no \"nodes\" list");
  static const std::regex kGpu(R"((?:^|,)gpu(?::[^:,(]+)?:(\d+))");
  for (const auto& n : j["nodes"]) {
    if (!n.is_object()) continue;
    if (!partition.empty()) {
      bool in = false;
      if (n.contains("partitions") && n["partitions"].is_array())
        for (const auto& p : n["partitions"]) in = in || (p.is_string() && p.get<std::string>() == partition);
      if (!in) continue;
    }
    sched::Node node;
    node.name = str(n, "name");
    node.allocatable.cpu_millis = static_cast<int64_t>(num(n, "cpus")) * 1000;
    node.allocatable.memory_bytes = static_cast<int64_t>(num(n, "real_memory")) << 20;
    std::smatch m;
    std::string gres = str(n, "gres");
    if (std::regex_search(gres, m, kGpu)) node.allocatable.gpu = std::stoi(m[1]);
    for (int g = 0; g < node.allocatable.gpu; ++g) node.gpu_ids.push_back(g);
    std::string features = str(n, "features");
    for (size_t pos = 0; pos < features.size();) {
      size_t comma = features.find(',', pos);
      std::string f = features.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!f.empty()) node.labels["feature." + f] = "true";
      pos = comma == std::string::npos ? features.size() : comma + 1;
    }
    std::string state = str(n, "state");
    bool flagged = false;
    if (n.contains("state_flags") && n["state_flags"].is_array())
      for (const auto& f : n["state_flags"]) {
        std::string flag = f.is_string() ? f.get<std::string>() : "";
        flagged = flagged || flag == "DRAIN" || flag == "NOT_RESPONDING" || flag == "FAIL" || flag == "MAINTENANCE";
      }
    node.schedulable = !flagged && state != "down" && state != "drained" && state != "draining" && state != "fail" &&
                       state != "future" && state != "unknown";
    if (!node.name.empty()) out.push_back(std::move(node));
  }
  return out;
}

std::vector<int> parseTasksPerNode(const std::string& text) {
  std::vector<int> out;
  static const std::regex kItem(R"((\d+)(?:\(x(\d+)\))?)");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    std::smatch m;
    if (!std::regex_match(item, m, kItem)) return {};
    int tasks = std::stoi(m[1]);
    int times = m[2].matched ? std::stoi(m[2]) : 1;
    if (times > 100000) return {};
    out.insert(out.end(), static_cast<size_t>(times), tasks);
    pos = comma == std::string::npos ? text.size() : comma + 1;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parseNodeAddrs(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  static const std::regex kName(R"((?:^|\s)NodeName=(\S+))"), kAddr(R"((?:^|\s)NodeAddr=(\S+))");
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    std::smatch name, addr;
    if (std::regex_search(line, name, kName))
      out.emplace_back(name[1], std::regex_search(line, addr, kAddr) ? addr[1].str() : name[1].str());
  }
  return out;
}

void endedWithoutRecord(const SlurmJob* job, ReplicaStatus& r) {
  r.phase = ReplicaPhase::Exited;
  r.exit_code.reset();
  r.signal = SIGKILL;
  if (!job) {
    r.reason = "Lost";
    r.message = "its Slurm job is no longer listed and it left no exit status";
    return;
  }
  const std::string& st = job->state;
  std::string why = job->reason.empty() || job->reason == "None" ? "" : " (" + job->reason + ")";
  r.message = fmt::format("Slurm job {} ended {}{}", job->id, st, why);
  if (st == "NODE_FAIL" || st == "BOOT_FAIL") r.reason = "NodeFail";
  else if (st == "TIMEOUT" || st == "DEADLINE") r.reason = "DeadlineExceeded";
  else if (st == "OUT_OF_MEMORY") r.reason = "OOMKilled", r.signal.reset(), r.exit_code = 137;
  else if (st == "PREEMPTED") r.reason = "Preempted";
  else if (st == "CANCELLED") r.reason = "Signaled";
  else r.reason = "Lost";  // COMPLETED or FAILED without the replica's own record: it never ran to its end
}

}  // namespace trainyard::backend::slurm
