#include "control/owner.h"

#include <unistd.h>


#include <fmt/format.h>

#include "util/proc.h"

namespace trainyard::control {
namespace {

std::string hostName() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

std::string startTime(long pid) {
  auto t = util::processStartTime(pid);
  return t ? std::to_string(*t) : "";
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
