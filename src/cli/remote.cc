#include "cli/remote.h"
#include "cli/serve_cmd.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/output.h"
#include "http/client.h"
#include "util/files.h"
#include "util/format.h"

namespace trainyard::cli {
namespace {
using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;

// A request that did not succeed, with the exit code it maps to.
struct RemoteError : std::runtime_error {
  RemoteError(int code, const std::string& msg) : std::runtime_error(msg), exit_code(code) {}
  int exit_code;
};

std::string enc(const std::string& s) { return util::percentEncode(s); }

class Client {
 public:
  explicit Client(const Remote& r) : r_(r), http_(connect(r.url)) {
    http_.set_timeouts(std::chrono::seconds(5), std::chrono::hours(1));
    if (!r.token.empty()) http_.set_bearer_token(r.token);
  }
  json get(const std::string& path) { return check(send("GET", path), "GET", path); }
  json post(const std::string& path, const json& body) {
    return check(send("POST", path, body.dump(), "application/json"), "POST", path);
  }
  json del(const std::string& path) { return check(send("DELETE", path), "DELETE", path); }
  std::string text(const std::string& path) { return checked(send("GET", path)).body; }
  // Server-Sent Events: calls on_event(name, data) until the stream ends.
  void events(const std::string& path, const std::function<bool(const std::string&, const std::string&)>& on_event) {
    std::string buf, status_body;
    int status = 0;
    try {
      http_.stream(path, {{"Accept", "text/event-stream"}}, [&](int s) { status = s; },
                   [&](const char* data, size_t n) {
                     if (status >= 300) {
                       status_body.append(data, n);
                       return true;
                     }
                     buf.append(data, n);
                     size_t end;
                     while ((end = buf.find("\n\n")) != std::string::npos) {
                       std::string block = buf.substr(0, end);
                       buf.erase(0, end + 2);
                       std::string event = "message", payload;
                       std::istringstream lines(block);
                       for (std::string line; std::getline(lines, line);) {
                         if (line.rfind("event: ", 0) == 0) event = line.substr(7);
                         else if (line.rfind("data: ", 0) == 0) payload += line.substr(6);
                       }
                       if (!payload.empty() && !on_event(event, payload)) return false;
                     }
                     return true;
                   });
    } catch (const http::ClientError& e) {
      throw RemoteError(kExitInternal, fmt::format("cannot reach the Trainyard server at {}: {}", r_.url, e.what()));
    }
    if (status >= 300) checked({status, {}, status_body});
  }
  // A body streamed to `out` as it arrives (an output may be gigabytes).
  void download(const std::string& path, std::ostream& out) {
    std::string status_body;
    int status = 0;
    try {
      http_.stream(path, {}, [&](int s) { status = s; }, [&](const char* data, size_t n) {
        if (status < 300) out.write(data, static_cast<std::streamsize>(n));
        else if (status_body.size() < 65536) status_body.append(data, std::min(n, 65536 - status_body.size()));
        return static_cast<bool>(out);
      });
    } catch (const http::ClientError& e) {
      throw RemoteError(kExitInternal, fmt::format("cannot reach the Trainyard server at {}: {}", r_.url, e.what()));
    }
    if (status >= 300) checked({status, {}, status_body});
  }

