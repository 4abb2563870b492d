// Identity of the process driving a job ("host:pid:starttime"). Several
// `trainyard run` processes share one store; an allocation held by a process
// that has died must not block the queue forever, and a recycled PID must
// not pass for the dead owner, hence the start time.
#pragma once
#include <string>

namespace trainyard::store {
class Store;
}

namespace trainyard::control {

std::string selfOwner();
// False when the owner is provably gone: on this host, its process is not
// there (or is a zombie: killed, not yet reaped); on another host, its lease
// in `store` has expired (a controller renews it every pass, see kLeaseSeconds).
// An owner on another host without a lease (or without a store) counts as alive.
bool ownerAlive(const std::string& owner, store::Store* store = nullptr);

// How long a controller's claim on its jobs lasts without renewal.
inline constexpr double kLeaseSeconds = 30;
// Renews this process' lease (`owner`) when a third of it has passed.
void renewLease(store::Store& store, const std::string& owner);

}  // namespace trainyard::control
