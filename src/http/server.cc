#include "http/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <utility>
#include <condition_variable>
#include <deque>
#include <limits>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace trainyard::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Route {
  std::string method;
  std::regex re;
  Handler handler;
  size_t max_body;
};

std::string jsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c < 0x20) out += fmt::format("\\u{:04x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

// The error shape the REST API uses everywhere: {"error": {"code", "message"}}.
void errorResponse(Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(fmt::format(R"({{"error":{{"code":"{}","message":"{}"}}}})", code, jsonEscape(message)),
                  "application/json; charset=utf-8");
}

// Fixed handler threads over a bounded queue: a burst of complete requests
// waits here (or is refused with 503), it never grows threads.
class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queued) : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkerPool() { stop(); }
  bool submit(std::function<void()> task) {
    std::lock_guard lk(mu_);
    if (stopped_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(task));
    cv_.notify_one();
    return true;
  }
  // Finishes running tasks, drops queued ones, joins.
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (stopped_ && threads_.empty()) return;
      stopped_ = true;
      cv_.notify_all();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::deque<std::function<void()>> drop;
    std::lock_guard lk(mu_);
    drop.swap(queue_);
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopped_ || !queue_.empty(); });
        if (stopped_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  size_t max_queued_;
  bool stopped_ = false;
};

// Blocking writes on a socket that no asynchronous operation uses any more
// (a streamed response owns its connection), each bounded by a timeout.
class FdSink : public StreamSink {
 public:
  FdSink(int fd, int timeout_ms) : fd_(fd), timeout_ms_(timeout_ms) {}
  bool raw(const char* p, size_t n) {
    while (n > 0 && !failed_) {
      ssize_t k = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (k > 0) {
        p += k;
        n -= static_cast<size_t>(k);
      } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd pf{fd_, POLLOUT, 0};
        if (::poll(&pf, 1, timeout_ms_) <= 0) failed_ = true;
      } else if (!(k < 0 && errno == EINTR)) {
        failed_ = true;
      }
    }
    return !failed_;
  }
  bool write(const char* data, size_t n) override {
    if (finished_ || failed_) return false;
    if (n == 0) return true;
    std::string head = fmt::format("{:x}\r\n", n);
    return raw(head.data(), head.size()) && raw(data, n) && raw("\r\n", 2);
  }
  bool is_writable() const override {
    if (failed_ || finished_) return false;
    pollfd pf{fd_, POLLOUT | POLLRDHUP, 0};
    if (::poll(&pf, 1, 0) < 0) return false;
    return !(pf.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL));
  }
  void done() override {
    if (!finished_ && !failed_) raw("0\r\n\r\n", 5);
    finished_ = true;
  }
  bool over() const { return finished_ || failed_; }

 private:
  int fd_;
  int timeout_ms_;
  bool failed_ = false;
  bool finished_ = false;
};

}  // namespace

class Session;

struct Server::Impl {
  explicit Impl(ServerLimits l) : limits(l) {}

  ServerLimits limits;
  std::vector<Route> routes;
  std::function<bool(Request&, Response&)> pre_routing;
  Handler not_found = [](const Request& req, Response& res) {
    errorResponse(res, 404, "NotFound", fmt::format("no such route: {} {}", req.method, req.path));
  };
  std::atomic<bool> stopped{false};
  std::atomic<int> connections{0};

  // Connections per client address; the ones still waiting for (the rest
  // of) a request, oldest first, are the ones evicted when it is full.
  struct Address {
    int count = 0;
    std::list<std::weak_ptr<Session>> waiting;
  };
  std::mutex addr_mu;
  std::unordered_map<std::string, Address> addresses;

  std::mutex stream_mu;
  std::condition_variable stream_cv;
  int streams = 0;
  std::unordered_map<std::string, int> streams_by_address;
  int tunnels = 0;  // guarded by stream_mu, as the streams
  std::unordered_map<std::string, int> tunnels_by_address;

  std::unique_ptr<WorkerPool> pool;
  // Last, so that it (and the sessions its handlers hold) goes first.
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer accept_retry{ioc};

  const Route* findRoute(const std::string& method, const std::string& path) const {
    for (const auto& r : routes)
      if (r.method == method && std::regex_match(path, r.re)) return &r;
    return nullptr;
  }
  void accept();
  void admit(tcp::socket socket);