 private:
  static http::Client connect(const std::string& url) {
    try {
      return http::Client(url);
    } catch (const http::ClientError& e) {
      throw RemoteError(kExitBadInput, e.what());
    }
  }
  http::ClientResponse send(const std::string& method, const std::string& path, const std::string& body = "",
                            const std::string& type = "") {
    try {
      return http_.request(method, path, body, type);
    } catch (const http::ClientError& e) {
      throw RemoteError(kExitInternal, fmt::format("cannot reach the Trainyard server at {}: {} (start one with `trainyard server`)",
                                                   r_.url, e.what()));
    }
  }
  // The answer, or its error message as a RemoteError.
  static http::ClientResponse checked(http::ClientResponse res) {
    if (res.status >= 300) {
      std::string msg = res.body;
      try {
        json e = json::parse(res.body)["error"];
        msg = e.is_string() ? e.get<std::string>() : e["message"].get<std::string>();
        if (e.is_object() && e.contains("field") && !e["field"].get<std::string>().empty() &&
            msg.find(e["field"].get<std::string>()) == std::string::npos)
          msg += fmt::format(" (field {})", e["field"].get<std::string>());
      } catch (const std::exception&) {
      }
      throw RemoteError(res.status < 500 ? kExitBadInput : kExitInternal, msg);
    }
    return res;
  }
  json check(http::ClientResponse res, const char*, const std::string&) { return json::parse(checked(std::move(res)).body); }
  Remote r_;
  http::Client http_;
};

std::string str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  if (j[key].is_string()) return j[key].get<std::string>();
  if (j[key].is_number_float()) return formatValue(j[key].get<double>());
  return j[key].dump();
}

double num(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0; }

bool emit(const Remote& r, const json& j) {
  auto f = parseOutputFormat(r.output);
  if (f == OutputFormat::Json) printJson(std::cout, j);
  if (f == OutputFormat::Yaml) printYaml(std::cout, j);
  return f != OutputFormat::Table;
}

std::string duration(const json& j) {
  double s = num(j, "startedAt"), f = num(j, "finishedAt");
  if (s <= 0) return "-";
  double end = f > 0 ? f : std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return formatDuration(end - s);
}

template <typename F>
int guarded(F&& f) {
  try {
    return f();
  } catch (const RemoteError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.exit_code;
  }
}

// All pages of a list.
json all(Client& c, const std::string& path) {
  json items = json::array();
  int64_t offset = 0;
  for (;;) {
    json p = c.get(fmt::format("{}{}offset={}&limit=1000", path, path.find('?') == std::string::npos ? "?" : "&", offset));
    for (auto& i : p["items"]) items.push_back(i);
    if (p["nextOffset"].is_null()) break;
    offset = p["nextOffset"].get<int64_t>();
  }
  return items;
}

int followLogs(Client& c, const std::string& name, const std::string& replica, int attempt) {
  std::string path = fmt::format("/api/v1/jobs/{}/logs?follow=true", enc(name));
  if (!replica.empty()) path += "&replica=" + enc(replica);
  if (attempt >= 0) path += fmt::format("&attempt={}", attempt);
  std::string final_phase;
  c.events(path, [&](const std::string& ev, const std::string& data) {
    if (ev == "log") std::cout << json::parse(data).get<std::string>() << std::flush;
    if (ev == "end") {
      final_phase = json::parse(data).value("phase", "");
      return false;
    }
    return true;
  });
  if (final_phase.empty() || final_phase == "Succeeded") return 0;
  return kExitFailed;
}

}  // namespace

int remoteSubmit(const Remote& r, const std::string& file, const std::vector<std::string>& overrides, bool follow) {
  return guarded([&] {
    std::string text = util::readFrom(file, 0, 16 << 20);
    if (text.empty() && !fs::exists(file)) throw RemoteError(kExitBadInput, fmt::format("{}: no such file", file));
    fs::path abs = fs::absolute(file);
    json body{{"yaml", text}, {"file", file}, {"baseDir", abs.parent_path().string()}, {"overrides", overrides}};
    Client c(r);
    // The kind decides the collection; the server parses and validates.
    json out;
    try {
      out = c.post("/api/v1/jobs", body);
    } catch (const RemoteError& e) {
      std::string what = e.what();
      if (what.find("this is a Notebook") != std::string::npos) {
        out = c.post("/api/v1/notebooks", body);
        for (const auto& w : out.value("warnings", json::array())) std::cerr << "warning: " << w.get<std::string>() << "\n";
        if (!emit(r, out)) std::cout << fmt::format("notebook {} started ({}): {}{}\n", str(out, "name"), str(out, "phase"), r.url, str(out, "url"));
        return 0;
      }
      if (what.find("this is an Experiment") == std::string::npos) throw;
      out = c.post("/api/v1/experiments", body);
    }
    for (const auto& w : out.value("warnings", json::array())) std::cerr << "warning: " << w.get<std::string>() << "\n";
    if (out.value("kind", "") == "Queue" || out.value("kind", "") == "Cohort" || out.value("kind", "") == "PriorityClass") {
      if (!emit(r, out)) std::cout << fmt::format("{} {} applied\n", str(out, "kind"), str(out, "name"));
      return 0;
    }
    bool experiment = out.contains("maxTrials");
    if (!emit(r, out))  // with --follow, stdout is the job's log
      (follow ? std::cerr : std::cout) << fmt::format("{} {} submitted ({})\n", experiment ? "experiment" : "job",
                                                      str(out, "name"), str(out, "phase"));
    if (follow && !experiment) return followLogs(c, out["name"].get<std::string>(), "", -1);
    return 0;
  });
}

