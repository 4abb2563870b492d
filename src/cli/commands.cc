#include "cli/commands.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <sstream>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "artifacts/artifact_store.h"
#include "artifacts/run_record.h"
#include "metrics/progress.h"
#include "util/command.h"
#include "backend/byte_cursor.h"
#include "backend/backend.h"
#include "api/views.h"
#include "cli/output.h"
#include "cli/remote.h"
#include "cli/server_cmd.h"
#include "cli/serve_cmd.h"
#include "cli/progress.h"
#include "control/admission.h"
#include "control/experiment_controller.h"
#include "control/job_controller.h"
#include "spec/parser.h"
#include "spec/schema.h"
#include "spec/quantity.h"
#include "store/store.h"
#include "util/files.h"

namespace trainyard::cli {
namespace {

using api::jobJson;
using api::trialJson;
using api::experimentJson;
using api::objectiveText;
using api::paramsText;

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;
constexpr int kExitInternal = 3;
constexpr int kExitCancelled = 130;

std::atomic<int> g_signals{0};
void onSignal(int) { g_signals.fetch_add(1); }

struct Globals {
  std::string data_dir;
  std::string output = "table";
};

std::string defaultDataDir() {
  const char* env = std::getenv("TRAINYARD_DATA_DIR");
  return env && *env ? env : "./.trainyard";
}

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

store::JobRecord requireJob(store::Store& st, const std::string& name) {
  auto job = st.getJob(name);
  if (!job) throw UserError(fmt::format("job \"{}\" not found (see `trainyard get jobs`)", name));
  return *job;
}

double jobDuration(const store::JobRecord& j) {
  if (j.started_at <= 0) return 0;
  return (j.finished_at > 0 ? j.finished_at : store::nowSeconds()) - j.started_at;
}

void emit(const Globals& g, const json& j, const std::function<void()>& table) {
  switch (parseOutputFormat(g.output)) {
    case OutputFormat::Json: printJson(std::cout, j); break;
    case OutputFormat::Yaml: printYaml(std::cout, j); break;
    case OutputFormat::Table: table(); break;
  }
}

// ---------------------------------------------------------------- run

struct RunOptions {
  std::string file;
  std::vector<std::string> overrides;
  bool quiet = false;
  bool resume = false;
  double grace_seconds = 10;
  std::string backend = "local";
  ClusterFlags cluster;
};

// What `trainyard run` drives its job or experiment with: the store, a local
// backend whose replicas die with this process, and the controller options.
struct ForegroundRuntime {
  ForegroundRuntime(const Globals& g, const RunOptions& o) : store(store::openStore(g.data_dir)) {
    backend::LocalBackendOptions bo = backend::localBackendOptionsFromEnv();
    bo.tie_to_parent = true;
    applyClusterFlags(o.cluster, bo, options);
    auto kube = o.cluster.kube;
    kube.log_root = (fs::absolute(g.data_dir) / "logs").string();
    auto slurm = o.cluster.slurm;
    slurm.log_root = kube.log_root;
    slurm.trainyard = fs::read_symlink("/proc/self/exe").string();
    try {
      backend = backend::backendFactory(o.backend, bo, kube, slurm)();
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {  // a kubeconfig that cannot be read, a plugin missing
      throw UserError(fmt::format("--backend {}: {}", o.backend, e.what()));
    }
    options.data_dir = fs::absolute(g.data_dir).lexically_normal().string();
    options.grace = std::chrono::milliseconds(static_cast<int64_t>(o.grace_seconds * 1000));
  }
  std::unique_ptr<store::Store> store;
  std::unique_ptr<backend::Backend> backend;
  control::ControllerOptions options;
};

void installSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the wait returns at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
}

std::string freeName(store::Store& st, const std::string& base) {
  if (!st.getJob(base)) return base;
  for (int i = 2;; ++i) {
    std::string suffix = fmt::format("-{}", i);
    std::string name = base.substr(0, 63 - suffix.size()) + suffix;
    if (!st.getJob(name)) return name;
  }
}

void printWarnings(const spec::LoadedSpec& loaded) {
  for (const auto& w : loaded.warnings) std::cerr << "warning: " << w << "\n";
}

int cmdRunExperiment(const Globals& g, const RunOptions& o, spec::LoadedSpec& loaded);

int runJobSpec(const Globals& g, const RunOptions& o, spec::TrainJobSpec spec);

int cmdRun(const Globals& g, const RunOptions& o) {
  spec::LoadedSpec loaded = spec::loadSpecFile(o.file, o.overrides);
  printWarnings(loaded);
  if (loaded.notebook)
    throw UserError(fmt::format("{} is a Notebook: notebooks run behind a server's proxy; start it with "
                                "`trainyard notebook start {} --server URL`",
                                o.file, o.file));
  if (loaded.queue)
    throw UserError(fmt::format("{} is a {}: apply it with `trainyard apply {}`", o.file, loaded.kind, o.file));
  if (loaded.experiment) return cmdRunExperiment(g, o, loaded);
  return runJobSpec(g, o, loaded.job);
}

// `trainyard rerun JOB`: a new job from JOB's resolved spec, its images
// pinned to the digests they had, with a warning for what cannot be the
// same (artifacts/run_record.h).
int cmdRerun(const Globals& g, const RunOptions& o, const std::string& name) {
  artifacts::Rerun again;
  {
    auto st = store::openStore(g.data_dir);
    auto job = requireJob(*st, name);
    again = artifacts::rerunOf(name, job.spec, artifacts::readRunRecord(job.log_dir));
  }
  for (const auto& w : again.warnings) std::cerr << "trainyard: rerun: " << w << "\n";
  return runJobSpec(g, o, again.spec);
}

int runJobSpec(const Globals& g, const RunOptions& o, spec::TrainJobSpec spec) {
  ForegroundRuntime rt(g, o);
  auto& st = rt.store;
  auto& be = rt.backend;
  control::JobController ctl(*st, *be, rt.options);

  std::string wanted = spec.name;
  store::JobRecord job;
  for (int tries = 0;; ++tries) {
    spec.name = freeName(*st, wanted);
    try {
      job = ctl.submit(spec);
      break;
    } catch (const store::NameConflict&) {
      if (tries > 20) throw;  // another process keeps taking the name we pick
    }
  }
  if (job.name != wanted) std::cerr << fmt::format("trainyard: a job named {} exists; this run is {}\n", wanted, job.name);
  if (job.suspended)
    std::cerr << fmt::format("trainyard: job {} is suspended (runPolicy.suspend): it waits until `trainyard resume {}` "
                             "(from another shell)\n", job.name, job.name);

  const bool tty = isatty(STDERR_FILENO);
  const bool multi = spec.totalReplicas() > 1;
  std::string shown;  // the progress line currently on screen
  auto clearProgress = [&] {
    if (tty && !shown.empty()) std::cerr << "\r\033[K" << std::flush;
  };
  std::map<std::string, std::string> partial;
  if (!o.quiet) {
    ctl.on_log = [&](const std::string& replica, std::string_view bytes) {
      clearProgress();
      std::string& buf = partial[replica];
      buf.append(bytes);
      size_t start = 0, nl;
      std::string out;
      while ((nl = buf.find('\n', start)) != std::string::npos) {
        if (multi) out += "[" + replica + "] ";
        out.append(buf, start, nl - start + 1);
        start = nl + 1;
      }
      buf.erase(0, start);
      std::cout << out << std::flush;
      if (tty && !shown.empty()) std::cerr << shown << std::flush;
    };
  }

  installSignalHandlers();

  std::string last_phase;
  int seen_signals = 0;
  auto last_draw = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  for (;;) {
    int sigs = g_signals.load();
    if (sigs > seen_signals) {
      if (seen_signals == 0) {
        clearProgress();
        std::cerr << fmt::format("trainyard: cancelling {} (SIGTERM to its processes, SIGKILL after {}s; "
                                 "interrupt again to kill now)\n", job.name, o.grace_seconds);
        st->requestCancel(job.id);
      } else {
        be->stop(job.uid, std::chrono::milliseconds(0));
      }
      seen_signals = sigs;
    }
    job = ctl.reconcile(job.id);
    if (job.phase != last_phase) {
      if (!tty) std::cerr << fmt::format("trainyard: {} {}{}\n", job.name, job.phase,
                                         job.message.empty() ? "" : " - " + job.message);
      last_phase = job.phase;
    }
    if (store::isTerminal(job.phase)) break;
    auto now = std::chrono::steady_clock::now();
    if (tty && now - last_draw > std::chrono::milliseconds(250)) {
      ProgressInput pi{job.name, job.phase == store::kQueued ? "Queued: " + job.message : job.phase, job.restarts,
                       jobDuration(job), ctl.latest(job.id)};
      std::string line = renderProgress(pi);
      std::cerr << "\r\033[K" << line << std::flush;
      shown = line;
      last_draw = now;
    }
    ctl.wait(std::chrono::milliseconds(job.phase == store::kQueued ? 500 : 200));
  }
  clearProgress();
  for (auto& [replica, rest] : partial)
    if (!rest.empty()) std::cout << (multi ? "[" + replica + "] " : "") << rest << "\n";
  std::cout << std::flush;

  // Summary.
  auto last = st->lastMetrics(job.id);
  std::string metrics;
  for (const auto& m : last) metrics += fmt::format(" {}={}", m.name, formatValue(m.value));
  std::cerr << fmt::format("\n{} {}{} after {} ({} restarts)\n", job.name, job.phase,
                           job.phase == store::kSucceeded ? "" : ": " + job.reason + " - " + job.message,
                           formatDuration(jobDuration(job)), job.restarts);
  if (!metrics.empty()) std::cerr << "  final metrics:" << metrics << "\n";
  std::cerr << fmt::format("  logs:    trainyard logs {}   ({})\n", job.name, job.log_dir);
  std::cerr << fmt::format("  metrics: trainyard get metrics {} --all\n", job.name);
  std::cerr << fmt::format("  outputs: {}\n", job.outputs_dir);
  for (const auto& w : be->warnings()) std::cerr << "  warning: " << w << "\n";

  if (job.phase == store::kSucceeded) return 0;
  if (job.reason == "Cancelled") return kExitCancelled;
  return kExitFailed;
}


// ---------------------------------------------------------------- experiments

std::vector<std::vector<std::string>> trialRows(const spec::ExperimentSpec& spec, const std::vector<store::TrialRecord>& trials,
                                                control::JobController* live, store::Store& st) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : trials) {
    std::string obj = objectiveText(spec, t);
    if (obj.empty() && live && t.state == store::kTrialRunning)
      if (auto job = st.getJob(t.job_name)) {
        const auto& latest = live->latest(job->id);
        auto it = latest.find(spec.objectives[0].metric);
        if (it != latest.end()) obj = fmt::format("{}={} (step {})", it->first, formatValue(it->second.value), it->second.step);
      }
    rows.push_back({std::to_string(t.number), t.state, paramsText(t), obj.empty() ? "-" : obj,
                    t.rung >= 0 ? std::to_string(t.rung) : "-", t.job_name});
  }
  return rows;
}

