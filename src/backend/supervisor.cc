#include "backend/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace trainyard::backend {

int runSupervisor(int argc, char** argv) {
  // argv: trainyard __supervise STATUS -- CMD...
  if (argc < 5 || std::strcmp(argv[3], "--") != 0) {
    std::fprintf(stderr, "usage: trainyard __supervise STATUS_FILE -- COMMAND [ARGS...]\n");
    return 2;
  }
  std::string status = argv[2];
  for (int s : {SIGTERM, SIGINT, SIGHUP}) signal(s, SIG_IGN);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("trainyard: fork");
    return 127;
  }
  if (pid == 0) {
    for (int s : {SIGTERM, SIGINT, SIGHUP}) signal(s, SIG_DFL);
    execvp(argv[4], argv + 4);
    std::fprintf(stderr, "trainyard: cannot execute %s: %s\n", argv[4], std::strerror(errno));
    _exit(127);
  }
  int st = 0;
  pid_t r;
  do r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  std::string line = WIFSIGNALED(st) ? "signal " + std::to_string(WTERMSIG(st))
                                     : "exit " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 255);
  std::string tmp = status + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << line << "\n";
  }
  std::rename(tmp.c_str(), status.c_str());
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : (WIFEXITED(st) ? WEXITSTATUS(st) : 255);
}

std::optional<ExitRecord> readExitRecord(const std::string& status_file) {
  std::ifstream in(status_file);
  std::string kind;
  int value = 0;
  if (!(in >> kind >> value)) return std::nullopt;
  ExitRecord r;
  if (kind == "exit") r.exit_code = value;
  else if (kind == "signal") r.signal = value;
  else return std::nullopt;
  return r;
}

}  // namespace trainyard::backend
