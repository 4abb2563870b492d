#include "backend/slurm/steps.h"

#include <fcntl.h>
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

int runBatchStep(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: trainyard __slurm-batch PLAN\n");
    return 2;
  }
  try {
    json plan = readPlan(argv[2]);
    size_t ntasks = plan["tasks"].size();
    // The nodes Slurm chose, in its order, and how many tasks each runs.
    auto hosts = util::runCommand({"scontrol", "show", "hostnames", env("SLURM_JOB_NODELIST")});
    if (!hosts.ok()) throw std::runtime_error("scontrol show hostnames: " + hosts.err);
    std::vector<std::string> nodes;
    std::istringstream lines(hosts.out);
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) nodes.push_back(line);
    std::vector<int> per_node = parseTasksPerNode(env("SLURM_TASKS_PER_NODE"));
    if (per_node.size() != nodes.size())
      throw std::runtime_error(fmt::format("SLURM_TASKS_PER_NODE \"{}\" does not match {} nodes",
                                           env("SLURM_TASKS_PER_NODE"), nodes.size()));
    // Peers are reached at a node's address (NodeAddr), not its name.
    auto shown = util::runCommand({"scontrol", "-o", "show", "node", env("SLURM_JOB_NODELIST")});
    std::map<std::string, std::string> addr;
    for (const auto& [name, a] : parseNodeAddrs(shown.out)) addr[name] = a;
    std::string hostfile = std::string(argv[2]) + ".hosts";
    std::ofstream hf(hostfile, std::ios::trunc);
    size_t task = 0;
    for (size_t n = 0; n < nodes.size(); ++n)
      for (int k = 0; k < per_node[n] && task < ntasks; ++k, ++task) {
        hf << nodes[n] << "\n";
        std::string a = addr.count(nodes[n]) ? addr[nodes[n]] : nodes[n];
        setenv(latePeerHostVar(task).c_str(), a.c_str(), 1);
      }
    hf.close();
    if (task != ntasks) throw std::runtime_error(fmt::format("the allocation has {} task slots for {} replicas", task, ntasks));
    // Exactly that layout (srun would otherwise place tasks by its own CPU count).
    setenv("SLURM_HOSTFILE", hostfile.c_str(), 1);
    std::string trainyard = plan.value("trainyard", "trainyard");
    std::vector<std::string> args = {"srun",
                                     fmt::format("--ntasks={}", ntasks),
                                     fmt::format("--cpus-per-task={}", plan.value("cpusPerTask", 1)),
                                     "--distribution=arbitrary",
                                     "--kill-on-bad-exit=0",
                                     trainyard,
                                     "__slurm-task",
                                     argv[2]};
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
    // As the local backend runs a replica: under the supervisor, which binds
    // the late wiring and records how it ended.
    std::vector<std::string> args = {argv[0], "__supervise", exitStatusFile(log), "--bind-late", "--"};
    for (const auto& a : t["argv"]) args.push_back(a.get<std::string>());
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    return runSupervisor(static_cast<int>(args.size()), cargs.data());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trainyard __slurm-task: %s\n", e.what());
    return 1;
  }
}

}  // namespace trainyard::backend::slurm
