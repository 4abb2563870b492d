// A small blocking HTTP/1.1 client (Boost.Beast) for the CLI's verbs and the
// benchmarks: one keep-alive connection, re-opened once when the server
// closed it between requests. Plain http:// only (TLS belongs to a proxy in
// front of the server, which speaks plain HTTP itself).
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "http/message.h"

namespace trainyard::http {

// The server could not be reached or the exchange broke off.
struct ClientError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

class Client {
 public:
  // "http://host:port" (port 80 when absent), or "host:port". Throws
  // ClientError for another scheme.
  explicit Client(const std::string& url);
  ~Client();
  Client(Client&&) noexcept;

  void set_bearer_token(const std::string& token) { token_ = token; }
  void set_timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds read) {
    connect_timeout_ = connect;
    read_timeout_ = read;
  }

  // A response body over this many bytes is an error (ClientError).
  void set_max_body(size_t bytes) { max_body_ = bytes; }

  ClientResponse request(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& content_type = "", const Headers& extra = {});
  ClientResponse get(const std::string& target) { return request("GET", target); }

  // Reads the body as it arrives: on_status once, then on_data for each
  // piece until it returns false (the connection is then dropped) or the
  // body ends. Bodies of status >= 300 are given to on_data too.
  void stream(const std::string& target, const Headers& extra, const std::function<void(int)>& on_status,
              const std::function<bool(const char*, size_t)>& on_data);

 private:
  struct Conn;
  std::string host_, port_;
  std::string token_;
  std::chrono::milliseconds connect_timeout_{5000}, read_timeout_{3600 * 1000};
  size_t max_body_ = SIZE_MAX;
  std::unique_ptr<Conn> conn_;
};

}  // namespace trainyard::http
