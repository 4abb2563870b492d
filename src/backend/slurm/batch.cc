#include "backend/slurm/batch.h"

#include <algorithm>

#include <fmt/format.h>

#include "backend/byte_cursor.h"
#include "backend/slurm/slurm_state.h"
#include "util/files.h"
#include "util/format.h"

namespace trainyard::backend::slurm {
using json = nlohmann::json;

using util::shellQuote;

std::string planFile(const std::string& log_dir, int attempt) { return fmt::format("{}/slurm-{}.json", log_dir, attempt); }
std::string scriptFile(const std::string& log_dir, int attempt) { return fmt::format("{}/slurm-{}.sh", log_dir, attempt); }
std::string batchOutputFile(const std::string& log_dir, int attempt) { return fmt::format("{}/slurm-{}.out", log_dir, attempt); }
std::string startedFile(const std::string& log_file) {
  std::string base = log_file.ends_with(".log") ? log_file.substr(0, log_file.size() - 4) : log_file;
  return base + ".started";
}

namespace {

// A replica's request as one Slurm task shape (`share` processes split it).
Shape taskShape(const sched::Resources& r, int share = 1) {
  Shape s;
  int64_t millis = (r.cpu_millis + share - 1) / share;
  s.cpus_per_task = std::max<int>(1, static_cast<int>((millis + 999) / 1000));
  if (r.memory_bytes > 0) {
    int64_t mib = ((r.memory_bytes + (1 << 20) - 1) >> 20) / share;
    s.mem_per_cpu_mib = std::max<int64_t>(1, (mib + s.cpus_per_task - 1) / s.cpus_per_task);
  }
  s.gpus_per_task = r.gpu / share;
  return s;
}

bool sameShape(const Shape& a, const Shape& b) {
  return a.cpus_per_task == b.cpus_per_task && a.mem_per_cpu_mib == b.mem_per_cpu_mib && a.gpus_per_task == b.gpus_per_task;
}

}  // namespace

int Layout::ntasks() const {
  int n = 0;
  for (const auto& c : components) n += c.ntasks;
  return n;
}

Layout layoutOf(const PlacedJob& job) {
  for (const auto& r : job.replicas)
    if (r.run && r.image_entrypoint)
      throw BackendError(fmt::format("replica {}: no command, and images are not run on Slurm nodes: give the spec "
                                     "a command",
                                     r.name),
                         false);
  Layout l;
  bool mpi = std::any_of(job.replicas.begin(), job.replicas.end(), [](const auto& r) { return !r.run; });
  if (mpi) {
    // The slots are the tasks; the launcher (mpirun) is the batch step.
    int slots = std::max(1, job.slots_per_worker), workers = 0;
    Shape c;
    for (size_t i = 0; i < job.replicas.size(); ++i) {
      const auto& r = job.replicas[i];
      if (r.run) {
        if (l.launcher >= 0)
          throw BackendError(fmt::format("replica {}: an MPI job on Slurm has one launcher, which runs mpirun", r.name), false);
        l.launcher = static_cast<int>(i);
        continue;
      }
      Shape s = taskShape(r.resources, slots);
      if (workers > 0 && !sameShape(s, c))
        throw BackendError(fmt::format("replica {}: an MPI job's workers need one shape on Slurm", r.name), false);
      c = s;
      ++workers;
    }
    if (l.launcher < 0) throw BackendError("an MPI job needs a launcher to run mpirun", false);
    c.ntasks = workers * slots;
    if (job.spread) c.nodes = workers, c.tasks_per_node = slots;  // a worker per node, as its pods would be
    l.components.push_back(c);
  } else {
    for (size_t i = 0; i < job.replicas.size(); ++i) {
      Shape s = taskShape(job.replicas[i].resources);
      if (l.components.empty() || !sameShape(l.components.back(), s)) l.components.push_back(s);
      ++l.components.back().ntasks;
      l.tasks.push_back(i);
    }
    if (job.spread)
      for (auto& c : l.components) c.nodes = c.ntasks, c.tasks_per_node = 1;
  }
  if (job.slurm.nodes > 0 || job.slurm.tasks_per_node > 0) {
    if (l.components.size() > 1)
      throw BackendError(fmt::format("spec.slurm.nodes and tasksPerNode lay out a job whose replicas have one shape; "
                                     "this one's roles have {} shapes (a heterogeneous Slurm job): drop them, or give "
                                     "the roles the same resources",
                                     l.components.size()),
                         false);
    if (job.slurm.nodes > 0) l.components[0].nodes = job.slurm.nodes;
    if (job.slurm.tasks_per_node > 0) l.components[0].tasks_per_node = job.slurm.tasks_per_node;
  }
  return l;
}

json planFor(const PlacedJob& job, const std::string& log_dir, const std::string& trainyard) {
  Layout layout = layoutOf(job);
  auto replica = [&](const ReplicaLaunch& r) {
    json env = json::array();
    for (const auto& [k, v] : r.env) env.push_back({k, v});
    return json{{"name", r.name},
                {"argv", r.argv},
                {"env", env},
                {"workingDir", r.working_dir},
                {"log", fmt::format("{}/{}", log_dir, logFileName(r.name, job.attempt))}};
  };
  json tasks = json::array(), components = json::array();
  for (size_t i : layout.tasks) tasks.push_back(replica(job.replicas[i]));
  for (const auto& c : layout.components) components.push_back({{"ntasks", c.ntasks}, {"cpusPerTask", c.cpus_per_task}});
  json plan = {{"uid", job.uid},   {"attempt", job.attempt},       {"trainyard", trainyard},
               {"tasks", tasks},   {"components", components}};
  if (layout.launcher >= 0) plan["launcher"] = replica(job.replicas[static_cast<size_t>(layout.launcher)]);
  return plan;
}

json readPlan(const std::string& path) {
  json plan = json::parse(util::readFrom(path, 0, 64u << 20), nullptr, false);
  if (!plan.is_object() || !plan.contains("tasks") || !plan["tasks"].is_array())
    throw std::runtime_error(fmt::format("{}: not a trainyard slurm plan", path));
  return plan;
}

std::vector<json> planReplicas(const json& plan) {
  std::vector<json> out;
  if (plan.contains("launcher") && plan["launcher"].is_object()) out.push_back(plan["launcher"]);
  for (const auto& t : plan.value("tasks", json::array())) out.push_back(t);
  return out;
}

std::vector<std::string> sbatchArgs(const PlacedJob& job, const SlurmOptions& o, const std::string& log_dir,
                                    const std::string& script) {
  Layout l = layoutOf(job);
  std::vector<std::string> a = {"--parsable",
                                "--job-name=" + slurmJobName(job.uid, job.attempt),
                                "--output=" + batchOutputFile(log_dir, job.attempt),
                                "--open-mode=append",
                                "--chdir=" + log_dir,
                                "--no-requeue"};  // a new attempt is the controller's, by its restart policy
  if (o.run_uid >= 0) {
    a.push_back(fmt::format("--uid={}", o.run_uid));
    a.push_back(fmt::format("--gid={}", o.run_gid));
  }
  auto pick = [](const std::string& spec, const std::string& dflt) { return spec.empty() ? dflt : spec; };
  for (size_t k = 0; k < l.components.size(); ++k) {
    const Shape& s = l.components[k];
    if (k > 0) a.push_back(":");
    a.push_back(fmt::format("--ntasks={}", s.ntasks));
    a.push_back(fmt::format("--cpus-per-task={}", s.cpus_per_task));
    if (s.mem_per_cpu_mib > 0) a.push_back(fmt::format("--mem-per-cpu={}M", s.mem_per_cpu_mib));
    if (s.gpus_per_task > 0) a.push_back(fmt::format("--gpus-per-task={}", s.gpus_per_task));
    if (s.nodes > 0) a.push_back(fmt::format("--nodes={}", s.nodes));
    if (s.tasks_per_node > 0) a.push_back(fmt::format("--ntasks-per-node={}", s.tasks_per_node));
    // Where and under whose name, for every component (each may differ).
    if (auto p = pick(job.slurm.partition, o.partition); !p.empty()) a.push_back("--partition=" + p);
    if (auto p = pick(job.slurm.account, o.account); !p.empty()) a.push_back("--account=" + p);
    if (auto p = pick(job.slurm.qos, o.qos); !p.empty()) a.push_back("--qos=" + p);
    if (!job.slurm.constraint.empty()) a.push_back("--constraint=" + job.slurm.constraint);
    // Slurm's limit is a backstop behind the controller's own deadline (in
    // whole minutes, one more than asked): the controller ends the job
    // first, with its grace, and says why.
    if (job.deadline_seconds > 0) {
      a.push_back(fmt::format("--time={}", job.deadline_seconds / 60 + 2));
      a.push_back("--signal=TERM@60");  // and should Slurm's limit come first, a minute's warning
    }
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