int remoteGetJobs(const Remote& r, const std::string& name, const std::string& phase, const std::string& label, bool trials) {
  return guarded([&] {
    Client c(r);
    json items = json::array();
    if (!name.empty()) items.push_back(c.get("/api/v1/jobs/" + enc(name)));
    else {
      std::string q = "/api/v1/jobs?order=asc";
      if (!phase.empty()) q += "&state=" + enc(phase);
      if (!label.empty()) q += "&label=" + enc(label);
      if (!trials) q += "&trials=false";  // experiments' trial jobs: `get trials EXP`, or --all
      q += "&results=true";
      items = all(c, q);
    }
    if (emit(r, name.empty() ? items : items[0])) return 0;
    std::vector<std::vector<std::string>> rows;
    for (const auto& j : items) {
      std::string results;
      int shown = 0;
      const json got = j.value("results", json::object());  // bound: items() of a temporary dangles
      for (const auto& [k, v] : got.items()) {
        if (++shown > 3) {
          results += " ...";
          break;
        }
        results += (results.empty() ? "" : " ") + k + "=" + (v.is_number() ? util::formatValue(v.get<double>()) : v.dump());
      }
      rows.push_back({str(j, "name"), str(j, "phase"), str(j, "restarts"), duration(j), str(j, "user"),
                      results.empty() ? "-" : results, str(j, "message")});
    }
    printTable(std::cout, {"NAME", "PHASE", "RESTARTS", "DURATION", "USER", "RESULTS", "MESSAGE"}, rows);
    return 0;
  });
}

int remoteGetMetrics(const Remote& r, const std::string& job, bool everything, const std::string& metric) {
  return guarded([&] {
    Client c(r);
    json series = c.get(fmt::format("/api/v1/jobs/{}/metrics", enc(job)))["items"];
    if (!everything && metric.empty()) {
      // -o json as the local command prints it: the job and its points.
      json last = json::array();
      for (const auto& s : series) last.push_back({{"name", s["name"]}, {"value", s["last"]}, {"step", s["lastStep"]}});
      if (emit(r, json{{"job", job}, {"metrics", last}})) return 0;
      std::vector<std::vector<std::string>> rows;
      for (const auto& s : series) rows.push_back({str(s, "name"), str(s, "last"), str(s, "lastStep"), str(s, "points")});
      printTable(std::cout, {"METRIC", "LAST", "STEP", "POINTS"}, rows);
      return 0;
    }
    json out = json::array();
    for (const auto& s : series) {
      std::string n = s["name"].get<std::string>();
      if (!metric.empty() && n != metric) continue;
      out.push_back(c.get(fmt::format("/api/v1/jobs/{}/metrics/{}?maxPoints=10000", enc(job), enc(n))));
    }
    json points = json::array();
    for (const auto& s : out)
      for (size_t i = 0; i < s["step"].size(); ++i)
        points.push_back({{"name", s["name"]}, {"value", s["last"][i]}, {"step", s["step"][i]}});
    if (emit(r, json{{"job", job}, {"metrics", points}})) return 0;
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : out)
      for (size_t i = 0; i < s["step"].size(); ++i)
        rows.push_back({s["name"].get<std::string>(), std::to_string(s["step"][i].get<int64_t>()), formatValue(s["last"][i].get<double>())});
    printTable(std::cout, {"METRIC", "STEP", "VALUE"}, rows);
    return 0;
  });
}

