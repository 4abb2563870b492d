// The HTTP layer over real loopback sockets: limits answered with the error
// shape, streamed bodies, and connections that never finish a request.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "http/client.h"
#include "http/server.h"

using namespace trainyard::http;

namespace {
struct Running {
  explicit Running(ServerLimits limits) : server(limits) {}
  void start() {
    port = server.bind("127.0.0.1", 0);
    thread = std::thread([this] { server.listen(); });
  }
  ~Running() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
  std::string url() const { return "127.0.0.1:" + std::to_string(port); }
  Server server;
  int port = 0;
  std::thread thread;
};

// A raw connection that sends `bytes` and keeps the socket open.
int rawConnect(int port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  if (!bytes.empty()) (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  return fd;
}

// Waits (up to 10 s) for the server to close `fd`; true when it did.
bool closedByServer(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
    if (n < 0) return false;
  }
}
}  // namespace

TEST(HttpServer, RoutesLimitsAndErrorShapes) {
  ServerLimits l;
  l.max_header_bytes = 2048;
  Running s(l);
  s.server.Post("/small", [](const Request& req, Response& res) { res.set_content(req.body, "text/plain"); }, 10);
  s.server.Get(R"(/items/([^/]+))", [](const Request& req, Response& res) {
    res.set_content(req.matches[1].str() + "|" + req.get_param_value("q"), "text/plain");
  });
  s.server.set_pre_routing([](Request& req, Response& res) {
    if (req.path != "/private") return false;
    res.status = 401;
    return true;
  });
  s.start();
  Client c(s.url());
  EXPECT_EQ(c.request("POST", "/small", "0123456789", "text/plain").body, "0123456789");
  auto big = c.request("POST", "/small", "0123456789A", "text/plain");
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("\"code\":\"PayloadTooLarge\""), std::string::npos) << big.body;
  EXPECT_NE(big.body.find("10 bytes"), std::string::npos) << big.body;
  auto got = Client(s.url()).get("/items/a%20b?q=x+y%21");
  EXPECT_EQ(got.body, "a b|x y!");
  EXPECT_EQ(Client(s.url()).get("/private").status, 401);
  auto missing = Client(s.url()).get("/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("\"code\":\"NotFound\""), std::string::npos);
  auto huge = Client(s.url()).request("GET", "/items/x", "", "", {{"X-Big", std::string(4096, 'a')}});
  EXPECT_EQ(huge.status, 431);
}

TEST(HttpServer, StreamsChunksOnAThreadOfTheirOwn) {
  Running s(ServerLimits{});
  s.server.Get("/stream", [](const Request&, Response& res) {
    auto n = std::make_shared<int>(0);
    res.set_chunked_content_provider("text/event-stream", [n](StreamSink& sink) {
      std::string ev = "data: " + std::to_string((*n)++) + "\n\n";
      if (!sink.write(ev.data(), ev.size())) return false;
      if (*n == 3) sink.done();
      return true;
    });
  });
  s.start();
  std::string body;
  int status = 0;
  Client(s.url()).stream("/stream", {}, [&](int st) { status = st; }, [&](const char* d, size_t n) {
    body.append(d, n);
    return true;
  });
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

// Connections that never complete a request hold no handler thread; past the
// per-address cap the oldest of them makes room; past the deadline they go.
TEST(HttpServer, SlowClientsNeitherStallOthersNorStay) {
  ServerLimits l;
  l.workers = 1;
  l.max_connections_per_address = 8;
  l.request_timeout = std::chrono::milliseconds(300);
  Running s(l);
  s.server.Get("/healthz", [](const Request&, Response& res) { res.set_content("ok", "text/plain"); });
  s.start();
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) slow.push_back(rawConnect(s.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  // A ninth connection from the same address: served; the oldest slow one was evicted.
  EXPECT_EQ(Client(s.url()).get("/healthz").body, "ok");
  EXPECT_TRUE(closedByServer(slow[0]));
  // The rest are closed by the request deadline.
  for (size_t i = 1; i < slow.size(); ++i) EXPECT_TRUE(closedByServer(slow[i])) << i;
  for (int fd : slow) close(fd);
}

// One client cannot hold every stream thread: past its per-address cap it
// gets 503 while the streams it has keep going.
TEST(HttpServer, StreamsPerAddressAreCapped) {
  ServerLimits l;
  l.max_streams_per_address = 1;
  Running s(l);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  s.server.Get("/stream", [&](const Request&, Response& res) {
    res.set_chunked_content_provider("text/event-stream", [&](StreamSink& sink) {
      if (!sink.write("x\n", 2)) return false;
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return release; });
      sink.done();
      return true;
    });
  });
  s.start();
  std::promise<void> started;
  std::thread first([&] {
    bool told = false;
    Client(s.url()).stream("/stream", {}, [](int) {}, [&](const char*, size_t) {
      if (!told) started.set_value();
      told = true;
      return true;
    });
  });
  started.get_future().wait();
  auto second = Client(s.url()).get("/stream");
  EXPECT_EQ(second.status, 503);
  EXPECT_NE(second.body.find("this address holds 1 streams"), std::string::npos) << second.body;
  {
    std::lock_guard lk(mu);
    release = true;
  }
  cv.notify_all();
  first.join();
}

