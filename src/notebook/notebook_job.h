// A notebook is a job: one replica, role "notebook", that runs Debian's
// Jupyter (`jupyter-notebook`) on loopback, holding its resources through
// the same scheduler and queues as any job. This file is that translation
// and its inverse (which notebook a job is), without I/O.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "spec/notebook.h"
#include "spec/trainjob.h"

namespace trainyard::notebook {

// What the job records of the notebook, in its labels.
struct NotebookRef {
  std::string owner;  // "" for the anonymous user (a server without --auth)
  std::string name;
  int64_t idle_timeout_seconds = spec::kDefaultIdleTimeoutSeconds;
};

// "nb-<owner>-<name>", a DNS-1123 job name; throws std::invalid_argument
// with the reason when the two do not make one (too long).
std::string jobName(const std::string& owner, const std::string& name);
// The owner as a URL path segment: the user, or "_" for the anonymous one.
std::string ownerSegment(const std::string& owner);
// "/notebooks/<owner>/<name>/": where the server proxies it; Jupyter's base_url.
std::string basePath(const std::string& owner, const std::string& name);

std::optional<NotebookRef> notebookOf(const spec::TrainJobSpec& job);

struct Launch {
  std::string state_dir;    // private: tokens, Jupyter's runtime and config
  std::string working_dir;  // the notebook's directory (a workspace by default)
  int port = 0;             // the port asked for (Jupyter moves on if taken)
  std::string server_url;   // the API, as seen from the notebook
  std::string trainyard_bin;  // this binary: `trainyard` is on the notebook's PATH (appended)
};

// The job that runs `nb` for `owner`. Jupyter's token is read from a file
// in the state dir (JUPYTER_TOKEN_FILE), and so is the user's scoped API
// token (TRAINYARD_TOKEN): neither is in the stored spec.
spec::TrainJobSpec notebookJob(const spec::NotebookSpec& nb, const std::string& owner, const Launch& at);

}  // namespace trainyard::notebook