int remoteDescribeJob(const Remote& r, const std::string& name) {
  return guarded([&] {
    Client c(r);
    json j = c.get("/api/v1/jobs/" + enc(name));
    if (emit(r, j)) return 0;
    std::cout << fmt::format("Name:      {}\nPhase:     {}  {} {}\nUser:      {}\nRestarts:  {}\nCreated:   {}\nStarted:   {}\nFinished:  {}\nOutputs:   {}\n",
                             str(j, "name"), str(j, "phase"), str(j, "reason"), str(j, "message"), str(j, "user"), str(j, "restarts"),
                             formatTime(num(j, "createdAt")), formatTime(num(j, "startedAt")), formatTime(num(j, "finishedAt")),
                             str(j, "outputsDir"));
    std::vector<std::vector<std::string>> rows;
    for (const auto& x : j["conditions"]) rows.push_back({str(x, "type"), str(x, "reason"), formatTime(num(x, "time")), str(x, "message")});
    std::cout << "\nConditions:\n";
    printTable(std::cout, {"TYPE", "REASON", "TIME", "MESSAGE"}, rows);
    rows.clear();
    for (const auto& x : j["attempts"]) {
      std::string exit = x["signal"].is_null() ? str(x, "exitCode") : "signal " + str(x, "signal");
      rows.push_back({std::to_string(x["attempt"].get<int>() + 1), str(x, "replica"), str(x, "state"), str(x, "pid"), exit, str(x, "reason")});
    }
    std::cout << "\nAttempts:\n";
    printTable(std::cout, {"ATTEMPT", "REPLICA", "STATE", "PID", "EXIT", "REASON"}, rows);
    rows.clear();
    for (const auto& x : j["events"]) rows.push_back({formatTime(num(x, "time")), str(x, "type"), str(x, "reason"), str(x, "message")});
    std::cout << "\nEvents:\n";
    printTable(std::cout, {"TIME", "TYPE", "REASON", "MESSAGE"}, rows);
    rows.clear();
    for (const auto& s : j["series"]) rows.push_back({str(s, "name"), str(s, "last"), str(s, "lastStep"), str(s, "points")});
    std::cout << "\nMetrics:\n";
    printTable(std::cout, {"METRIC", "LAST", "STEP", "POINTS"}, rows);
    printRunRecord(std::cout, j.value("record", json()));
    return 0;
  });
}

int remoteGetExperiments(const Remote& r) {
  return guarded([&] {
    Client c(r);
    json items = all(c, "/api/v1/experiments");
    if (emit(r, items)) return 0;
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : items) {
      std::string best = "-";
      if (e.contains("best"))
        for (auto& [k, v] : e["best"]["objective"].items()) best = fmt::format("#{} {}={}", e["best"]["trial"].get<int>(), k, formatValue(v.get<double>()));
      rows.push_back({str(e, "name"), str(e, "phase"), fmt::format("{}/{}", str(e, "trials"), str(e, "maxTrials")), best,
                      e["etaSeconds"].is_null() ? "-" : formatDuration(e["etaSeconds"].get<double>())});
    }
    printTable(std::cout, {"NAME", "PHASE", "TRIALS", "BEST", "ETA"}, rows);
    return 0;
  });
}

int remoteGetTrials(const Remote& r, const std::string& experiment) {
  return guarded([&] {
    Client c(r);
    json items = all(c, fmt::format("/api/v1/experiments/{}/trials?sort=number", enc(experiment)));
    if (emit(r, items)) return 0;
    std::vector<std::vector<std::string>> rows;
    for (const auto& t : items) {
      std::string params, obj;
      for (auto& [k, v] : t["parameters"].items()) params += fmt::format("{}{}={}", params.empty() ? "" : " ", k, v.get<std::string>());
      for (auto& [k, v] : t["objective"].items()) obj += fmt::format("{}{}={}", obj.empty() ? "" : " ", k, formatValue(v.get<double>()));
      rows.push_back({str(t, "trial"), str(t, "state"), params, obj.empty() ? "-" : obj, str(t, "job")});
    }
    printTable(std::cout, {"TRIAL", "STATE", "PARAMETERS", "OBJECTIVE", "JOB"}, rows);
    return 0;
  });
}

