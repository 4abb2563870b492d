#include "control/owner.h"

#include <unistd.h>


#include <fmt/format.h>

#include "store/store.h"
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

bool ownerAlive(const std::string& owner, store::Store* store) {
  auto a = owner.find(':');
  auto b = owner.find(':', a == std::string::npos ? a : a + 1);
  if (a == std::string::npos || b == std::string::npos) return true;  // unknown shape: do not guess
  if (owner.substr(0, a) != hostName()) {
    if (!store) return true;
    auto expiry = store->leaseExpiry(owner);
    return !expiry || *expiry > store::nowSeconds();
  }
  long pid = std::atol(owner.substr(a + 1, b - a - 1).c_str());
  auto state = util::processState(pid);
  if (!state || *state == 'Z' || *state == 'X') return false;  // a zombie is dead, only not reaped yet
  std::string started = startTime(pid);
  return !started.empty() && started == owner.substr(b + 1);
}

void renewLease(store::Store& store, const std::string& owner) {
  static thread_local double renewed = 0;
  double now = store::nowSeconds();
  if (now - renewed < kLeaseSeconds / 3) return;
  store.renewLease(owner, now + kLeaseSeconds);
  renewed = now;
}

}  // namespace trainyard::control
