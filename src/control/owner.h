// Identity of the process driving a job ("host:pid:starttime"). Several
// `trainyard run` processes share one store; an allocation held by a process
// that has died must not block the queue forever, and a recycled PID must
// not pass for the dead owner, hence the start time.
#pragma once
#include <string>

namespace trainyard::control {

std::string selfOwner();
// False only when the owner is on this host and provably gone.
bool ownerAlive(const std::string& owner);

}  // namespace trainyard::control
