// libFuzzer: a raw HTTP request through the server's parser, the request
// guard (with tokens) and the REST routes of `trainyard server` over a
// throwaway SQLite store (read-only: no control plane runs jobs here).
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "api/server.h"
#include "http/message.h"
#include "http/server.h"

using namespace trainyard;

namespace {
api::ApiServer& server() {
  static api::MetricsRegistry metrics;
  static api::ApiServer* s = [] {
    std::string dir = std::filesystem::temp_directory_path() / ("ty-fuzz-router-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/tokens.yaml") << "tokens:\n  - {token: alice-token-1, user: alice}\n  - {token: admin-token-1, user: ops, admin: true}\n";
    api::ServerOptions o;
    o.store = dir;
    o.data_dir = dir;
    o.access.auth = api::TokenAuth::load(dir + "/tokens.yaml");
    return new api::ApiServer(o, nullptr, metrics);
  }();
  return *s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(reinterpret_cast<const char*>(data), size);
  auto req = http::parseRequest(raw);
  if (!req) return 0;
  http::Response res;
  server().handle(*req, res);
  if (res.status < 100 || res.status > 599) __builtin_trap();
  return 0;
}
