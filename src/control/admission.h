// One admission cycle against the store: reads every active job's
// scheduling row (no spec is parsed), what is placed, the queues and the
// node states; asks the scheduler (sched/scheduler.h); writes the decision
// in the same exclusive transaction, so two controllers sharing a store
// never place onto the same resources. The cost grows with queued jobs and
// nodes, not with their product.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sched/scheduler.h"
#include "spec/queue.h"
#include "spec/trainjob.h"
#include "store/store.h"

namespace trainyard::control {

// What the scheduler needs of a spec, as stored in jobs.request at submit.
std::string encodeRequest(const spec::TrainJobSpec& spec);
sched::Request decodeRequest(const std::string& json);
// The same, straight from a spec (the API's submit-time checks).
sched::Request requestOf(const spec::TrainJobSpec& spec);

// Queue definitions as the scheduler takes them: a cohort tree shares one
// pool, named by its root; "default" (no limits) is always among them.
std::vector<sched::QueueSpec> queueSpecs(const std::vector<spec::QueueDef>& defs);
// Drained and Down nodes become unschedulable.
std::vector<sched::Node> withNodeStates(std::vector<sched::Node> nodes, const std::vector<store::NodeStateRecord>& states);

// Why a job must be refused at submit rather than queued to fail later: a
// queue that does not exist or the user may not use, a GPU share with
// sharing off, a gang no node set or quota can ever hold. `field` is the
// spec path to blame.
struct Refusal {
  std::string code;  // UnknownQueue, Forbidden, Unschedulable
  std::string field;
  std::string message;
};
std::optional<Refusal> refuseAtSubmit(const spec::TrainJobSpec& spec, const std::string& user,
                                      const std::vector<sched::Node>& nodes, const std::vector<spec::QueueDef>& queues,
                                      const sched::SchedulerOptions& opts);

// The priority a PriorityClass gives (spec/queue.h): the one `spec` names,
// else a globalDefault one when the spec sets no priority. Sets
// spec.priority; an error message when the named class does not exist.
std::optional<std::string> applyPriorityClass(const std::vector<spec::QueueDef>& defs, spec::TrainJobSpec& spec);

// Stores a Queue or Cohort (replacing one of the same kind and name) after
// checking it with the others: a missing cohort or a cycle of parents is a
// spec::SpecError naming the file, line, column and field.
void applyQueue(store::Store& store, const spec::QueueDef& def, const std::string& user);

struct AdmissionOutcome {
  std::vector<int64_t> admitted;       // placed, phase Running, owned by the caller: to launch
  std::vector<int64_t> preempted;      // asked to stop (store::Store::requestPreemption)
  std::vector<int64_t> unschedulable;  // failed with reason Unschedulable
  size_t queued = 0;                   // queued jobs seen
};

// `owner` is the calling controller: only its own jobs are admitted or
// failed (another live controller admits its own). Throws on store errors.
AdmissionOutcome admitQueued(store::Store& store, const std::vector<sched::Node>& nodes,
                             const sched::SchedulerOptions& opts, const std::string& owner, double now);

}  // namespace trainyard::control
