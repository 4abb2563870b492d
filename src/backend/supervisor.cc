#include "backend/supervisor.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "util/env.h"

namespace trainyard::backend {

int runSupervisor(int argc, char** argv) {
  // argv: trainyard __supervise STATUS [--bind-late] [--uid U --gid G --groups A,B] -- CMD...
  int cmd = 3;
  long uid = -1, gid = -1;
  bool bind_late = false;
  std::vector<gid_t> groups;
  while (cmd + 1 < argc && std::strcmp(argv[cmd], "--") != 0) {
    if (std::strcmp(argv[cmd], "--bind-late") == 0) {
      bind_late = true;
      ++cmd;
      continue;
    }
    std::string opt = argv[cmd], val = argv[cmd + 1];
    if (opt == "--uid") uid = std::strtol(val.c_str(), nullptr, 10);
    else if (opt == "--gid") gid = std::strtol(val.c_str(), nullptr, 10);
    else if (opt == "--groups")
      for (size_t pos = 0; pos < val.size();) {
        size_t comma = val.find(',', pos);
        groups.push_back(static_cast<gid_t>(std::strtoul(val.substr(pos, comma - pos).c_str(), nullptr, 10)));
        pos = comma == std::string::npos ? val.size() : comma + 1;
      }
    else break;
    cmd += 2;
  }
  if (cmd + 1 >= argc || std::strcmp(argv[cmd], "--") != 0 || (uid >= 0) != (gid >= 0)) {
    std::fprintf(stderr, "usage: trainyard __supervise STATUS_FILE [--bind-late] [--uid U --gid G --groups A,B] -- COMMAND [ARGS...]\n");
    return 2;
  }
  char** command = argv + cmd + 1;
  // Wiring bound on the node (Capabilities::peers_before_launch false): the
  // $(VAR) references in the environment and the command, such as
  // MASTER_ADDR=$(TRAINYARD_PEER_HOST_0), take the values this node was
  // given when the allocation started.
  std::vector<std::string> bound;
  std::vector<char*> bound_argv;
  if (bind_late) {
    std::vector<std::pair<std::string, std::string>> env;
    for (char** e = environ; *e; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq) env.emplace_back(std::string(*e, static_cast<size_t>(eq - *e)), eq + 1);
    }
    for (const auto& [k, v] : env)
      if (v.find("$(") != std::string::npos) setenv(k.c_str(), util::expandVars(v, env).c_str(), 1);
    for (char** a = command; *a; ++a) bound.push_back(util::expandVars(*a, env));
    for (auto& a : bound) bound_argv.push_back(a.data());
    bound_argv.push_back(nullptr);
    command = bound_argv.data();
  }
  std::string status = argv[2];
  for (int s : {SIGTERM, SIGINT, SIGHUP}) signal(s, SIG_IGN);
  // An exec that fails says so through this pipe (closed by a successful exec).
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    std::perror("trainyard: pipe");
    return 127;
  }
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("trainyard: fork");
    return 127;
  }
  if (pid == 0) {
    for (int s : {SIGTERM, SIGINT, SIGHUP}) signal(s, SIG_DFL);
    // The job's own credentials only: no way back to the supervisor's.
    if (uid >= 0 && (setgroups(groups.size(), groups.data()) != 0 || setgid(static_cast<gid_t>(gid)) != 0 ||
                     setuid(static_cast<uid_t>(uid)) != 0)) {
      std::fprintf(stderr, "trainyard: cannot switch to uid %ld: %s\n", uid, std::strerror(errno));
      _exit(127);
    }
    execvp(command[0], command);
    int err = errno;
    std::fprintf(stderr, "trainyard: cannot execute %s: %s\n", command[0], std::strerror(err));
    (void)!write(report[1], &err, sizeof err);
    _exit(127);
  }
  close(report[1]);
  int exec_errno = 0;
  ssize_t got;
  do got = read(report[0], &exec_errno, sizeof exec_errno);
  while (got < 0 && errno == EINTR);
  close(report[0]);
  int st = 0;
  pid_t r;
  do r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  std::string line = got == static_cast<ssize_t>(sizeof exec_errno) ? "starterror " + std::to_string(exec_errno)
                     : WIFSIGNALED(st)                               ? "signal " + std::to_string(WTERMSIG(st))
                                     : "exit " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 255);
  std::string tmp = status + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << line << "\n";
  }
  std::rename(tmp.c_str(), status.c_str());
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : (WIFEXITED(st) ? WEXITSTATUS(st) : 255);
}

void applyExitRecord(const ExitRecord& rec, const std::string& program, ReplicaStatus& s) {
  s.exit_code = rec.exit_code;
  s.signal = rec.signal;
  s.reason = rec.signal ? "Signaled" : (rec.exit_code.value_or(1) == 0 ? "Completed" : "Error");
  if (rec.start_errno) {
    s.reason = "StartError";
    s.message = "cannot execute " + program + ": " + std::strerror(*rec.start_errno);
  }
}

std::string exitStatusFile(const std::string& log_ref) {
  std::string base = log_ref.size() > 4 && log_ref.ends_with(".log") ? log_ref.substr(0, log_ref.size() - 4) : log_ref;
  return base + ".exit";
}

std::optional<ExitRecord> readExitRecord(const std::string& status_file) {
  std::ifstream in(status_file);
  std::string kind;
  int value = 0;
  if (!(in >> kind >> value)) return std::nullopt;
  ExitRecord r;
  if (kind == "exit") r.exit_code = value;
  else if (kind == "signal") r.signal = value;
  else if (kind == "starterror") r.exit_code = 127, r.start_errno = value;
  else return std::nullopt;
  return r;
}

}  // namespace trainyard::backend