  void dispatch(Request& req, const Route* route, Response& res) {
    try {
      bool answered = pre_routing && pre_routing(req, res);
      if (!answered) {
        if (route && std::regex_match(req.path, req.matches, route->re)) route->handler(req, res);
        else not_found(req, res);
      }
    } catch (const std::exception& e) {
      res = Response{};
      errorResponse(res, 500, "Internal", e.what());
    }
  }
};

namespace {
// The handlers' view of a parsed request.
void fillRequest(bhttp::request<bhttp::string_body>& m, const std::string& path, const std::string& addr, Request& req) {
  req.method = std::string(m.method_string());
  req.target = std::string(m.target());
  req.path = path;
  req.remote_addr = addr;
  for (const auto& f : m) req.headers.emplace(std::string(f.name_string()), std::string(f.value()));
  if (auto q = req.target.find('?'); q != std::string::npos) parseQuery(std::string_view(req.target).substr(q + 1), req.params);
  req.body = std::move(m.body());
  if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) parseQuery(req.body, req.params);
}

std::string decodedPath(std::string_view target) { return percentDecode(target.substr(0, target.find('?')), false); }
}  // namespace

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl* srv, std::string addr)
      : stream_(std::move(socket)), srv_(srv), addr_(std::move(addr)) {}

  ~Session() {
    {
      std::lock_guard lk(srv_->addr_mu);
      auto it = srv_->addresses.find(addr_);
      if (it != srv_->addresses.end()) {
        if (waiting_) it->second.waiting.erase(wait_it_);
        if (--it->second.count <= 0) srv_->addresses.erase(it);
      }
    }
    --srv_->connections;
  }

  void start() { readRequest(); }

  // Called with addr_mu held: this session leaves the waiting list.
  void evictLocked() {
    waiting_ = false;
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->close(); });
  }

 private:
  const ServerLimits& limits() const { return srv_->limits; }

  // A parse error deserves an answer; a closed or timed-out connection not.
  static bool malformed(const beast::error_code& ec) {
    return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() && ec != bhttp::error::end_of_stream &&
           ec != bhttp::error::partial_message;
  }

  void setWaiting(bool on) {
    std::lock_guard lk(srv_->addr_mu);
    if (on == waiting_) return;
    auto& a = srv_->addresses[addr_];
    if (on) {
      a.waiting.push_back(weak_from_this());
      wait_it_ = std::prev(a.waiting.end());
    } else {
      a.waiting.erase(wait_it_);
    }
    waiting_ = on;
  }

  void readRequest() {
    if (srv_->stopped) return close();
    setWaiting(true);
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().max_header_bytes));
    // Beast compares Content-Length with the limit as the header is parsed;
    // the route's own limit is set once the header names the route.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    route_ = nullptr;
    if (buffer_.size() > 0) return beginRequest();
    // Idle between requests: costs no thread, only the idle timeout.
    stream_.expires_after(limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->close();
      self->buffer_.commit(n);
      self->beginRequest();
    });
  }

  // One deadline from the request's first byte to its last.
  void beginRequest() {
    stream_.expires_after(limits().request_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (ec == bhttp::error::header_limit)
      return fail(431, "HeadersTooLarge", fmt::format("the request's headers are over {} bytes", limits().max_header_bytes));
    if (ec) return malformed(ec) ? fail(400, "BadRequest", fmt::format("malformed request: {}", ec.message())) : close();
    auto& h = parser_->get();
    path_ = decodedPath(h.target());
    route_ = srv_->findRoute(std::string(h.method_string()), path_);
    size_t limit = route_ && route_->max_body ? route_->max_body : limits().max_body_bytes;
    if (parser_->content_length() && *parser_->content_length() > limit)
      return fail(413, "PayloadTooLarge",
                  fmt::format("the request body ({} bytes) is over the limit of {} bytes for {} {}", *parser_->content_length(), limit,
                              std::string(h.method_string()), path_));
    parser_->body_limit(limit);
    body_limit_ = limit;
    if (parser_->is_done()) return onBody({});
    if (beast::iequals(h[bhttp::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue), [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->readBody();
      });
      return;
    }
    readBody();
  }

  void readBody() {
    bhttp::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) { self->onBody(ec); });
  }

  void onBody(beast::error_code ec) {
    if (ec == bhttp::error::body_limit)
      return fail(413, "PayloadTooLarge", fmt::format("the request body is over the limit of {} bytes for {}", body_limit_, path_));
    if (ec) return malformed(ec) ? fail(400, "BadRequest", fmt::format("malformed request: {}", ec.message())) : close();
    stream_.expires_never();
    setWaiting(false);
    auto req = std::make_shared<Request>();
    auto& m = parser_->get();
    fillRequest(m, path_, addr_, *req);
    keep_alive_ = m.keep_alive();
    version_ = m.version();
    const Route* route = route_;
    if (!srv_->pool->submit([self = shared_from_this(), req, route] { self->handle(req, route); })) {
      auto res = std::make_shared<Response>();
      errorResponse(*res, 503, "Busy", "the server has too many requests waiting; retry later");
      res->set_header("Retry-After", "1");
      keep_alive_ = false;
      write(res);
    }
  }

  // On a handler thread.
  void handle(const std::shared_ptr<Request>& req, const Route* route) {
    auto res = std::make_shared<Response>();
    srv_->dispatch(*req, route, *res);
    if (res->stream) return startStream(req, res);
    if (res->tunnel) return asio::post(stream_.get_executor(), [self = shared_from_this(), res] { self->startTunnel(*res->tunnel); });
    asio::post(stream_.get_executor(), [self = shared_from_this(), res] { self->write(res); });
  }

  void write(const std::shared_ptr<Response>& res) {
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>();
    msg->result(static_cast<unsigned>(res->status));
    msg->version(version_ ? version_ : 11);
    for (const auto& [k, v] : res->headers) msg->insert(k, v);
    msg->body() = std::move(res->body);
    msg->keep_alive(keep_alive_ && !srv_->stopped);
    msg->prepare_payload();
    stream_.expires_after(limits().write_timeout);
    bhttp::async_write(stream_, *msg, [self = shared_from_this(), msg](beast::error_code ec, size_t) {
      if (!ec && self->linger_) return self->lingerClose();
      if (ec || !msg->keep_alive()) return self->close();
      self->readRequest();
    });
  }

  // Answers at once and closes: the request could not be read.
  void fail(int status, const std::string& code, const std::string& message) {
    setWaiting(false);
    linger_ = true;
    auto res = std::make_shared<Response>();
    errorResponse(*res, status, code, message);
    keep_alive_ = false;
    write(res);
  }

  // A streamed body holds a thread of its own (up to max_streams) and the
  // connection, which closes when the stream ends.
  void startStream(const std::shared_ptr<Request>& req, const std::shared_ptr<Response>& res) {
    {
      std::lock_guard lk(srv_->stream_mu);
      int& mine = srv_->streams_by_address[addr_];
      bool full = srv_->streams >= limits().max_streams, greedy = mine >= limits().max_streams_per_address;
      if (full || greedy || srv_->stopped) {
        if (mine == 0) srv_->streams_by_address.erase(addr_);
        auto busy = std::make_shared<Response>();
        errorResponse(*busy, 503, "Busy",
                      greedy ? fmt::format("this address holds {} streams already; close one or retry later", mine)
                             : fmt::format("the server holds {} streams already; retry later", srv_->streams));
        keep_alive_ = false;
        asio::post(stream_.get_executor(), [self = shared_from_this(), busy] { self->write(busy); });
        return;
      }
      ++srv_->streams;
      ++mine;
    }
    std::thread([self = shared_from_this(), req = std::shared_ptr<Request>(req), res = std::shared_ptr<Response>(res)]() mutable {
      self->runStream(*res);
      Server::Impl* srv = self->srv_;
      std::string addr = self->addr_;
      asio::post(self->stream_.get_executor(), [self] { self->close(); });
      // Let go of the session before the count says the streams are over.
      self.reset();
      req.reset();
      res.reset();
      std::lock_guard lk(srv->stream_mu);
      --srv->streams;
      if (--srv->streams_by_address[addr] <= 0) srv->streams_by_address.erase(addr);
      srv->stream_cv.notify_all();
    }).detach();
  }

  void runStream(Response& res) {
    FdSink sink(stream_.socket().native_handle(), static_cast<int>(limits().write_timeout.count()));
    std::string head = fmt::format("HTTP/1.1 {} {}\r\n", res.status, std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(res.status))));
    for (const auto& [k, v] : res.headers) head += k + ": " + v + "\r\n";
    head += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if (!sink.raw(head.data(), head.size())) return;
    try {
      while (!sink.over() && !srv_->stopped && res.stream(sink)) {
      }
    } catch (const std::exception&) {
    }
    sink.done();
  }


  // The connection becomes a pipe to the tunnel's upstream: connect, send
  // the head and whatever the client sent after its request, then copy
  // both ways until both sides have finished. No deadline while relaying:
  // a WebSocket may be quiet for hours; the count per address bounds them.
  void startTunnel(const Tunnel& t) {
    {
      std::lock_guard lk(srv_->stream_mu);
      int& mine = srv_->tunnels_by_address[addr_];
      bool full = srv_->tunnels >= limits().max_tunnels, greedy = mine >= limits().max_tunnels_per_address;
      if (full || greedy || srv_->stopped) {
        if (mine == 0) srv_->tunnels_by_address.erase(addr_);
        return failTunnel(503, "Busy", greedy ? fmt::format("this address holds {} proxied connections already", mine)
                                             : fmt::format("the server holds {} proxied connections already", srv_->tunnels));
      }
      ++srv_->tunnels;
      ++mine;
    }
    Server::Impl* srv = srv_;
    std::string addr = addr_;
    tunnel_slot_ = std::shared_ptr<void>(nullptr, [srv, addr](void*) {
      std::lock_guard lk(srv->stream_mu);
      --srv->tunnels;
      if (--srv->tunnels_by_address[addr] <= 0) srv->tunnels_by_address.erase(addr);
    });
    beast::error_code ec;
    auto ip = asio::ip::make_address(t.host, ec);
    if (ec) return failTunnel(502, "BadGateway", fmt::format("the upstream {} is not an IP address", t.host));
    upstream_.emplace(stream_.get_executor());
    upstream_->expires_after(limits().connect_timeout);
    tcp::endpoint ep(ip, static_cast<unsigned short>(t.port));
    head_ = t.head;
    // Bytes the client sent after its request (rare before the 101) go too.
    auto extra = buffer_.data();
    head_.append(static_cast<const char*>(extra.data()), extra.size());
    buffer_.consume(buffer_.size());
    upstream_->async_connect(ep, [self = shared_from_this(), ep](beast::error_code ec) {
      if (ec)
        return self->failTunnel(502, "BadGateway", fmt::format("cannot reach {}:{}: {}", ep.address().to_string(), ep.port(), ec.message()));
      beast::error_code nd;
      self->upstream_->socket().set_option(tcp::no_delay(true), nd);  // frames are small and interactive
      self->upstream_->expires_after(self->limits().write_timeout);
      asio::async_write(*self->upstream_, asio::buffer(self->head_), [self](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->head_.clear();
        self->upstream_->expires_never();
        self->stream_.expires_never();
        self->up_buf_.resize(64 << 10);
        self->down_buf_.resize(64 << 10);
        self->relay(true);
        self->relay(false);
      });
    });
  }

  void failTunnel(int status, const std::string& code, const std::string& message) {
    auto res = std::make_shared<Response>();
    errorResponse(*res, status, code, message);
    keep_alive_ = false;
    write(res);
  }

  // One direction of a tunnel: read some, write it all, again. At the end
  // of one side the other side's sending half is shut, so half-closed
  // exchanges finish; when both are over the connection closes.
  void relay(bool to_upstream) {
    auto& buf = to_upstream ? up_buf_ : down_buf_;
    auto& from = to_upstream ? stream_ : *upstream_;
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), to_upstream](beast::error_code ec, size_t n) {
      auto& to = to_upstream ? *self->upstream_ : self->stream_;
      if (ec) {
        beast::error_code ignored;
        to.socket().shutdown(tcp::socket::shutdown_send, ignored);
        if (++self->relays_done_ == 2) {
          beast::error_code e2;
          self->upstream_->socket().close(e2);
          self->close();
        }
        return;
      }
      auto& buf = to_upstream ? self->up_buf_ : self->down_buf_;
      asio::async_write(to, asio::buffer(buf.data(), n), [self, to_upstream](beast::error_code ec, size_t) {
        if (ec) {
          beast::error_code ignored;
          self->upstream_->socket().close(ignored);
          return self->close();
        }
        self->relay(to_upstream);
      });
    });
  }

  // After refusing a request whose body is still arriving: stop sending,
  // read and drop what comes for a moment, so the client (still writing)
  // gets to read the answer instead of a reset connection.
  void lingerClose() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    drain(0);
  }
  void drain(size_t total) {
    auto buf = std::make_shared<std::array<char, 65536>>();
    stream_.async_read_some(asio::buffer(*buf), [self = shared_from_this(), buf, total](beast::error_code ec, size_t n) {
      if (ec || total + n > (256u << 20)) return self->close();
      self->drain(total + n);
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    if (upstream_) upstream_->close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Server::Impl* srv_;
  std::string addr_;
  std::string path_;
  const Route* route_ = nullptr;
  size_t body_limit_ = 0;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool closed_ = false;
  bool linger_ = false;
  bool waiting_ = false;  // guarded by srv_->addr_mu
  std::list<std::weak_ptr<Session>>::iterator wait_it_;
  // A tunnel's other end, what is sent there first, and its two buffers.
  std::optional<beast::tcp_stream> upstream_;
  std::string head_;
  std::vector<char> up_buf_, down_buf_;  // sized when a tunnel starts
  int relays_done_ = 0;
  std::shared_ptr<void> tunnel_slot_;  // releases the tunnel's count with the session
};

void Server::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopped) return;
    if (ec) {
      // Out of descriptors, say: try again shortly instead of spinning.
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](beast::error_code) { accept(); });
      return;
    }
    admit(std::move(socket));
    accept();
  });
}