int remoteDescribeExperiment(const Remote& r, const std::string& name) {
  return guarded([&] {
    Client c(r);
    json e = c.get("/api/v1/experiments/" + enc(name));
    if (emit(r, e)) return 0;
    std::cout << fmt::format("Name:      {}\nPhase:     {}  {} {}\nTrials:    {} of {} ({}% done)\nElapsed:   {}\nETA:       {}\n",
                             str(e, "name"), str(e, "phase"), str(e, "reason"), str(e, "message"), str(e, "trials"), str(e, "maxTrials"),
                             static_cast<int>(num(e, "progress") * 100), formatDuration(num(e, "elapsedSeconds")),
                             e["etaSeconds"].is_null() ? "-" : formatDuration(e["etaSeconds"].get<double>()));
    if (e.contains("best")) std::cout << "Best:      trial " << e["best"]["trial"] << " " << e["best"]["objective"].dump() << " " << e["best"]["parameters"].dump() << "\n";
    if (e.contains("paretoFront")) std::cout << "Pareto:    " << e["paretoFront"].dump() << "\n";
    return 0;
  });
}

int remoteLogs(const Remote& r, const std::string& name, const std::string& replica, int attempt, bool follow) {
  return guarded([&] {
    Client c(r);
    if (follow) return followLogs(c, name, replica, attempt);
    std::string path = fmt::format("/api/v1/jobs/{}/logs?limit=16777216", enc(name));
    if (!replica.empty()) path += "&replica=" + enc(replica);
    if (attempt >= 0) path += fmt::format("&attempt={}", attempt);
    std::cout << c.text(path) << std::flush;
    return 0;
  });
}

int remoteRerun(const Remote& r, const std::string& name) {
  return guarded([&] {
    Client c(r);
    json out = c.post(fmt::format("/api/v1/jobs/{}/rerun", enc(name)), json::object());
    for (const auto& w : out.value("warnings", json::array())) std::cerr << "trainyard: rerun: " << w.get<std::string>() << "\n";
    if (!emit(r, out)) std::cout << fmt::format("job {} submitted (a rerun of {})\n", str(out, "name"), name);
    return 0;
  });
}

int remoteModelsPush(const Remote& r, const std::string& from, const std::string& name) {
  return guarded([&] {
    Client c(r);
    printPushed(c.post("/api/v1/models", json{{"from", from}, {"name", name}}), r.output);
    return 0;
  });
}

int remoteOutputs(const Remote& r, const std::string& job, const std::string& path, const std::string& to) {
  return guarded([&] {
    Client c(r);
    if (path.empty()) {
      json list = c.get(fmt::format("/api/v1/jobs/{}/outputs", enc(job)));
      if (!emit(r, list)) printOutputs(std::cout, list);
      return 0;
    }
    std::string encoded;
    for (size_t pos = 0; pos <= path.size();) {  // each segment encoded, the slashes kept
      size_t slash = path.find('/', pos);
      encoded += enc(path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos));
      if (slash == std::string::npos) break;
      encoded += '/';
      pos = slash + 1;
    }
    std::string url = fmt::format("/api/v1/jobs/{}/outputs/{}", enc(job), encoded);
    if (to.empty() || to == "-") {
      c.download(url, std::cout);
      std::cout << std::flush;
    } else {
      std::ofstream out(to, std::ios::binary | std::ios::trunc);
      if (!out) throw RemoteError(kExitBadInput, fmt::format("cannot write {}", to));
      c.download(url, out);
    }
    return 0;
  });
}

int remoteCancel(const Remote& r, const std::string& name, bool experiment) {
  return guarded([&] {
    Client c(r);
    json out = c.post(fmt::format("/api/v1/{}/{}/cancel", experiment ? "experiments" : "jobs", enc(name)), json::object());
    if (emit(r, out)) return 0;
    std::cout << (out["cancelRequested"].get<bool>() ? fmt::format("{} {}: cancel requested\n", experiment ? "experiment" : "job", name)
                                                     : fmt::format("{} already {}\n", name, str(out, "phase")));
    return 0;
  });
}

