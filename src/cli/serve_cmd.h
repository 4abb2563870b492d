// `trainyard serve` (the model server on its own) and `trainyard models
// push` (a job's or an experiment's best trial's exported model into the
// repository as the next version).
#pragma once
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "cli/server_cmd.h"

namespace trainyard::http {
class Server;
}

namespace trainyard::api {
class MetricsRegistry;
}

namespace trainyard::cli {

struct ServeOptions {
  std::string models_dir = "./models";
  std::string address = "127.0.0.1";
  int port = 8500;
  double poll_seconds = 2;
  // Handler threads: a request waiting for its batch holds one, so this bounds
  // the requests that can join a batch (64 clients -> batches of ~40). Idle
  // and slow connections hold none (event-driven).
  int threads = 96;
  AccessOptions access;
};

int cmdServe(const ServeOptions& o);

struct PushOptions {
  std::string data_dir;
  std::string from;        // job or experiment name
  std::string name;        // model name in the repository
  std::string models_dir = "./models";
};

int cmdModelsPush(const PushOptions& o, const std::string& output);
// What a push made ({model, version, path, from}), in the -o format.
void printPushed(const nlohmann::json& pushed, const std::string& output);

// Mounts the inference API for `models_dir` on a server (used by
// `trainyard server --models DIR` too); keeps what it needs alive for the
// process' lifetime. Throws when the repository or runtime cannot be used.
void hostModels(http::Server& http, const std::string& models_dir, double poll_seconds, api::MetricsRegistry& metrics);

}  // namespace trainyard::cli
