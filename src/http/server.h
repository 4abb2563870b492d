// An event-driven HTTP/1.1 server (Boost.Asio + Beast). Connections cost
// no thread while they send their request: a request is read completely,
// within a total deadline and size limits, before a handler thread sees it,
// so slow or idle clients (slowloris) cannot starve the others. Handlers run
// on a fixed pool; a streamed response (SSE) moves to a thread of its own,
// up to a cap; a tunnel (a proxied WebSocket) is relayed asynchronously. Limits per client address evict the oldest waiting
// connection of that address rather than refuse a new one.
#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <string>

#include "http/message.h"

namespace trainyard::http {

struct ServerLimits {
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 1 << 20;  // routes registered without their own limit
  // From a request's first byte to its last; and for a keep-alive connection
  // between requests. Either expiring closes the connection.
  std::chrono::milliseconds request_timeout{20000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds write_timeout{60000};
  int max_connections = 10000;
  int max_connections_per_address = 1024;
  int workers = 16;          // handler threads
  int max_queued = 4096;     // complete requests waiting for a handler; beyond: 503
  int max_streams = 512;     // concurrent streamed responses; beyond: 503
  int max_streams_per_address = 128;  // so one client cannot take them all
  // Spliced connections (Response::tunnel, e.g. proxied WebSockets): they
  // cost no thread, only two sockets and two 64 KiB buffers each.
  int max_tunnels = 1024;
  int max_tunnels_per_address = 256;
  std::chrono::milliseconds connect_timeout{5000};  // to a tunnel's upstream
  int io_threads = 1;
};

// Parses one complete request from `raw` as the server's connections do
// (header and body limits included); nullopt with `error` when it is not one.
std::optional<Request> parseRequest(std::string_view raw, const ServerLimits& limits = {}, std::string* error = nullptr);

class Server {
 public:
  explicit Server(ServerLimits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Routes: `pattern` is a regex over the whole decoded path. max_body 0:
  // the server's default. Routes are matched in registration order.
  void route(const std::string& method, const std::string& pattern, Handler h, size_t max_body = 0);
  void Get(const std::string& pattern, Handler h) { route("GET", pattern, std::move(h)); }
  void Post(const std::string& pattern, Handler h, size_t max_body = 0) { route("POST", pattern, std::move(h), max_body); }
  void Delete(const std::string& pattern, Handler h) { route("DELETE", pattern, std::move(h)); }

  // Runs before routing on every request; returning true means it answered.
  void set_pre_routing(std::function<bool(Request&, Response&)> hook);
  // Answers a request no route matched (default: 404 JSON error).
  void set_not_found(Handler h);

  // Binds (port 0: any free port); throws with the reason. Returns the port.
  int bind(const std::string& address, int port);
  // Serves until stop(); returns after in-flight handlers and streams ended.
  void listen();
  // Answers `req` as a connection would (pre-routing, route, handler),
  // without a socket: for tests and fuzzing. A streamed answer is not run.
  void dispatch(Request& req, Response& res);

  // Safe from any thread, also a signal-handling one, before or during listen().
  void stop();

 private:
  friend class Session;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace trainyard::http