void Server::Impl::admit(tcp::socket socket) {
  beast::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return;
  if (connections >= limits.max_connections) return;  // closed as `socket` goes
  std::string addr = ep.address().to_string();
  socket.set_option(tcp::no_delay(true), ec);
  {
    std::lock_guard lk(addr_mu);
    auto& a = addresses[addr];
    if (a.count >= limits.max_connections_per_address) {
      // The oldest connection of this address still sending (or not yet
      // sending) a request makes room; if all are being served, refuse.
      // (An entry whose session is already going stays: its destructor,
      // waiting for this lock, removes it.)
      bool evicted = false;
      for (auto it = a.waiting.begin(); it != a.waiting.end(); ++it)
        if (auto victim = it->lock()) {
          victim->evictLocked();
          a.waiting.erase(it);
          evicted = true;
          break;
        }
      if (!evicted) return;
    }
    ++a.count;
  }
  ++connections;
  std::make_shared<Session>(std::move(socket), this, std::move(addr))->start();
}

Server::Server(ServerLimits limits) : impl_(std::make_shared<Impl>(limits)) {}

Server::~Server() { stop(); }

void Server::route(const std::string& method, const std::string& pattern, Handler h, size_t max_body) {
  impl_->routes.push_back({method, std::regex(pattern), std::move(h), max_body});
}

