// HTTP requests and responses as handlers see them, independent of the
// transport (http/server.h reads and writes them over Boost.Beast). The
// accessor names follow the ones handlers were first written against.
#pragma once
#include <any>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>

namespace trainyard::http {

struct CaseLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::multimap<std::string, std::string, CaseLess>;
using Params = std::multimap<std::string, std::string>;

struct Request {
  std::string method;
  std::string target;       // as sent: path and query
  std::string path;         // percent-decoded, without the query
  std::string body;
  std::string remote_addr;  // the peer's IP address
  Headers headers;
  Params params;            // query string, and the fields of a form body
  std::smatch matches;      // the route pattern's captures over `path`
  std::any context;         // set by the pre-routing hook (the caller, say)

  bool has_header(const std::string& key) const { return headers.count(key) > 0; }
  std::string get_header_value(const std::string& key) const;
  bool has_param(const std::string& key) const { return params.count(key) > 0; }
  std::string get_param_value(const std::string& key) const;
};

// Where a streamed body goes. write() is false once the client is gone.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual bool write(const char* data, size_t n) = 0;
  virtual bool is_writable() const = 0;
  virtual void done() = 0;  // the body is complete
};
// Called repeatedly on a thread of its own until it returns false or has
// called done(); it may block (a stream holds that thread, not an I/O one).
using StreamProducer = std::function<bool(StreamSink&)>;

// A handler's answer that is not an answer: the connection becomes a byte
// pipe to host:port (an IP address), after `head` (the request as the
// upstream should see it) is sent there. The upstream answers the client
// itself, e.g. "101 Switching Protocols" for a WebSocket it proxies.
struct Tunnel {
  std::string host;
  int port = 0;
  std::string head;
};

struct Response {
  int status = 200;
  std::string body;
  Headers headers;
  StreamProducer stream;  // set: a chunked body produced by repeated calls (SSE)
  std::optional<Tunnel> tunnel;  // set: splice the connection (http/server.h)

  void set_header(const std::string& key, const std::string& value);
  void set_content(std::string text, const std::string& content_type);
  void set_content(const char* data, size_t n, const std::string& content_type);
  void set_redirect(const std::string& url, int status = 302);
  void set_chunked_content_provider(const std::string& content_type, StreamProducer producer);
};

using Handler = std::function<void(const Request&, Response&)>;

// "a%20b" -> "a b"; '+' is a space only in form and query values.
std::string percentDecode(std::string_view s, bool plus_is_space);
// "a=1&b=x%20y" appended to `out`.
void parseQuery(std::string_view query, Params& out);

}  // namespace trainyard::http