int remoteSuspend(const Remote& r, const std::string& name, bool suspend) {
  return guarded([&] {
    Client c(r);
    json out = c.post(fmt::format("/api/v1/jobs/{}/{}", enc(name), suspend ? "suspend" : "resume"), json::object());
    if (!emit(r, out)) std::cout << fmt::format("job {} {}\n", name, suspend ? "suspended" : "resumed");
    return 0;
  });
}

int remoteDelete(const Remote& r, const std::string& name) {
  return guarded([&] {
    Client c(r);
    json out = c.del("/api/v1/jobs/" + enc(name));
    if (!emit(r, out)) std::cout << fmt::format("job {} deleted\n", name);
    return 0;
  });
}

int remoteTop(const Remote& r, bool once) {
  return guarded([&] {
    Client c(r);
    const bool tty = isatty(STDOUT_FILENO) && !once;
    for (;;) {
      json nodes = c.get("/api/v1/nodes")["items"];
      json running = c.get("/api/v1/jobs?state=Running&limit=1000")["items"];
      json queued = c.get("/api/v1/jobs?state=Queued&limit=1")["total"];
      std::ostringstream out;
      std::vector<std::vector<std::string>> rows;
      for (const auto& n : nodes)
        rows.push_back({str(n, "name"), fmt::format("{}/{}", formatValue(n["allocated"]["cpu"].get<double>()), formatValue(n["allocatable"]["cpu"].get<double>())),
                        fmt::format("{:.1f}/{:.1f} GiB", n["allocated"]["memoryBytes"].get<double>() / (1 << 30), n["allocatable"]["memoryBytes"].get<double>() / (1 << 30)),
                        fmt::format("{}/{}", str(n["allocated"], "gpu"), str(n["allocatable"], "gpu"))});
      printTable(out, {"NODE", "CPU", "MEMORY", "GPU"}, rows);
      out << fmt::format("\n{} running, {} queued\n\n", running.size(), queued.dump());
      rows.clear();
      for (const auto& j : running) {
        json d = c.get("/api/v1/jobs/" + enc(j["name"].get<std::string>()));
        std::string metrics;
        for (auto& [k, v] : d["lastMetrics"].items()) metrics += fmt::format("{}{}={}", metrics.empty() ? "" : " ", k, formatValue(v["value"].get<double>()));
        rows.push_back({str(j, "name"), str(j, "user"), str(j, "replicas"), duration(j), metrics});
      }
      printTable(out, {"JOB", "USER", "REPLICAS", "DURATION", "METRICS"}, rows);
      if (tty) std::cout << "\033[H\033[J";
      std::cout << out.str() << std::flush;
      if (!tty) return 0;
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  });
}

int remoteGetQueues(const Remote& r) {
  return guarded([&] {
    Client c(r);
    json out = c.get("/api/v1/queues");
    if (emit(r, out["items"])) return 0;
    printQueues(std::cout, out["items"]);
    return 0;
  });
}

int remoteGetNodes(const Remote& r) {
  return guarded([&] {
    Client c(r);
    json items = c.get("/api/v1/nodes")["items"];
    if (emit(r, items)) return 0;
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : items)
      rows.push_back({str(n, "name"), str(n, "state"),
                      fmt::format("{}/{}", formatValue(n["allocated"]["cpu"].get<double>()), formatValue(n["allocatable"]["cpu"].get<double>())),
                      fmt::format("{:.1f}/{:.1f} GiB", n["allocated"]["memoryBytes"].get<double>() / 1073741824.0,
                                  n["allocatable"]["memoryBytes"].get<double>() / 1073741824.0),
                      fmt::format("{}/{}", n["allocated"]["gpu"].dump(), n["allocatable"]["gpu"].dump()), str(n, "stateReason")});
    printTable(std::cout, {"NAME", "STATE", "CPU", "MEMORY", "GPU", "REASON"}, rows);
    return 0;
  });
}