std::string freeExperimentName(store::Store& st, const std::string& base) {
  for (int i = 2;; ++i) {
    std::string name = fmt::format("{}-{}", base.substr(0, 47), i);
    if (!st.getExperiment(name)) return name;
  }
}

int cmdRunExperiment(const Globals& g, const RunOptions& o, spec::LoadedSpec& loaded) {
  spec::ExperimentSpec spec = *loaded.experiment;
  ForegroundRuntime rt(g, o);
  auto& st = rt.store;
  auto& be = rt.backend;
  control::JobController jobs(*st, *be, rt.options);
  control::ExperimentController exps(*st, jobs, rt.options);

  store::ExperimentRecord e;
  auto existing = st->getExperiment(spec.name);
  if (existing && (!store::isTerminal(existing->phase) || o.resume)) {
    try {
      e = exps.resume(spec.name, o.resume);
    } catch (const std::runtime_error& err) {
      throw UserError(err.what());
    }
    auto kept = st->trials(e.id);
    int finished = 0;
    for (const auto& t : kept) finished += t.state != store::kTrialRunning;
    std::cerr << fmt::format("trainyard: resuming experiment {} ({} trials finished, {} to run again)\n", e.name, finished,
                             kept.size() - finished);
  } else {
    if (existing) {
      spec.name = freeExperimentName(*st, spec.name);
      std::cerr << fmt::format("trainyard: experiment {} already finished; this run is {}\n", existing->name, spec.name);
    }
    e = exps.submit(spec);
  }

  const bool tty = isatty(STDERR_FILENO);
  if (!tty)
    exps.on_trial = [&](const store::TrialRecord& t) {
      std::string obj = objectiveText(e.spec, t);
      std::cerr << fmt::format("trainyard: trial {} {}{}{} | {}\n", t.number, t.state, obj.empty() ? "" : " ", obj,
                               t.state == store::kTrialRunning ? paramsText(t) : t.message);
    };
  installSignalHandlers();
  int seen_signals = 0;
  size_t drawn = 0;
  auto last_draw = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  for (;;) {
    int sigs = g_signals.load();
    if (sigs > seen_signals) {
      if (seen_signals == 0) {
        std::cerr << fmt::format("\ntrainyard: cancelling experiment {} (its running trials are stopped)\n", e.name);
        st->requestExperimentCancel(e.id);
      } else {
        for (const auto& t : st->trials(e.id))
          if (auto job = st->getJob(t.job_name)) be->stop(job->uid, std::chrono::milliseconds(0));
      }
      seen_signals = sigs;
    }
    e = exps.reconcile(e.id);
    if (store::isTerminal(e.phase)) break;
    auto now = std::chrono::steady_clock::now();
    if (tty && now - last_draw > std::chrono::milliseconds(500)) {
      auto trials = st->trials(e.id);
      int done = 0, running = 0;
      for (const auto& t : trials) (t.state == store::kTrialRunning ? running : done)++;
      double elapsed = store::nowSeconds() - e.created_at;
      std::string head = fmt::format("{} {} | trials {}/{} done, {} running | elapsed {}", e.name, e.phase, done,
                                     e.spec.max_trials, running, formatDuration(elapsed));
      int best = control::ExperimentController::bestTrial(e.spec, trials);
      if (best >= 0) head += fmt::format(" | best #{} {}", trials[best].number, objectiveText(e.spec, trials[best]));
      if (done > 0 && done < e.spec.max_trials)
        head += " | ETA " + formatDuration(elapsed / done * (e.spec.max_trials - done));
      // The most recent trials, newest last.
      std::vector<store::TrialRecord> shown(trials.end() - std::min<size_t>(trials.size(), 12), trials.end());
      std::ostringstream table;
      printTable(table, {"TRIAL", "STATE", "PARAMETERS", "OBJECTIVE", "RUNG", "JOB"}, trialRows(e.spec, shown, &jobs, *st));
      std::string block = head + "\n" + table.str();
      if (drawn > 0) std::cerr << "\033[" << drawn << "F\033[J";
      std::cerr << block << std::flush;
      drawn = static_cast<size_t>(std::count(block.begin(), block.end(), '\n'));
      last_draw = now;
    }
    jobs.wait(std::chrono::milliseconds(200));
  }
  if (tty && drawn > 0) std::cerr << "\033[" << drawn << "F\033[J";

  auto trials = st->trials(e.id);
  printTable(std::cerr, {"TRIAL", "STATE", "PARAMETERS", "OBJECTIVE", "RUNG", "JOB"}, trialRows(e.spec, trials, nullptr, *st));
  std::cerr << fmt::format("\nexperiment {} {}: {} - {} ({} trials, {})\n", e.name, e.phase, e.reason, e.message,
                           trials.size(), formatDuration(e.finished_at - e.created_at));
  int best = control::ExperimentController::bestTrial(e.spec, trials);
  if (e.spec.objectives.size() > 1) {
    std::cerr << "  Pareto front (trials):";
    for (int n : control::ExperimentController::paretoFront(e.spec, trials)) std::cerr << " #" << n;
    std::cerr << "\n";
  } else if (best >= 0) {
    const auto& b = trials[best];
    std::cerr << fmt::format("  best trial #{}: {}\n  parameters: {}\n", b.number, objectiveText(e.spec, b), paramsText(b));
    if (auto job = st->getJob(b.job_name)) {
      std::string model = (fs::path(job->outputs_dir) / "model.pt").string();
      std::cerr << fmt::format("  job: {} (trainyard describe job {})\n  outputs: {}{}\n", job->name, job->name,
                               job->outputs_dir, fs::exists(model) ? "  (model: " + model + ")" : "");
    }
  } else {
    std::cerr << "  no trial succeeded with the objective reported\n";
  }
  std::cerr << fmt::format("  trials: trainyard get trials {}\n", e.name);
  if (e.phase == store::kSucceeded) return 0;
  if (e.reason == "Cancelled") return kExitCancelled;
  return kExitFailed;
}

