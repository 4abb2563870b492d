#include "http/client.h"

#include <limits>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace trainyard::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Asynchronous operations run to completion on a private io_context: the
// only way Beast puts a deadline on connect, write and read.
struct Client::Conn {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  bool open = false;

  template <typename Start>
  beast::error_code run(Start start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }
  // Resolves and connects within `timeout`; throws ClientError naming the host.
  void connect(const std::string& host, const std::string& port, std::chrono::milliseconds timeout) {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) throw ClientError(fmt::format("cannot resolve {}: {}", host, ec.message()));
    stream.expires_after(timeout);
    ec = run([&](auto h) { stream.async_connect(endpoints, [h](beast::error_code e, const tcp::endpoint&) mutable { h(e); }); });
    if (ec) throw ClientError(fmt::format("cannot connect to {}:{}: {}", host, port, ec.message()));
    stream.socket().set_option(tcp::no_delay(true), ec);  // header and body may leave as two writes
    open = true;
  }
  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    buffer.clear();
    open = false;
  }
};

Client::Client(const std::string& url) : conn_(std::make_unique<Conn>()) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos)
    throw ClientError(fmt::format("{}: only http:// server addresses are supported (terminate TLS in a proxy in front of the server)", url));
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest[0] == '[') {  // [::1]:8080
    auto close = rest.find(']');
    host_ = rest.substr(1, close - 1);
    rest = close + 1 < rest.size() ? rest.substr(close + 1) : "";
    port_ = !rest.empty() && rest[0] == ':' ? rest.substr(1) : "80";
  } else {
    auto colon = rest.rfind(':');
    host_ = rest.substr(0, colon);
    port_ = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  }
  if (host_.empty()) throw ClientError(fmt::format("{}: expected http://host:port", url));
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;

namespace {
std::string hostHeader(const std::string& host, const std::string& port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return port == "80" ? h : h + ":" + port;
}

// Host, User-Agent, the bearer token and the caller's own headers.
template <typename Message>
void addHeaders(Message& m, const std::string& host, const std::string& port, const std::string& token, const Headers& extra) {
  m.set(bhttp::field::host, hostHeader(host, port));
  m.set(bhttp::field::user_agent, "trainyard");
  if (!token.empty()) m.set(bhttp::field::authorization, "Bearer " + token);
  for (const auto& [k, v] : extra) m.insert(k, v);
}
}  // namespace

ClientResponse Client::request(const std::string& method, const std::string& target, const std::string& body,
                               const std::string& content_type, const Headers& extra) {
  bhttp::request<bhttp::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  addHeaders(req, host_, port_, token_, extra);
  if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
  req.body() = body;
  req.keep_alive(true);
  req.prepare_payload();

  auto& c = *conn_;
  for (int attempt = 0;; ++attempt) {
    bool reused = c.open;
    if (!c.open) c.connect(host_, port_, connect_timeout_);
    c.stream.expires_after(read_timeout_);
    beast::error_code ec = c.run([&](auto h) { bhttp::async_write(c.stream, req, h); });
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_body_);
    if (!ec) ec = c.run([&](auto h) { bhttp::async_read(c.stream, c.buffer, parser, h); });
    if (ec) {
      c.close();
      // A kept-alive connection the server closed meanwhile: open a new one.
      if (reused && attempt == 0) continue;
      throw ClientError(fmt::format("{} {} on {}:{}: {}", method, target, host_, port_, ec.message()));
    }
    auto& m = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(m.result_int());
    for (const auto& f : m) out.headers.emplace(std::string(f.name_string()), std::string(f.value()));
    out.body = std::move(m.body());
    if (!m.keep_alive()) c.close();
    return out;
  }
}

void Client::stream(const std::string& target, const Headers& extra, const std::function<void(int)>& on_status,
                    const std::function<bool(const char*, size_t)>& on_data) {
  auto& c = *conn_;
  c.close();  // a stream gets a connection of its own
  c.connect(host_, port_, connect_timeout_);
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
  addHeaders(req, host_, port_, token_, extra);
  c.stream.expires_after(read_timeout_);
  beast::error_code ec = c.run([&](auto h) { bhttp::async_write(c.stream, req, h); });
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!ec) ec = c.run([&](auto h) { bhttp::async_read_header(c.stream, c.buffer, parser, h); });
  if (ec) {
    c.close();
    throw ClientError(fmt::format("GET {} on {}:{}: {}", target, host_, port_, ec.message()));
  }
  on_status(static_cast<int>(parser.get().result_int()));
  char buf[16384];
  while (!parser.is_done()) {
    parser.get().body().data = buf;
    parser.get().body().size = sizeof buf;
    c.stream.expires_after(read_timeout_);
    // read_some: hand over what arrived (an SSE event is a few bytes), not a
    // full buffer.
    ec = c.run([&](auto h) { bhttp::async_read_some(c.stream, c.buffer, parser, h); });
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      c.close();
      throw ClientError(fmt::format("GET {} on {}:{}: {}", target, host_, port_, ec.message()));
    }
    size_t n = sizeof buf - parser.get().body().size;
    if (n > 0 && !on_data(buf, n)) break;
  }
  c.close();
}

}  // namespace trainyard::http