int remoteNode(const Remote& r, const std::string& action, const std::string& name, const std::string& reason) {
  return guarded([&] {
    Client c(r);
    std::string path = fmt::format("/api/v1/nodes/{}/{}", enc(name), action);
    if (!reason.empty()) path += "?reason=" + enc(reason);
    json out = c.post(path, json::object());
    if (!emit(r, out)) std::cout << fmt::format("node {} {}\n", name, str(out, "state"));
    return 0;
  });
}

namespace {
std::string ago(double t) {
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return formatDuration(now - t) + " ago";
}

// The notebook `name` among those the caller sees (an admin sees every
// user's: --owner picks one).
json findNotebook(Client& c, const std::string& name, const std::string& owner) {
  std::vector<json> found;
  json all = c.get("/api/v1/notebooks");
  for (const auto& n : all["items"])
    if (n["name"] == name && (owner.empty() || n["owner"] == owner || (owner == "_" && n["owner"] == ""))) found.push_back(n);
  if (found.empty()) throw RemoteError(kExitBadInput, fmt::format("no notebook named {}{} (see `trainyard notebook list`)", name,
                                                                  owner.empty() ? "" : " of " + owner));
  if (found.size() > 1) throw RemoteError(kExitBadInput, fmt::format("several users have a notebook named {}: name one with --owner", name));
  return found[0];
}

std::string notebookPath(const json& n) {
  std::string owner = n["owner"].get<std::string>();
  return fmt::format("/api/v1/notebooks/{}/{}", enc(owner.empty() ? "_" : owner), enc(n["name"].get<std::string>()));
}
}  // namespace

int remoteNotebook(const Remote& r, const std::string& action, const std::string& target, const std::string& owner,
                   const std::vector<std::string>& overrides) {
  return guarded([&] {
    Client c(r);
    if (action == "list") {
      json items = c.get("/api/v1/notebooks")["items"];
      if (emit(r, items)) return 0;
      std::vector<std::vector<std::string>> rows;
      for (const auto& n : items) {
        std::string owner_name = n["owner"].get<std::string>();
        rows.push_back({str(n, "name"), owner_name.empty() ? "-" : owner_name, str(n, "state"),
                        formatValue(n["resources"]["cpu"].get<double>()),
                        n["resources"]["memoryBytes"].get<double>() > 0
                            ? fmt::format("{:.1f}Gi", n["resources"]["memoryBytes"].get<double>() / 1073741824.0)
                            : "-",
                        n["resources"]["gpu"].dump(), n["lastActivity"].is_number() ? ago(n["lastActivity"].get<double>()) : "-",
                        r.url + str(n, "url")});
      }
      printTable(std::cout, {"NAME", "OWNER", "STATE", "CPU", "MEMORY", "GPU", "LAST ACTIVITY", "URL"}, rows);
      return 0;
    }
    if (action == "start" && fs::is_regular_file(target)) {
      std::string text = util::readFrom(target, 0, 16 << 20);
      json body{{"yaml", text}, {"file", target}, {"baseDir", fs::absolute(target).parent_path().string()}, {"overrides", overrides}};
      json out = c.post("/api/v1/notebooks", body);
      for (const auto& w : out.value("warnings", json::array())) std::cerr << "warning: " << w.get<std::string>() << "\n";
      if (!emit(r, out)) std::cout << fmt::format("notebook {} started ({}): {}{}\n", str(out, "name"), str(out, "phase"), r.url, str(out, "url"));
      return 0;
    }
    json n = findNotebook(c, target, owner);
    if (action == "open") {
      if (!emit(r, n)) std::cout << r.url << str(n, "url") << "\n";
      return 0;
    }
    json out = action == "delete" ? c.del(notebookPath(n)) : c.post(notebookPath(n) + "/" + action, json::object());
    if (!emit(r, out))
      std::cout << (action == "delete" ? fmt::format("notebook {} deleted (its workspace is kept)\n", target)
                    : action == "stop" ? fmt::format("notebook {} stopping (its workspace is kept)\n", target)
                                       : fmt::format("notebook {} started ({}): {}{}\n", target, str(out, "phase"), r.url, str(out, "url")));
    return 0;
  });
}

}  // namespace trainyard::cli