int cmdGetExperiments(const Globals& g) {
  auto st = store::openStore(g.data_dir);
  auto list = st->listExperiments();
  json arr = json::array();
  for (const auto& e : list) arr.push_back(experimentJson(*st, e, false));
  emit(g, json{{"items", arr}}, [&] {
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& j = arr[i];
      std::string best = j.contains("best") ? fmt::format("#{} {}", j["best"]["trial"].get<int>(), j["best"]["objective"].dump()) : "-";
      rows.push_back({list[i].name, list[i].phase, list[i].reason, fmt::format("{}/{}", j["trials"].get<size_t>(), list[i].spec.max_trials),
                      best, formatTime(list[i].created_at)});
    }
    printTable(std::cout, {"NAME", "PHASE", "REASON", "TRIALS", "BEST", "CREATED"}, rows);
  });
  return 0;
}

store::ExperimentRecord requireExperiment(store::Store& st, const std::string& name) {
  auto e = st.getExperiment(name);
  if (!e) throw UserError(fmt::format("experiment \"{}\" not found (see `trainyard get experiments`)", name));
  return *e;
}

int cmdGetTrials(const Globals& g, const std::string& name) {
  auto st = store::openStore(g.data_dir);
  auto e = requireExperiment(*st, name);
  auto trials = st->trials(e.id);
  json arr = json::array();
  for (const auto& t : trials) arr.push_back(trialJson(e.spec, t, st.get()));
  emit(g, json{{"experiment", e.name}, {"items", arr}}, [&] {
    printTable(std::cout, {"TRIAL", "STATE", "PARAMETERS", "OBJECTIVE", "RUNG", "JOB"}, trialRows(e.spec, trials, nullptr, *st));
  });
  return 0;
}

int cmdDescribeExperiment(const Globals& g, const std::string& name) {
  auto st = store::openStore(g.data_dir);
  auto e = requireExperiment(*st, name);
  json j = experimentJson(*st, e, true);
  emit(g, j, [&] {
    auto& o = std::cout;
    const auto& s = e.spec;
    o << fmt::format("Name:             {}\nPhase:            {}\nReason:           {}\nMessage:          {}\n", e.name,
                     e.phase, e.reason, e.message);
    std::string objectives;
    for (const auto& ob : s.objectives)
      objectives += fmt::format("{}{} {} ({})", objectives.empty() ? "" : ", ", ob.maximize ? "maximize" : "minimize",
                                ob.metric, ob.strategy.empty() ? (ob.maximize ? "max" : "min") : ob.strategy);
    o << fmt::format("Objective:        {}{}\n", objectives, s.target ? fmt::format(", target {}", *s.target) : "");
    o << fmt::format("Algorithm:        {}\nEarly stopping:   {}\n", s.algorithm, s.early_stopping.empty() ? "none" : s.early_stopping);
    o << fmt::format("Trials:           {} of max {} ({} in parallel, at most {} failed), seed {}\n", j["trials"].get<size_t>(),
                     s.max_trials, s.parallel_trials, s.max_failed_trials, s.seed);
    o << fmt::format("Created:          {}\nFinished:         {}\nSource:           {}\n", formatTime(e.created_at),
                     formatTime(e.finished_at), s.source_file);
    o << "\nParameters:\n";
    std::vector<std::vector<std::string>> rows;
    static const char* kTypes[] = {"double", "int", "categorical", "discrete"};
    for (const auto& p : s.space.params) {
      std::string range;
      if (!p.values.empty()) for (const auto& v : p.values) range += (range.empty() ? "" : ", ") + v;
      else range = fmt::format("[{}, {}]{}{}", formatValue(p.min), formatValue(p.max), p.step > 0 ? fmt::format(" step {}", formatValue(p.step)) : "", p.log ? " log" : "");
      rows.push_back({"  " + p.name, kTypes[static_cast<int>(p.type)], range});
    }
    printTable(o, {"  NAME", "TYPE", "RANGE"}, rows);
    auto trials = st->trials(e.id);
    if (j.contains("best")) {
      const auto& b = j["best"];
      o << fmt::format("\nBest trial:       #{} {} ({})\n  outputs:        {}\n", b["trial"].get<int>(), b["objective"].dump(),
                       b["parameters"].dump(), b.value("outputsDir", ""));
    }
    if (j.contains("paretoFront")) {
      o << "\nPareto front:\n";
      std::vector<std::vector<std::string>> front;
      for (int n : j["paretoFront"]) {
        const auto& t = trials[static_cast<size_t>(n)];
        front.push_back({"  #" + std::to_string(n), objectiveText(s, t), paramsText(t)});
      }
      printTable(o, {"  TRIAL", "OBJECTIVES", "PARAMETERS"}, front);
    }
    o << "\nTrials:\n";
    printTable(o, {"TRIAL", "STATE", "PARAMETERS", "OBJECTIVE", "RUNG", "JOB"}, trialRows(s, trials, nullptr, *st));
  });
  return 0;
}

