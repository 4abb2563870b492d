// Client verbs against a Trainyard server (--server URL or TRAINYARD_SERVER):
// the same verbs as locally, answered by the REST API. Exit codes as for
// local verbs: 2 when the server rejects the request (4xx), 3 when it
// cannot be reached or fails (5xx).
#pragma once
#include <string>
#include <vector>

namespace trainyard::cli {

struct Remote {
  std::string url;     // http://host:port
  std::string token;   // bearer token (--token or TRAINYARD_TOKEN)
  std::string output;  // table | json | yaml
};

int remoteSubmit(const Remote& r, const std::string& file, const std::vector<std::string>& overrides, bool follow);
// Trial jobs of experiments only with `trials` (--all), as the dashboard.
int remoteGetJobs(const Remote& r, const std::string& name, const std::string& phase, const std::string& label,
                  bool trials = false);
int remoteGetMetrics(const Remote& r, const std::string& job, bool all, const std::string& metric);
int remoteDescribeJob(const Remote& r, const std::string& name);
int remoteGetExperiments(const Remote& r);
int remoteGetTrials(const Remote& r, const std::string& experiment);
int remoteDescribeExperiment(const Remote& r, const std::string& name);
int remoteLogs(const Remote& r, const std::string& name, const std::string& replica, int attempt, bool follow);
// A job's outputs: the list (no path), or one file to `to` ("" or "-": stdout).
int remoteOutputs(const Remote& r, const std::string& job, const std::string& path, const std::string& to);
// `rerun JOB`: the server runs it again from its record, as this user.
int remoteRerun(const Remote& r, const std::string& name);
// `models push --from JOB --name MODEL` into the server's --models repository.
int remoteModelsPush(const Remote& r, const std::string& from, const std::string& name);
int remoteCancel(const Remote& r, const std::string& name, bool experiment);
// `suspend JOB` / `resume JOB`: Kubeflow's runPolicy.suspend, set on the server.
int remoteSuspend(const Remote& r, const std::string& name, bool suspend);
int remoteDelete(const Remote& r, const std::string& name);
int remoteTop(const Remote& r, bool once);
// `notebook list|start|stop|open|delete`: start takes a Notebook file (or
// the name of a stopped one); the others a name (and --owner, for admins).
int remoteNotebook(const Remote& r, const std::string& action, const std::string& target, const std::string& owner,
                   const std::vector<std::string>& overrides);
// Queues, cohorts and nodes.
int remoteGetQueues(const Remote& r);
int remoteGetNodes(const Remote& r);
int remoteNode(const Remote& r, const std::string& action, const std::string& name, const std::string& reason);

}  // namespace trainyard::cli