namespace {
// An upstream that answers a tunnel's head with 101, then echoes what comes
// in upper case until the other side has finished. It keeps what it got.
struct EchoUpstream {
  EchoUpstream() {
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listen_fd, 4);
    getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this] {
      int fd = accept(listen_fd, nullptr, nullptr);
      if (fd < 0) return;
      std::string got;
      char buf[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      size_t end = got.find("\r\n\r\n");
      head = got.substr(0, end == std::string::npos ? got.size() : end + 4);
      std::string rest = end == std::string::npos ? "" : got.substr(end + 4);
      std::string ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
      (void)!send(fd, ok.data(), ok.size(), MSG_NOSIGNAL);
      auto echo = [&](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        (void)!send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      };
      if (!rest.empty()) echo(rest);
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        echo(std::string(buf, static_cast<size_t>(n)));
      }
      close(fd);
    });
  }
  ~EchoUpstream() {
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    thread.join();
  }
  int listen_fd = -1;
  int port = 0;
  std::string head;
  std::thread thread;
};

// Reads from `fd` until `want` has arrived (or 10 s, or the end).
std::string readUntil(int fd, const std::string& want) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  while (got.find(want) == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}
}  // namespace

// A handler's Tunnel splices the connection to its upstream: the head goes
// first, then bytes both ways (bytes the client sent early too), and a
// half-close travels through. Unreachable upstreams are 502; past the cap
// per address, 503.
TEST(HttpServer, TunnelsSpliceAConnectionToItsUpstream) {
  EchoUpstream up;
  ServerLimits l;
  l.max_tunnels_per_address = 1;
  Running s(l);
  int upstream_port = up.port;
  s.server.Get("/ws", [upstream_port](const Request& req, Response& res) {
    res.tunnel = Tunnel{"127.0.0.1", upstream_port, "GET /upstream HTTP/1.1\r\nX-Added: " + req.get_header_value("X-Mine") + "\r\n\r\n"};
  });
  s.server.Get("/dead", [](const Request&, Response& res) { res.tunnel = Tunnel{"127.0.0.1", 1, "GET / HTTP/1.1\r\n\r\n"}; });
  s.start();

  int fd = rawConnect(s.port, "GET /ws HTTP/1.1\r\nHost: x\r\nX-Mine: yes\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nearly ");
  ASSERT_GE(fd, 0);
  std::string got = readUntil(fd, "EARLY ");
  EXPECT_EQ(got.rfind("HTTP/1.1 101", 0), 0u) << got;
  EXPECT_NE(got.find("EARLY "), std::string::npos) << got;
  // A second tunnel from this address while the first is open: refused.
  int second = rawConnect(s.port, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string busy = readUntil(second, "\r\n\r\n");
  EXPECT_EQ(busy.rfind("HTTP/1.1 503", 0), 0u) << busy;
  close(second);
  (void)!send(fd, "hello", 5, MSG_NOSIGNAL);
  EXPECT_NE(readUntil(fd, "HELLO").find("HELLO"), std::string::npos);
  shutdown(fd, SHUT_WR);  // the upstream sees the end, closes, and so does the tunnel
  EXPECT_TRUE(closedByServer(fd));
  close(fd);
  EXPECT_EQ(up.head, "GET /upstream HTTP/1.1\r\nX-Added: yes\r\n\r\n");

  auto dead = Client(s.url()).get("/dead");
  EXPECT_EQ(dead.status, 502);
  EXPECT_NE(dead.body.find("\"code\":\"BadGateway\""), std::string::npos) << dead.body;
}