void Server::set_pre_routing(std::function<bool(Request&, Response&)> hook) { impl_->pre_routing = std::move(hook); }

void Server::set_not_found(Handler h) { impl_->not_found = std::move(h); }

int Server::bind(const std::string& address, int port) {
  auto& a = impl_->acceptor;
  beast::error_code ec;
  auto ip = asio::ip::make_address(address == "localhost" ? "127.0.0.1" : address, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}: not an IP address", address));
  tcp::endpoint ep(ip, static_cast<unsigned short>(port));
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  // Children (a job's processes) must not inherit the port.
  if (!ec) ::fcntl(a.native_handle(), F_SETFD, FD_CLOEXEC);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", address, port, ec.message()));
  return a.local_endpoint().port();
}

void Server::listen() {
  auto& s = *impl_;
  if (s.stopped) return;
  s.pool = std::make_unique<WorkerPool>(s.limits.workers, static_cast<size_t>(s.limits.max_queued));
  s.accept();
  std::vector<std::thread> io;
  for (int i = 1; i < s.limits.io_threads; ++i) io.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : io) t.join();
  s.pool->stop();
  std::unique_lock lk(s.stream_mu);
  s.stream_cv.wait(lk, [&] { return s.streams == 0; });
}

void Server::stop() {
  auto& s = *impl_;
  if (s.stopped.exchange(true)) return;
  asio::post(s.ioc, [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
  });
  s.ioc.stop();
}

void Server::dispatch(Request& req, Response& res) { impl_->dispatch(req, impl_->findRoute(req.method, req.path), res); }

std::optional<Request> parseRequest(std::string_view raw, const ServerLimits& limits, std::string* error) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  parser.eager(true);
  beast::error_code ec;
  parser.put(asio::buffer(raw.data(), raw.size()), ec);
  if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
  if (ec) {
    if (error) *error = ec.message();
    return std::nullopt;
  }
  Request req;
  auto& m = parser.get();
  fillRequest(m, decodedPath(m.target()), "127.0.0.1", req);
  return req;
}

}  // namespace trainyard::http
