// A notebook's private directory on the server's machine,
// DATA_DIR/notebooks/<job>/ (0700, owned by the jobs' Unix user): its two
// secrets, each made anew at every start, and Jupyter's runtime, config
// and data directories. Nothing in it is served over the API.
//   jupyter-token  Jupyter's own token (JUPYTER_TOKEN_FILE); only the
//                  server's proxy sends it, the browser never sees it
//   user-token     the owner's scoped API token (TRAINYARD_TOKEN in the
//                  notebook), valid while the notebook runs
#pragma once
#include <optional>
#include <string>

namespace trainyard::notebook {

std::string stateDir(const std::string& data_dir, const std::string& job_name);

// Creates (or empties the secrets of) the directory, with fresh tokens; the
// jobs' user (uid >= 0) is made its owner. Throws std::runtime_error.
void prepareStateDir(const std::string& dir, const std::string& job_name, int uid, int gid);

// "jupyter-token" or "user-token"; "" when missing.
std::string readSecret(const std::string& dir, const std::string& file);

// The port Jupyter listens on, from the newest server-info file it wrote
// (runtime/nbserver-<pid>.json); nullopt before it has started.
std::optional<int> jupyterPort(const std::string& dir);

// A scoped user token names its notebook's job: "tynb.<job>.<secret>".
std::optional<std::string> jobOfUserToken(const std::string& token);

// A port on 127.0.0.1 free at this instant.
int freeLoopbackPort();

// Two strings equal, in time independent of where they differ.
bool sameSecret(const std::string& a, const std::string& b);

}  // namespace trainyard::notebook