int cmdCancelExperiment(const Globals& g, const std::string& name) {
  auto st = store::openStore(g.data_dir);
  auto e = requireExperiment(*st, name);
  st->requestExperimentCancel(e.id);
  std::cout << fmt::format("experiment {} cancellation requested\n", name);
  return 0;
}

// ---------------------------------------------------------------- get / describe / logs

int cmdGetJobs(const Globals& g, const std::string& name, const std::string& phase, bool trials = false) {
  auto st = store::openStore(g.data_dir);
  std::vector<store::JobRecord> jobs;
  if (!name.empty()) jobs.push_back(requireJob(*st, name));
  else jobs = st->listJobs(phase);
  // Experiments' trial jobs are listed by `get trials EXP` (or with --all), as the dashboard does.
  if (name.empty() && !trials)
    std::erase_if(jobs, [](const store::JobRecord& j) { return j.spec.labels.count(store::kExperimentLabel) > 0; });
  json arr = json::array();
  for (const auto& j : jobs) arr.push_back(jobJson(*st, j, false));
  emit(g, name.empty() ? json{{"items", arr}} : arr[0], [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& j : jobs) {
      // What it reported, not its counters: the last value of up to 3 results.
      std::string results;
      int shown = 0;
      for (const auto& m : st->lastMetrics(j.id)) {
        if (metrics::isCounter(m.name)) continue;
        if (++shown > 3) {
          results += " ...";
          break;
        }
        results += (results.empty() ? "" : " ") + m.name + "=" + formatValue(m.value);
      }
      rows.push_back({j.name, j.phase, j.reason, std::to_string(j.restarts), formatTime(j.created_at),
                      j.started_at > 0 ? formatDuration(jobDuration(j)) : "-", results.empty() ? "-" : results});
    }
    printTable(std::cout, {"NAME", "PHASE", "REASON", "RESTARTS", "CREATED", "DURATION", "RESULTS"}, rows);
  });
  return 0;
}

int cmdGetMetrics(const Globals& g, const std::string& name, bool all, const std::string& metric) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  auto points = all || !metric.empty() ? st->metrics(job.id, metric) : st->lastMetrics(job.id);
  json arr = json::array();
  for (const auto& p : points) arr.push_back({{"name", p.name}, {"value", p.value}, {"step", p.step}, {"time", p.timestamp}});
  emit(g, json{{"job", job.name}, {"metrics", arr}}, [&] {
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : points)
      rows.push_back({p.name, std::to_string(p.step), formatValue(p.value), formatTime(p.timestamp)});
    printTable(std::cout, {"METRIC", "STEP", "VALUE", "TIME"}, rows);
  });
  return 0;
}

int cmdDescribeJob(const Globals& g, const std::string& name) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  json j = jobJson(*st, job, true);
  emit(g, j, [&] {
    auto& o = std::cout;
    o << fmt::format("Name:           {}\nUID:            {}\nPhase:          {}\n", job.name, job.uid, job.phase);
    if (!job.reason.empty()) o << fmt::format("Reason:         {}\n", job.reason);
    if (!job.message.empty()) o << fmt::format("Message:        {}\n", job.message);
    o << fmt::format("Source:         {}\nKind:           {} (framework {})\n", job.spec.source_file, job.spec.kind,
                     job.spec.framework);
    // One block per role: a single-replica job has one, "worker".
    for (const auto& role : job.spec.roles) {
      std::string cmd;
      for (const auto& a : role.command) cmd += a + " ";
      for (const auto& a : role.args) cmd += a + " ";
      o << fmt::format("Role {} x {}:\n  Command:      {}\n  Working dir:  {}\n", role.name, role.replicas,
                       cmd.empty() ? "(slots for the launcher's mpirun)" : cmd, role.working_dir);
      o << fmt::format("  Resources:    cpu {}, memory {}, gpu {} per replica\n",
                       spec::formatCpuMillis(role.resources.cpu_millis),
                       role.resources.memory_bytes ? spec::formatBytes(role.resources.memory_bytes) : "unlimited",
                       role.resources.gpu);
    }
    o << fmt::format("Restart policy: {} (backoffLimit {}, restarts {})\n", spec::toString(job.spec.restart_policy),
                     job.spec.backoff_limit, job.restarts);
    if (job.spec.active_deadline_seconds) o << fmt::format("Deadline:       {} s\n", *job.spec.active_deadline_seconds);
    o << fmt::format("Priority:       {} (queue {})\nCreated:        {}\nStarted:        {}\nFinished:       {}\n",
                     job.spec.priority, job.spec.queue, formatTime(job.created_at), formatTime(job.started_at),
                     formatTime(job.finished_at));
    o << fmt::format("Duration:       {}\nOutputs:        {}\nLogs:           {}\n", formatDuration(jobDuration(job)),
                     job.outputs_dir, job.log_dir);
    if (!j["placements"].empty()) {
      std::map<std::string, std::string> on;
      for (const auto& p : j["placements"]) on[p["node"].get<std::string>()] += (on[p["node"].get<std::string>()].empty() ? "" : ", ") + p["replica"].get<std::string>();
      std::string text;
      for (const auto& [n, reps] : on) text += fmt::format("{}{} ({})", text.empty() ? "" : "; ", n, reps);
      o << fmt::format("Placement:      {}\n", text);
    }
    o << "\nConditions:\n";
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : st->conditions(job.id)) rows.push_back({"  " + c.type, c.reason, formatTime(c.time), c.message});
    printTable(o, {"  TYPE", "REASON", "TIME", "MESSAGE"}, rows);
    o << "\nAttempts:\n";
    rows.clear();
    for (const auto& a : st->attempts(job.id))
      rows.push_back({"  " + std::to_string(a.attempt), a.replica, a.state, a.handle.empty() ? "-" : a.handle,
                      a.exit_code ? std::to_string(*a.exit_code) : "-", a.signal ? std::to_string(*a.signal) : "-",
                      a.reason, formatTime(a.started_at), formatTime(a.finished_at)});
    printTable(o, {"  ATTEMPT", "REPLICA", "STATE", "HANDLE", "EXIT", "SIGNAL", "REASON", "STARTED", "FINISHED"}, rows);
    o << "\nEvents:\n";
    rows.clear();
    for (const auto& e : st->events(job.id)) rows.push_back({"  " + formatTime(e.time), e.type, e.reason, e.message});
    printTable(o, {"  TIME", "TYPE", "REASON", "MESSAGE"}, rows);
    auto last = st->lastMetrics(job.id);
    if (!last.empty()) {
      o << "\nLast metrics:\n";
      rows.clear();
      for (const auto& m : last) rows.push_back({"  " + m.name, formatValue(m.value), std::to_string(m.step)});
      printTable(o, {"  METRIC", "VALUE", "STEP"}, rows);
    }
    printRunRecord(o, j["record"]);
  });
  return 0;
}

