#include "backend/slurm/steps.h"

#include <fcntl.h>
#include <cerrno>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "backend/slurm/batch.h"
#include "backend/slurm/slurm_state.h"
#include "backend/supervisor.h"
#include "util/command.h"

namespace trainyard::backend::slurm {
using json = nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

namespace {

// Replica `t` of a plan in this process: its output appended to its log
// file, a ".started" record beside it, then the supervisor, which binds the
// late wiring and records how it ended. `over` is set after the plan's env.
int runReplica(const json& t, const char* self, const std::vector<std::pair<std::string, std::string>>& over) {
  std::string log = t.value("log", "");
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open {}: {}", log, std::strerror(errno)));
  dup2(fd, 1);
  dup2(fd, 2);
  close(fd);
  {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    std::ofstream started(startedFile(log), std::ios::trunc);
    started << env("SLURMD_NODENAME") << " " << host << " " << getpid() << "\n";
  }
  std::string wd = t.value("workingDir", "");
  if (!wd.empty() && chdir(wd.c_str()) != 0) {
    std::fprintf(stderr, "trainyard: cannot enter %s: %s\n", wd.c_str(), std::strerror(errno));
    std::ofstream(exitStatusFile(log), std::ios::trunc) << "starterror " << errno << "\n";
    return 127;
  }
  for (const auto& kv : t["env"])
    if (kv.is_array() && kv.size() == 2) setenv(kv[0].get<std::string>().c_str(), kv[1].get<std::string>().c_str(), 1);
  for (const auto& [k, v] : over) setenv(k.c_str(), v.c_str(), 1);
  std::vector<std::string> args = {self, "__supervise", exitStatusFile(log), "--bind-late", "--"};
  for (const auto& a : t["argv"]) args.push_back(a.get<std::string>());
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  return runSupervisor(static_cast<int>(args.size()), cargs.data());
}

std::string nodeVar(size_t task) { return fmt::format("TRAINYARD_SLURM_NODE_{}", task); }

// One component of the allocation: its nodes, in Slurm's order, and how
// many tasks each runs.
struct Group {
  std::string nodelist;
  std::vector<std::string> nodes;
  std::vector<int> per_node;
};

Group groupFrom(const std::string& nodelist, const std::string& tasks_per_node) {
  Group g{nodelist, {}, parseTasksPerNode(tasks_per_node)};
  auto hosts = util::runCommand({"scontrol", "show", "hostnames", nodelist});
  if (!hosts.ok()) throw std::runtime_error("scontrol show hostnames: " + hosts.err);
  std::istringstream lines(hosts.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) g.nodes.push_back(line);
  if (g.per_node.size() != g.nodes.size())
    throw std::runtime_error(fmt::format("tasks per node \"{}\" do not match the {} nodes of {}", tasks_per_node,
                                         g.nodes.size(), nodelist));
  return g;
}

}  // namespace

int runBatchStep(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: trainyard __slurm-batch PLAN\n");
    return 2;
  }
  try {
    json plan = readPlan(argv[2]);
    size_t ntasks = plan["tasks"].size();
    // The nodes Slurm chose, in its order, per component of a heterogeneous job.
    std::vector<Group> groups;
    int het = std::atoi(env("SLURM_HET_SIZE").c_str());
    if (het > 0) {
      for (int k = 0; k < het; ++k)
        groups.push_back(groupFrom(env(fmt::format("SLURM_JOB_NODELIST_HET_GROUP_{}", k).c_str()),
                                   env(fmt::format("SLURM_TASKS_PER_NODE_HET_GROUP_{}", k).c_str())));
    } else {
      groups.push_back(groupFrom(env("SLURM_JOB_NODELIST"), env("SLURM_TASKS_PER_NODE")));
    }
    // Peers are reached at a node's address (NodeAddr), not its name.
    std::string all;
    for (const auto& g : groups) all += (all.empty() ? "" : ",") + g.nodelist;
    auto shown = util::runCommand({"scontrol", "-o", "show", "node", all});
    std::map<std::string, std::string> addr;
    for (const auto& [name, a] : parseNodeAddrs(shown.out)) addr[name] = a;
    std::string hostfile = std::string(argv[2]) + ".hosts";
    std::ofstream hf(hostfile, std::ios::trunc);
    if (plan.contains("launcher")) {
      // MPI: mpirun's hostfile is the allocation, by node name as Open MPI
      // reads it from Slurm, with each node's task count as its slots.
      for (const auto& g : groups)
        for (size_t n = 0; n < g.nodes.size(); ++n) hf << g.nodes[n] << " slots=" << g.per_node[n] << "\n";
      hf.close();
      return runReplica(plan["launcher"], argv[0], {{"OMPI_MCA_orte_default_hostfile", hostfile}});
    }
    size_t task = 0;
    for (const auto& g : groups)
      for (size_t n = 0; n < g.nodes.size(); ++n)
        for (int k = 0; k < g.per_node[n] && task < ntasks; ++k, ++task) {
          hf << g.nodes[n] << "\n";
          std::string a = addr.count(g.nodes[n]) ? addr[g.nodes[n]] : g.nodes[n];
          setenv(latePeerHostVar(task).c_str(), a.c_str(), 1);
          setenv(nodeVar(task).c_str(), g.nodes[n].c_str(), 1);
        }
    hf.close();
    if (task != ntasks) throw std::runtime_error(fmt::format("the allocation has {} task slots for {} replicas", task, ntasks));
    std::string trainyard = plan.value("trainyard", "trainyard");
    std::vector<std::string> args = {"srun", "--kill-on-bad-exit=0"};
    if (het > 0) {
      // Each component's tasks as the allocation laid them out (block), with
      // its own CPUs per task (srun does not inherit them since 22.05); the
      // tasks check they landed where their peers were told.
      const json& comps = plan["components"];
      if (comps.size() != static_cast<size_t>(het))
        throw std::runtime_error(fmt::format("the allocation has {} components, the plan {}", het, comps.size()));
      for (int k = 0; k < het; ++k) {
        if (k > 0) args.push_back(":");
        args.push_back(fmt::format("--het-group={}", k));
        args.push_back(fmt::format("--ntasks={}", comps[k].value("ntasks", 1)));
        args.push_back(fmt::format("--cpus-per-task={}", comps[k].value("cpusPerTask", 1)));
      }
    } else {
      // Exactly that layout (srun would otherwise place tasks by its own CPU count).
      setenv("SLURM_HOSTFILE", hostfile.c_str(), 1);
      args.push_back(fmt::format("--ntasks={}", ntasks));
      args.push_back(fmt::format("--cpus-per-task={}", plan["components"].at(0).value("cpusPerTask", 1)));
      args.push_back("--distribution=arbitrary");
    }
    for (const auto& a : {trainyard, std::string("__slurm-task"), std::string(argv[2])}) args.push_back(a);
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execvp("srun", cargs.data());
    std::fprintf(stderr, "trainyard: cannot execute srun: %s\n", std::strerror(errno));
    return 127;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trainyard __slurm-batch: %s\n", e.what());
    return 1;
  }
}

int runTask(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: trainyard __slurm-task PLAN\n");
    return 2;
  }
  try {
    json plan = readPlan(argv[2]);
    size_t i = static_cast<size_t>(std::strtoul(env("SLURM_PROCID").c_str(), nullptr, 10));
    if (i >= plan["tasks"].size()) throw std::runtime_error(fmt::format("task {} is not in the plan", i));
    const json& t = plan["tasks"][i];
    std::string expected = env(nodeVar(i).c_str()), here = env("SLURMD_NODENAME");
    if (!expected.empty() && !here.empty() && expected != here) {
      // Its peers were told another node's address: it must not run here.
      std::string log = t.value("log", "");
      std::ofstream(log, std::ios::app) << fmt::format("trainyard: task {} ({}) started on {}, but the plan put it on {}\n",
                                                      i, t.value("name", ""), here, expected);
      // A start error (the gang ends): not at the address its peers were given.
      std::ofstream(exitStatusFile(log), std::ios::trunc) << "starterror " << EADDRNOTAVAIL << "\n";
      return 127;
    }
    return runReplica(t, argv[0], {});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trainyard __slurm-task: %s\n", e.what());
    return 1;
  }
}

}  // namespace trainyard::backend::slurm
