#include "control/owner.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace trainyard::control {
namespace {

std::string hostName() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

// Field 22 of /proc/PID/stat: start time in clock ticks since boot.
std::string startTime(long pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return "";
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return field;
  return "";
}

}  // namespace

std::string selfOwner() { return fmt::format("{}:{}:{}", hostName(), getpid(), startTime(getpid())); }

bool ownerAlive(const std::string& owner) {
  auto a = owner.find(':');
  auto b = owner.find(':', a == std::string::npos ? a : a + 1);
  if (a == std::string::npos || b == std::string::npos) return true;  // unknown shape: do not guess
  if (owner.substr(0, a) != hostName()) return true;
  long pid = std::atol(owner.substr(a + 1, b - a - 1).c_str());
  std::string started = startTime(pid);
  return !started.empty() && started == owner.substr(b + 1);
}

}  // namespace trainyard::control
