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
