#include "backend/slurm/batch.h"

#include <algorithm>

#include <fmt/format.h>

#include "backend/byte_cursor.h"
#include "backend/slurm/slurm_state.h"
#include "util/files.h"

namespace trainyard::backend::slurm {
using json = nlohmann::json;

namespace {

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string planFile(const std::string& log_dir, int attempt) { return fmt::format("{}/slurm-{}.json", log_dir, attempt); }
std::string scriptFile(const std::string& log_dir, int attempt) { return fmt::format("{}/slurm-{}.sh", log_dir, attempt); }
std::string batchOutputFile(const std::string& log_dir, int attempt) { return fmt::format("{}/slurm-{}.out", log_dir, attempt); }
std::string startedFile(const std::string& log_file) {
  std::string base = log_file.ends_with(".log") ? log_file.substr(0, log_file.size() - 4) : log_file;
  return base + ".started";
}

Shape shapeOf(const PlacedJob& job) {
  Shape s;
  int64_t millis = 0, mem = 0;
  for (const auto& r : job.replicas) {
    ++s.ntasks;
    millis = std::max(millis, r.resources.cpu_millis);
    mem = std::max(mem, r.resources.memory_bytes);
    s.gpus_per_task = std::max(s.gpus_per_task, r.resources.gpu);
  }
  s.cpus_per_task = std::max<int>(1, static_cast<int>((millis + 999) / 1000));
  if (mem > 0) {
    int64_t mib = (mem + (1 << 20) - 1) >> 20;
    s.mem_per_cpu_mib = (mib + s.cpus_per_task - 1) / s.cpus_per_task;
  }
  s.nodes = job.slurm.nodes;
  s.tasks_per_node = job.slurm.tasks_per_node;
  if (job.spread && s.tasks_per_node == 0) {
    s.tasks_per_node = 1;
    if (s.nodes == 0) s.nodes = s.ntasks;
  }
  return s;
}

json planFor(const PlacedJob& job, const std::string& log_dir, const std::string& trainyard) {
  Shape shape = shapeOf(job);
  json tasks = json::array();
  for (const auto& r : job.replicas) {
    json env = json::array();
    for (const auto& [k, v] : r.env) env.push_back({k, v});
    tasks.push_back({{"name", r.name},
                     {"argv", r.argv},
                     {"env", env},
                     {"workingDir", r.working_dir},
                     {"log", fmt::format("{}/{}", log_dir, logFileName(r.name, job.attempt))}});
  }
  return {{"uid", job.uid},         {"attempt", job.attempt}, {"trainyard", trainyard},
          {"cpusPerTask", shape.cpus_per_task}, {"tasks", tasks}};
}

json readPlan(const std::string& path) {
  json plan = json::parse(util::readFrom(path, 0, 64u << 20), nullptr, false);
  if (!plan.is_object() || !plan.contains("tasks") || !plan["tasks"].is_array())
    throw std::runtime_error(fmt::format("{}: not a trainyard slurm plan", path));
  return plan;
}

std::vector<std::string> sbatchArgs(const PlacedJob& job, const SlurmOptions& o, const std::string& log_dir,
                                    const std::string& script) {
  for (const auto& r : job.replicas)
    if (!r.run)
      throw BackendError(fmt::format("replica {}: MPI jobs are not run on the slurm backend yet (their workers are slots "
                                     "for mpirun; run the ranks as replicas of a pytorch or none job instead)",
                                     r.name),
                         false);
  Shape s = shapeOf(job);
  std::vector<std::string> a = {"--parsable",
                                "--job-name=" + slurmJobName(job.uid, job.attempt),
                                "--output=" + batchOutputFile(log_dir, job.attempt),
                                "--open-mode=append",
                                "--chdir=" + log_dir,
                                "--no-requeue",  // a new attempt is the controller's, by its restart policy
                                fmt::format("--ntasks={}", s.ntasks),
                                fmt::format("--cpus-per-task={}", s.cpus_per_task)};
  if (s.mem_per_cpu_mib > 0) a.push_back(fmt::format("--mem-per-cpu={}M", s.mem_per_cpu_mib));
  if (s.gpus_per_task > 0) a.push_back(fmt::format("--gpus-per-task={}", s.gpus_per_task));
  if (s.nodes > 0) a.push_back(fmt::format("--nodes={}", s.nodes));
  if (s.tasks_per_node > 0) a.push_back(fmt::format("--ntasks-per-node={}", s.tasks_per_node));
  auto pick = [](const std::string& spec, const std::string& dflt) { return spec.empty() ? dflt : spec; };
  if (auto p = pick(job.slurm.partition, o.partition); !p.empty()) a.push_back("--partition=" + p);
  if (auto p = pick(job.slurm.account, o.account); !p.empty()) a.push_back("--account=" + p);
  if (auto p = pick(job.slurm.qos, o.qos); !p.empty()) a.push_back("--qos=" + p);
  if (!job.slurm.constraint.empty()) a.push_back("--constraint=" + job.slurm.constraint);
  // Slurm's limit is a backstop behind the controller's own deadline (in
  // whole minutes, one more than asked): the controller ends the job first,
  // with its grace, and says why.
  if (job.deadline_seconds > 0) {
    a.push_back(fmt::format("--time={}", job.deadline_seconds / 60 + 2));
    a.push_back("--signal=TERM@60");  // and should Slurm's limit come first, a minute's warning
  }
  if (o.run_uid >= 0) {
    a.push_back(fmt::format("--uid={}", o.run_uid));
    a.push_back(fmt::format("--gid={}", o.run_gid));
  }
  a.push_back(script);
  return a;
}

std::string batchScript(const std::string& trainyard, const std::string& plan_file) {
  return fmt::format("#!/bin/sh\n# Made by trainyard: the batch step binds the peers' addresses and starts the replicas.\n"
                     "exec {} __slurm-batch {}\n",
                     shellQuote(trainyard), shellQuote(plan_file));
}

}  // namespace trainyard::backend::slurm