// A job's outputs from the data directory, through the same artifact
// store the server's API reads.
int cmdOutputs(const Globals& g, const std::string& name, const std::string& path, const std::string& to) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  if (path.empty()) {
    json list = api::outputsJson(job);
    emit(g, list, [&] { printOutputs(std::cout, list); });
    return 0;
  }
  auto outputs = artifacts::makeDirectoryStore();
  try {
    uint64_t size = outputs->stat(job.outputs_dir, path).size;
    std::ofstream file;
    if (!to.empty() && to != "-") {
      file.open(to, std::ios::binary | std::ios::trunc);
      if (!file) throw UserError(fmt::format("cannot write {}", to));
    }
    std::ostream& out = file.is_open() ? static_cast<std::ostream&>(file) : std::cout;
    for (uint64_t at = 0; at < size;) {
      std::string piece = outputs->read(job.outputs_dir, path, at, static_cast<size_t>(std::min<uint64_t>(size - at, 1 << 20)));
      if (piece.empty()) break;
      out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
      at += piece.size();
    }
    out.flush();
  } catch (const artifacts::ArtifactError& e) {
    throw UserError(fmt::format("job {}: {}", name, e.what()));
  }
  return 0;
}

int cmdLogs(const Globals& g, const std::string& name, std::string replica, int attempt, bool follow) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  auto attempts = st->attempts(job.id);
  if (attempts.empty()) throw UserError(fmt::format("job {} has not started yet ({})", name, job.phase));
  if (attempt < 0) attempt = attempts.back().attempt;
  if (replica.empty()) replica = attempts.front().replica;
  const store::AttemptRecord* chosen = nullptr;
  std::string known;
  for (const auto& a : attempts) {
    if (a.attempt == attempt && a.replica == replica) chosen = &a;
    if (a.attempt == attempt) known += " " + a.replica;
  }
  if (!chosen)
    throw UserError(fmt::format("job {} has no replica \"{}\" in attempt {} (replicas:{})", name, replica, attempt, known));
  // The local backend's log source, by cursor, as the server reads it.
  std::string cursor;
  auto read = [&] {
    auto chunk = backend::readLocalLog(job.log_dir, replica, attempt, cursor, 1 << 20);
    cursor = chunk.next;
    std::cout << chunk.bytes << std::flush;
    return !chunk.bytes.empty();
  };
  for (;;) {
    if (read()) continue;
    if (!follow) break;
    auto now = st->getJobById(job.id);
    if (!now || store::isTerminal(now->phase)) {
      while (read()) {
      }
      break;
    }
    if (now->restarts != attempt) break;  // a new attempt started; its log is another one
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling a log; not synchronisation
  }
  return 0;
}

int cmdCancel(const Globals& g, const std::string& name) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  if (store::isTerminal(job.phase)) {
    std::cout << fmt::format("job {} already finished ({})\n", name, job.phase);
    return 0;
  }
  st->requestCancel(job.id);
  std::cout << fmt::format("job {} cancellation requested\n", name);
  return 0;
}

int cmdSuspend(const Globals& g, const std::string& name, bool suspend) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  if (store::isTerminal(job.phase))
    throw UserError(fmt::format("job {} is {}; only a queued or running job can be {}", name, job.phase,
                                suspend ? "suspended" : "resumed"));
  st->setSuspended(job.id, suspend);
  std::cout << fmt::format("job {} {}\n", name,
                           suspend ? "suspended (its replicas stop; it stays queued until `trainyard resume`)" : "resumed (queued to start)");
  return 0;
}

int cmdDeleteJob(const Globals& g, const std::string& name) {
  auto st = store::openStore(g.data_dir);
  auto job = requireJob(*st, name);
  if (!store::isTerminal(job.phase))
    throw UserError(fmt::format("job {} is {}; cancel it first (`trainyard cancel {}`)", name, job.phase, name));
  st->deleteJob(job.id);
  std::error_code ec;
  fs::remove_all(job.log_dir, ec);
  std::cout << fmt::format("job {} deleted (outputs kept in {})\n", name, job.outputs_dir);
  return 0;
}

// The CRDs of operator mode, from the one schema the parser uses:
// printed, written to a directory, or checked against one (exit 1 when a
// file differs: deploy/crds must be regenerated).
int cmdCrds(const std::string& out_dir, const std::string& check_dir) {
  int stale = 0;
  for (const auto& kind : spec::schema::crdKinds()) {
    std::string text = spec::schema::crdYaml(kind);
    std::string name = spec::schema::crdFileName(kind);
    if (!check_dir.empty()) {
      std::string have = util::readFrom((fs::path(check_dir) / name).string(), 0, text.size() + 1);
      if (have != text) {
        std::cerr << fmt::format("{}: differs from what `trainyard crds` makes from the schema; run `trainyard crds --out {}`\n",
                                 (fs::path(check_dir) / name).string(), check_dir);
        stale = 1;
      }
    } else if (!out_dir.empty()) {
      fs::create_directories(out_dir);
      std::ofstream((fs::path(out_dir) / name), std::ios::binary) << text;
      std::cout << (fs::path(out_dir) / name).string() << "\n";
    } else {
      std::cout << "---\n" << text;
    }
  }
  return stale;
}

int cmdValidate(const std::string& file, const std::vector<std::string>& overrides) {
  auto loaded = spec::loadSpecFile(file, overrides);
  printWarnings(loaded);
  if (loaded.experiment) {
    const auto& e = *loaded.experiment;
    std::cout << fmt::format("{}: valid {} \"{}\" ({} parameters, {}{}, up to {} trials, {} in parallel)\n", file,
                             loaded.kind, e.name, e.space.size(), e.algorithm,
                             e.early_stopping.empty() ? "" : " + " + e.early_stopping, e.max_trials, e.parallel_trials);
    return 0;
  }
  if (loaded.queue) {
    std::cout << fmt::format("{}: valid {} \"{}\" (apply it with `trainyard apply`)\n", file, loaded.kind, loaded.queue->name);
    return 0;
  }
  if (loaded.notebook) {
    std::cout << fmt::format("{}: valid Notebook \"{}\" (start it with `trainyard notebook start`)\n", file, loaded.notebook->name);
    return 0;
  }
  std::string roles;
  for (const auto& r : loaded.job.roles) roles += fmt::format("{}{} x{}", roles.empty() ? "" : ", ", r.name, r.replicas);
  std::cout << fmt::format("{}: valid {} \"{}\" ({}: {})\n", file, loaded.kind, loaded.job.name,
                           loaded.job.framework, roles);
  return 0;
}

}  // namespace

