// `trainyard server`: the control plane in the foreground until SIGINT or
// SIGTERM. Replicas keep running when it stops; the next start re-attaches.
#pragma once
#include <functional>
#include <string>

namespace trainyard::cli {

struct ServerCliOptions {
  std::string address = "127.0.0.1";
  int port = 8080;
  std::string data_dir;
  std::string store;      // "" = SQLite in data_dir
  std::string auth_file;  // "" = no authentication (loopback only)
  double grace_seconds = 10;
  std::string models_dir;  // also serve this model repository ("" = no)
};

int cmdServer(const ServerCliOptions& o);

// Blocks SIGINT/SIGTERM (and ignores SIGPIPE) in this and every later
// thread; a detached thread waits for them and calls on_stop(signal). Call
// it before starting other threads, so no HTTP thread is interrupted.
void stopOnSignal(std::function<void(int)> on_stop);

}  // namespace trainyard::cli