namespace {
void addClusterFlags(CLI::App& cmd, ClusterFlags& f) {
  cmd.add_option("--nodes", f.nodes, "Split this machine into N virtual nodes (node-1..node-N) for multi-node gangs")
      ->check(CLI::Range(1, 256))->capture_default_str();
  cmd.add_flag("--pin-cpus", f.pin_cpus, "With --nodes: run each replica on its virtual node's CPUs only");
  cmd.add_flag("--gpu-sharing", f.gpu_sharing, "Accept fractional GPU requests (gpu: 0.25) that share a device");
  cmd.add_flag("--no-preemption", f.no_preemption, "Never stop running jobs for higher-priority ones or to reclaim quota");
  cmd.add_flag("--no-backfill", f.no_backfill, "Never start a job ahead of a reserved larger one");
  cmd.add_option("--kubeconfig", f.kube.kubeconfig, "--backend kubernetes: the kubeconfig (default: KUBECONFIG, ~/.kube/config, or the pod's service account)");
  cmd.add_option("--context", f.kube.context, "--backend kubernetes: the kubeconfig context (default: its current-context)");
  cmd.add_option("--namespace", f.kube.ns, "--backend kubernetes: where pods go (default: the context's namespace)");
  cmd.add_flag("--host-network", f.kube.host_network, "--backend kubernetes: pods use their node's network (clusters without a pod network)");
  cmd.add_option("--gang", f.kube.gang,
                 "--backend kubernetes: who places pods: trainyard (its scheduler binds each gang, all or none) or default "
                 "(kube-scheduler; a gang not all started within startTimeoutSeconds is torn down and queued again)")
      ->check(CLI::IsMember({"trainyard", "default"}))->capture_default_str();
  cmd.add_option("--pod-group", f.kube.pod_group, "--backend kubernetes --gang default: a PodGroup per gang for volcano or coscheduling")
      ->check(CLI::IsMember({"volcano", "coscheduling"}));
  cmd.add_option("--eviction-seconds", f.kube.eviction_seconds,
                 "--backend kubernetes: how long a replica stays on a node that stopped answering before it is evicted and its gang restarts")
      ->check(CLI::Range(0, 86400))->capture_default_str();
  cmd.add_option("--slurm-partition", f.slurm.partition, "--backend slurm: the partition of jobs whose spec.slurm names none");
  cmd.add_option("--slurm-account", f.slurm.account, "--backend slurm: the account of jobs whose spec.slurm names none");
  cmd.add_option("--slurm-qos", f.slurm.qos, "--backend slurm: the QOS of jobs whose spec.slurm names none");
  cmd.add_option("--batch-backlog", f.batch_backlog,
                 "--backend slurm: submit up to N times the cluster's CPUs and memory, so Slurm starts the next job "
                 "as soon as room frees (1: only what fits now)")
      ->check(CLI::Range(1, 100))->capture_default_str();
  cmd.add_option("--containers", f.containers,
                 "--backend local: where replicas that name an image run: podman (in a container of that image), "
                 "host (the command on this machine, the image ignored), or auto (podman when it is installed)")
      ->check(CLI::IsMember({"auto", "podman", "host"}))->capture_default_str();
}

// Local `apply`: a Queue or Cohort into the store of --data-dir.
int cmdApply(const Globals& g, const std::string& file, const std::vector<std::string>& sets) {
  auto loaded = spec::loadSpecFile(file, sets);
  printWarnings(loaded);
  if (!loaded.queue)
    throw UserError(fmt::format("{} is a {}: `apply` takes a Queue, Cohort or PriorityClass; run a job with `trainyard run` or `submit`", file, loaded.kind));
  auto st = store::openStore(g.data_dir);
  control::applyQueue(*st, *loaded.queue, "");
  std::cout << fmt::format("{} {} applied\n", loaded.queue->kind, loaded.queue->name);
  return 0;
}

int cmdGetQueues(const Globals& g) {
  auto st = store::openStore(g.data_dir);
  json q = api::queuesJson(*st, std::nullopt);
  emit(g, q["items"], [&] { printQueues(std::cout, q["items"]); });
  return 0;
}

// Local `node`: what `trainyard run --nodes`/`server` in this data dir will see.
int cmdNode(const Globals& g, const std::string& action, const std::string& name, const std::string& reason) {
  auto st = store::openStore(g.data_dir);
  std::string state = action == "drain" ? "Drained" : action == "down" ? "Down" : "Ready";
  st->setNodeState({name, state, reason.empty() ? action + " from the command line" : reason, store::nowSeconds()});
  std::cout << fmt::format("node {} {}\n", name, state);
  return 0;
}

void addAccessOptions(CLI::App& cmd, AccessOptions& a) {
  cmd.add_option("--auth", a.auth_file,
                 "Token file (tokens: [{token, user, admin}], chmod 600), or `kubernetes` (server with --backend kubernetes: "
                 "the cluster's tokens, checked by TokenReview and SubjectAccessReview); every request then needs a token");
  cmd.add_option("--public-url", a.public_url, "The URL browsers reach this server at (behind a proxy); its host is accepted in Host");
  cmd.add_option("--allowed-origins", a.allowed_origins, "Other origins whose pages may send state-changing requests (repeatable)");
}
}  // namespace

int runMain(int argc, char** argv) {
  CLI::App app{"Trainyard: run, sweep, track and serve machine-learning training.\n"
               "Docs: docs/user-guide.md"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-o, --data-dir) also after the verb
  app.set_version_flag("--version", "trainyard 0.1.0");
  Globals g;
  g.data_dir = defaultDataDir();
  app.add_option("--data-dir", g.data_dir, "Where the store, logs and outputs live (env TRAINYARD_DATA_DIR)")
      ->capture_default_str();
  app.add_option("-o,--output", g.output, "Output format: table, json or yaml")->capture_default_str();
  Remote remote;
  if (const char* s = std::getenv("TRAINYARD_SERVER")) remote.url = s;
  if (const char* t = std::getenv("TRAINYARD_TOKEN")) remote.token = t;
  app.add_option("--server", remote.url, "Talk to this Trainyard server, e.g. http://127.0.0.1:8080 (env TRAINYARD_SERVER)");
  app.add_option("--token", remote.token, "Bearer token for --server (env TRAINYARD_TOKEN)");

  ServerCliOptions so;
  auto* server = app.add_subcommand("server", "Run the control plane: REST API, dashboard, scheduler and controllers");
  server->add_option("--address", so.address, "Address to listen on (non-loopback needs --auth)")->capture_default_str();
  server->add_option("--port", so.port, "Port (0: any free port, printed at start)")->capture_default_str();
  server->add_option("--store", so.store, "postgresql://... (default: SQLite in --data-dir)");
  server->add_option("--grace", so.grace_seconds, "Seconds between SIGTERM and SIGKILL when stopping replicas")->capture_default_str();
  server->add_option("--min-free-disk", so.min_free_disk,
                     "Refuse new jobs, experiments and notebooks (507) while the data directory has less free space")
      ->capture_default_str();
  server->add_option("--models", so.models_dir, "Also serve this model repository (TF-Serving /v1 and KServe /v2 APIs)");
  addAccessOptions(*server, so.access);
  server->add_option("--backend", so.backend, "Where replicas run: local (this machine), kubernetes (pods on the cluster of --kubeconfig) or slurm (batch jobs on the Slurm cluster of this machine's slurm.conf)")->capture_default_str();
  addClusterFlags(*server, so.cluster);
  server->add_option("--watch-namespaces", so.cluster.kube.watch_namespaces,
                     "--backend kubernetes: serve TrainJob/Experiment resources of these namespaces (tenants; \"*\": all) "
                     "instead of --namespace's only")
      ->delimiter(',');
  server->add_option("--run-as", so.run_as, "Run jobs as this Unix user (default when root: trainyard-jobs, made by scripts/setup.sh)");

  ServeOptions serve_o;
  auto* serve = app.add_subcommand("serve", "Serve TorchScript models over TF-Serving REST and KServe V2, with dynamic batching");
  serve->add_option("--models", serve_o.models_dir, "Model repository: DIR/<model>/<version>/model.pt (+ DIR/<model>/config.yaml)")
      ->capture_default_str();
  serve->add_option("--address", serve_o.address, "Address to listen on")->capture_default_str();
  serve->add_option("--port", serve_o.port, "Port (0: any free port, printed at start)")->capture_default_str();
  serve->add_option("--poll", serve_o.poll_seconds, "Seconds between scans of the repository for new versions")->capture_default_str();
  addAccessOptions(*serve, serve_o.access);

  PushOptions push_o;
  auto* models = app.add_subcommand("models", "Model repository");
  models->require_subcommand(1);
  models->fallthrough();
  auto* push = models->add_subcommand("push", "Copy a job's (or an experiment's best trial's) model.pt into the repository as the next version");
  push->add_option("--from", push_o.from, "Job or experiment name")->required();
  push->add_option("--name", push_o.name, "Model name in the repository")->required();
  push->add_option("--models", push_o.models_dir, "Model repository")->capture_default_str();

  std::string submit_file;
  std::vector<std::string> submit_set;
  bool submit_follow = false;
  auto* submit = app.add_subcommand("submit", "Submit a job or experiment to a server and return (see --server)");
  submit->add_option("file", submit_file, "Spec file (YAML)")->required();
  submit->add_option("--set", submit_set, "Override a field (repeatable)");
  submit->add_flag("-f,--follow", submit_follow, "Jobs: print the log until the job ends; exit code = outcome");

  bool top_once = false;
  auto* top = app.add_subcommand("top", "Node usage and running jobs on a server, refreshed (--once: print once)");
  top->add_flag("--once", top_once, "Print once and exit");

  RunOptions ro;
  auto* run = app.add_subcommand("run", "Run a TrainJob in the foreground; exit code = outcome");
  run->add_option("file", ro.file, "Spec file (YAML)")->required();
  run->add_option("--set", ro.overrides, "Override a field, e.g. --set spec.args[1]=0.01 (repeatable)");
  run->add_flag("-q,--quiet", ro.quiet, "Do not echo the job's output");
  run->add_option("--grace", ro.grace_seconds, "Seconds between SIGTERM and SIGKILL when stopping")->capture_default_str();
  run->add_option("--backend", ro.backend, "Where replicas run: local (this machine), kubernetes (pods on the cluster of --kubeconfig) or slurm (batch jobs on the Slurm cluster of this machine's slurm.conf)")->capture_default_str();
  addClusterFlags(*run, ro.cluster);
  run->add_flag("--resume", ro.resume, "Experiments: continue this experiment even if it had finished or was cancelled");

  RunOptions rro;
  std::string rerun_name;
  auto* rerun = app.add_subcommand("rerun", "Run a job again from its record: the same resolved spec, its images pinned "
                                            "to the digests they had; warns about what differs now (code, packages)");
  rerun->add_option("job", rerun_name, "The job to run again")->required();
  rerun->add_flag("-q,--quiet", rro.quiet, "Do not echo the job's output");
  rerun->add_option("--grace", rro.grace_seconds, "Seconds between SIGTERM and SIGKILL when stopping")->capture_default_str();
  rerun->add_option("--backend", rro.backend, "Where replicas run: local, kubernetes or slurm")->capture_default_str();
  addClusterFlags(*rerun, rro.cluster);

  std::vector<std::string> vset;
  std::string vfile;
  auto* validate = app.add_subcommand("validate", "Check a spec file without running it");
  validate->add_option("file", vfile, "Spec file (YAML)")->required();
  validate->add_option("--set", vset, "Override a field (repeatable)");

  auto* crds = app.add_subcommand("crds", "Print the CustomResourceDefinitions of operator mode (kubectl apply -f -)");
  std::string crds_out, crds_check;
  crds->add_option("--out", crds_out, "Write them to this directory instead (deploy/crds)");
  crds->add_option("--check", crds_check, "Exit 1 when the files in this directory are not what would be written");

  auto* get = app.add_subcommand("get", "List jobs or show metrics");
  get->require_subcommand(1);
  get->fallthrough();
  std::string get_name, get_phase, get_label;
  auto* get_jobs = get->add_subcommand("jobs", "List jobs");
  get->add_subcommand("job", "Show one job");
  get_jobs->add_option("name", get_name, "Only this job");
  get_jobs->add_option("--phase", get_phase, "Only jobs in this phase");
  bool get_jobs_all = false;
  get_jobs->add_flag("--all", get_jobs_all, "Also experiments' trial jobs (hidden by default, as in the dashboard)");
  get_jobs->add_option("-l,--label", get_label, "Only jobs with this label (key=value; --server only)");
  auto* get_job = get->get_subcommand("job");
  get_job->add_option("name", get_name, "Job name")->required();
  std::string metrics_job, metric_name;
  bool metrics_all = false;
  auto* get_metrics = get->add_subcommand("metrics", "Last value of each metric of a job (--all: the series)");
  get_metrics->add_option("job", metrics_job, "Job name")->required();
  get_metrics->add_flag("--all", metrics_all, "Every point, not just the last ones");
  get_metrics->add_option("--metric", metric_name, "Only this metric's series");

  get->add_subcommand("experiments", "List experiments");
  std::string trials_exp;
  auto* get_trials = get->add_subcommand("trials", "The trials of an experiment");
  get_trials->add_option("experiment", trials_exp, "Experiment name")->required();

  std::string describe_name;
  auto* describe = app.add_subcommand("describe", "Show everything about one object");
  describe->require_subcommand(1);
  describe->fallthrough();
  auto* describe_job = describe->add_subcommand("job", "Conditions, attempts, events and metrics of a job");
  describe_job->add_option("name", describe_name, "Job name")->required();
  auto* describe_exp = describe->add_subcommand("experiment", "Objective, parameters, best trial, Pareto front, trials");
  describe_exp->add_option("name", describe_name, "Experiment name")->required();

  std::string logs_name, logs_replica;
  int logs_attempt = -1;
  bool logs_follow = false;
  auto* logs = app.add_subcommand("logs", "Print a job's log (latest attempt by default)");
  logs->add_option("name", logs_name, "Job name")->required();
  logs->add_option("--replica", logs_replica, "Replica, e.g. worker-0");
  logs->add_option("--attempt", logs_attempt, "Attempt number (0 = first)");
  logs->add_flag("-f,--follow", logs_follow, "Keep printing while the job runs");

  std::string outputs_job, outputs_path, outputs_to;
  auto* outputs = app.add_subcommand("outputs", "List a job's outputs (TRAINYARD_OUTPUT_DIR), or print or save one of them");
  outputs->add_option("job", outputs_job, "Job name")->required();
  outputs->add_option("path", outputs_path, "A file, relative to the job's outputs (omit to list them)");
  outputs->add_option("--to", outputs_to, "Write the file here instead of to standard output");

  std::string cancel_name;
  bool cancel_experiment = false;
  auto* cancel = app.add_subcommand("cancel", "Stop a running or queued job (or, with --experiment, an experiment)");
  cancel->add_option("name", cancel_name, "Job or experiment name")->required();
  cancel->add_flag("--experiment", cancel_experiment, "NAME is an experiment");

  std::string suspend_name;
  auto* suspend = app.add_subcommand("suspend", "Suspend a job (Kubeflow's runPolicy.suspend): its replicas stop, it stays queued");
  suspend->add_option("job", suspend_name, "Job name")->required();
  auto* resume = app.add_subcommand("resume", "Resume a suspended job: it is queued to start again");
  resume->add_option("job", suspend_name, "Job name")->required();

  std::string delete_name;
  std::string apply_file, node_name, node_reason;
  std::vector<std::string> apply_set;
  auto* apply = app.add_subcommand("apply", "Create or update a Queue, Cohort or PriorityClass (with --server: on that server; administrators)");
  apply->add_option("file", apply_file, "Spec file (YAML): kind Queue, Cohort or PriorityClass")->required();
  apply->add_option("--set", apply_set, "Override a field (repeatable)");
  auto* node = app.add_subcommand("node", "Take a node out of service or back: drain (no new work), down (lost), up");
  node->require_subcommand(1);
  CLI::App* node_actions[3];
  const char* node_names[3] = {"drain", "down", "up"};
  const char* node_help[3] = {"No new replicas are placed there; what runs there stays",
                              "The node is lost: its replicas are Lost and their gangs restart elsewhere per restartPolicy",
                              "Ready again"};
  for (int i = 0; i < 3; ++i) {
    node_actions[i] = node->add_subcommand(node_names[i], node_help[i]);
    node_actions[i]->add_option("name", node_name, "Node name (see `trainyard get nodes`)")->required();
    node_actions[i]->add_option("--reason", node_reason, "Why (shown in describe and the dashboard)");
  }
  auto* get_queues = get->add_subcommand("queues", "Queues with quota, usage, borrowing and waiting jobs");
  auto* get_nodes = get->add_subcommand("nodes", "Nodes with allocation, capacity and state (--server)");

  auto* notebook = app.add_subcommand("notebook", "Jupyter notebooks on a server (--server), behind its sign-in (docs/notebooks.md)");
  notebook->require_subcommand(1);
  std::string nb_target, nb_owner;
  std::vector<std::string> nb_set;
  const char* nb_names[5] = {"start", "stop", "list", "open", "delete"};
  const char* nb_help[5] = {"Start a notebook: a Notebook FILE, or the NAME of a stopped one",
                            "Stop a notebook (its workspace is kept)", "Notebooks with their state, resources and last activity",
                            "Print the notebook's URL (open it in a browser signed in to the dashboard)",
                            "Delete a stopped notebook (its workspace is kept)"};
  CLI::App* nb_actions[5];
  for (int i = 0; i < 5; ++i) {
    nb_actions[i] = notebook->add_subcommand(nb_names[i], nb_help[i]);
    if (i == 2) continue;
    nb_actions[i]->add_option("target", nb_target, i == 0 ? "A Notebook file, or a stopped notebook's name" : "Notebook name")->required();
    nb_actions[i]->add_option("--owner", nb_owner, "Whose notebook (administrators see every user's)");
  }
  nb_actions[0]->add_option("--set", nb_set, "Override a field: path=value (repeatable)");

  auto* del = app.add_subcommand("delete", "Delete a finished job and its logs");
  del->require_subcommand(1);
  del->fallthrough();
  auto* del_job = del->add_subcommand("job", "Delete a job");
  del_job->add_option("name", delete_name, "Job name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitBadInput;
  }

  try {
    parseOutputFormat(g.output);
    remote.output = g.output;
    if (*server) {
      so.data_dir = g.data_dir;
      return cmdServer(so);
    }
    if (*serve) return cmdServe(serve_o);
    if (*push) {
      if (!remote.url.empty()) return remoteModelsPush(remote, push_o.from, push_o.name);  // into the server's --models
      push_o.data_dir = g.data_dir;
      return cmdModelsPush(push_o, g.output);
    }
    if (*submit || *top) {
      if (remote.url.empty()) remote.url = "http://127.0.0.1:8080";
      if (*submit) return remoteSubmit(remote, submit_file, submit_set, submit_follow);
      return remoteTop(remote, top_once);
    }
    if (*crds) return cmdCrds(crds_out, crds_check);
    for (int i = 0; i < 5; ++i)
      if (*nb_actions[i]) {
        if (remote.url.empty()) remote.url = "http://127.0.0.1:8080";
        return remoteNotebook(remote, nb_names[i], nb_target, nb_owner, nb_set);
      }
    std::string node_action;
    for (int i = 0; i < 3; ++i)
      if (*node_actions[i]) node_action = node_names[i];
    if (!remote.url.empty()) {
      if (*apply) return remoteSubmit(remote, apply_file, apply_set, false);
      if (!node_action.empty()) return remoteNode(remote, node_action, node_name, node_reason);
      if (*get_queues) return remoteGetQueues(remote);
      if (*get_nodes) return remoteGetNodes(remote);
      if (*run) throw UserError("`run` drives a job from this shell; with a server use `trainyard submit FILE -f`");
      if (*rerun) return remoteRerun(remote, rerun_name);
      if (*validate) return cmdValidate(vfile, vset);
      if (*get_jobs) return remoteGetJobs(remote, get_name, get_phase, get_label, get_jobs_all);
      if (*get_job) return remoteGetJobs(remote, get_name, "", "");
      if (*get_metrics) return remoteGetMetrics(remote, metrics_job, metrics_all, metric_name);
      if (*describe_job) return remoteDescribeJob(remote, describe_name);
      if (*describe_exp) return remoteDescribeExperiment(remote, describe_name);
      if (*get->get_subcommand("experiments")) return remoteGetExperiments(remote);
      if (*get_trials) return remoteGetTrials(remote, trials_exp);
      if (*logs) return remoteLogs(remote, logs_name, logs_replica, logs_attempt, logs_follow);
      if (*outputs) return remoteOutputs(remote, outputs_job, outputs_path, outputs_to);
      if (*cancel) return remoteCancel(remote, cancel_name, cancel_experiment);
      if (*suspend || *resume) return remoteSuspend(remote, suspend_name, suspend->parsed());
      if (*del_job) return remoteDelete(remote, delete_name);
    }
    if (*apply) return cmdApply(g, apply_file, apply_set);
    if (!node_action.empty()) return cmdNode(g, node_action, node_name, node_reason);
    if (*get_queues) return cmdGetQueues(g);
    if (*get_nodes) throw UserError("`get nodes` asks a server (--server URL); locally, nodes exist only while `run` or `server` runs");
    if (*run) return cmdRun(g, ro);
    if (*rerun) return cmdRerun(g, rro, rerun_name);
    if (*validate) return cmdValidate(vfile, vset);
    if (*get_jobs) return cmdGetJobs(g, get_name, get_phase, get_jobs_all);
    if (*get_job) return cmdGetJobs(g, get_name, "");
    if (*get_metrics) return cmdGetMetrics(g, metrics_job, metrics_all, metric_name);
    if (*describe_job) return cmdDescribeJob(g, describe_name);
    if (*describe_exp) return cmdDescribeExperiment(g, describe_name);
    if (*get->get_subcommand("experiments")) return cmdGetExperiments(g);
    if (*get_trials) return cmdGetTrials(g, trials_exp);
    if (*logs) return cmdLogs(g, logs_name, logs_replica, logs_attempt, logs_follow);
    if (*outputs) return cmdOutputs(g, outputs_job, outputs_path, outputs_to);
    if (*cancel) return cancel_experiment ? cmdCancelExperiment(g, cancel_name) : cmdCancel(g, cancel_name);
    if (*suspend || *resume) return cmdSuspend(g, suspend_name, suspend->parsed());
    if (*del_job) return cmdDeleteJob(g, delete_name);
  } catch (const spec::SpecError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::invalid_argument& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << "trainyard: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return 0;
}

}  // namespace trainyard::cli
