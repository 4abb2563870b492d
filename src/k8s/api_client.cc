#include "k8s/api_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

namespace trainyard::k8s {
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using json = nlohmann::json;

namespace {

constexpr int kTries = 5;
constexpr int kRequestTimeoutSeconds = 30;

// Blocking reads and writes give up after `seconds` (Beast's own timeouts
// apply to asynchronous operations only).
void setTimeouts(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

ApiError errorOf(int status, const std::string& body, const std::string& what) {
  std::string reason, message;
  try {
    auto j = json::parse(body);
    reason = j.value("reason", "");
    message = j.value("message", "");
  } catch (const json::exception&) {
    message = body.substr(0, 200);
  }
  return ApiError(status, reason, fmt::format("{}: {} {}{}", what, status, reason.empty() ? "" : reason + ": ", message));
}

}  // namespace

std::string withQuery(const std::string& path, const std::string& query) {
  return path + (path.find('?') == std::string::npos ? "?" : "&") + query;
}

struct ApiClient::Tls {
  ssl::context ctx{ssl::context::tls_client};
};

struct ApiClient::Connection {
  net::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  explicit Connection(ssl::context& ctx) : stream(ioc, ctx) {}
};

ApiClient::ApiClient(KubeConfig config) : config_(std::move(config)), tls_(std::make_unique<Tls>()) {
  const std::string& s = config_.server;
  if (s.rfind("https://", 0) != 0) throw std::runtime_error(fmt::format("{}: server {}: only https:// is supported", config_.source, s));
  std::string rest = s.substr(8);
  size_t slash = rest.find('/');
  base_path_ = slash == std::string::npos ? "" : rest.substr(slash);
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  std::string hostport = rest.substr(0, slash);
  size_t colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']', colon) == std::string::npos) {
    host_ = hostport.substr(0, colon);
    port_ = hostport.substr(colon + 1);
  } else {
    host_ = hostport;
    port_ = "443";
  }
  if (host_.size() > 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
  auto& ctx = tls_->ctx;
  if (config_.insecure) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    ctx.set_verify_mode(ssl::verify_peer);
    if (!config_.ca_pem.empty()) ctx.add_certificate_authority(net::buffer(config_.ca_pem));
    else ctx.set_default_verify_paths();
  }
  if (!config_.client_cert_pem.empty()) {
    ctx.use_certificate_chain(net::buffer(config_.client_cert_pem));
    ctx.use_private_key(net::buffer(config_.client_key_pem), ssl::context::pem);
  }
}

ApiClient::~ApiClient() = default;

std::unique_ptr<ApiClient::Connection> ApiClient::connect() {
  auto c = std::make_unique<Connection>(tls_->ctx);
  if (!config_.insecure) c->stream.set_verify_callback(ssl::host_name_verification(host_));
  if (!SSL_set_tlsext_host_name(c->stream.native_handle(), host_.c_str()))
    throw ApiError(0, "", fmt::format("{}: cannot set the TLS server name", config_.server));
  net::ip::tcp::resolver resolver(c->ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(host_, port_, ec);
  if (!ec) beast::get_lowest_layer(c->stream).connect(endpoints, ec);
  if (!ec) setTimeouts(beast::get_lowest_layer(c->stream).socket().native_handle(), kRequestTimeoutSeconds);
  if (!ec) c->stream.handshake(ssl::stream_base::client, ec);
  if (ec) throw ApiError(0, "", fmt::format("cannot reach the Kubernetes API at {}: {}", config_.server, ec.message()));
  return c;
}

ApiResponse ApiClient::once(Connection& c, const std::string& method, const std::string& target, const std::string& body,
                            const std::string& content_type) {
  http::request<http::string_body> req{http::string_to_verb(method), base_path_ + target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "trainyard");
  req.set(http::field::accept, "application/json");
  if (!config_.token.empty()) req.set(http::field::authorization, "Bearer " + config_.token);
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.set(http::field::content_type, content_type);
    req.body() = body;
  }
  req.keep_alive(true);
  req.prepare_payload();
  http::write(c.stream, req);
  http::response_parser<http::string_body> parser;
  parser.body_limit(256u << 20);  // a list of thousands of pods, not unbounded
  http::read(c.stream, c.buffer, parser);
  auto& res = parser.get();
  return {static_cast<int>(res.result_int()), std::move(res.body())};
}

ApiResponse ApiClient::request(const std::string& method, const std::string& path, const std::string& body,
                               const std::string& content_type) {
  std::lock_guard lk(mu_);
  auto delay = std::chrono::milliseconds(100);
  std::string last_error;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(delay);  // backoff between retries, not synchronisation
      delay *= 2;
    }
    try {
      if (!conn_) conn_ = connect();
      ApiResponse r = once(*conn_, method, path, body, content_type);
      if (r.status == 429 || r.status >= 500) {
        last_error = fmt::format("{} {}", r.status, r.body.substr(0, 200));
        conn_.reset();
        if (attempt + 1 < kTries) continue;
      }
      return r;
    } catch (const ApiError& e) {
      conn_.reset();
      last_error = e.what();
    } catch (const boost::system::system_error& e) {
      conn_.reset();  // the server closed the kept-alive connection, or a read timed out
      last_error = e.what();
    }
  }
  throw ApiError(0, "", fmt::format("{} {}{}: {} (after {} tries)", method, config_.server, path, last_error, kTries));
}

namespace {
json checked(const ApiResponse& r, const std::string& what) {
  if (r.status >= 400) throw errorOf(r.status, r.body, what);
  if (r.body.empty()) return json::object();
  try {
    return json::parse(r.body);
  } catch (const json::exception& e) {
    throw ApiError(r.status, "", fmt::format("{}: not JSON: {}", what, e.what()));
  }
}
}  // namespace

json ApiClient::get(const std::string& path) { return checked(request("GET", path), "GET " + path); }

json ApiClient::create(const std::string& path, const json& object) {
  return checked(request("POST", path, object.dump()), "POST " + path);
}

json ApiClient::mergePatch(const std::string& path, const json& patch) {
  return checked(request("PATCH", path, patch.dump(), "application/merge-patch+json"), "PATCH " + path);
}

json ApiClient::apply(const std::string& path, const json& object, const std::string& field_manager) {
  std::string target = withQuery(path, "fieldManager=" + field_manager + "&force=true");
  // JSON is YAML: the apply content type takes either.
  return checked(request("PATCH", target, object.dump(), "application/apply-patch+yaml"), "apply " + path);
}

bool ApiClient::remove(const std::string& path, const std::string& propagation) {
  json opts{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", propagation}};
  auto r = request("DELETE", path, opts.dump());
  if (r.status == 404) return false;
  checked(r, "DELETE " + path);
  return true;
}

bool ApiClient::stream(const std::string& target, const BytesFn& on_bytes, int idle_seconds) {
  auto c = connect();
  // A silent connection for longer than that is broken.
  setTimeouts(beast::get_lowest_layer(c->stream).socket().native_handle(), idle_seconds);
  http::request<http::empty_body> req{http::verb::get, base_path_ + target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "trainyard");
  req.set(http::field::accept, "application/json, */*");
  if (!config_.token.empty()) req.set(http::field::authorization, "Bearer " + config_.token);
  beast::error_code ec;
  http::write(c->stream, req, ec);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  if (!ec) http::read_header(c->stream, c->buffer, parser, ec);
  if (ec) throw ApiError(0, "", fmt::format("GET {}: {}", target, ec.message()));
  int status = static_cast<int>(parser.get().result_int());
  std::string error_body;
  char chunk[64 << 10];
  bool go_on = true;
  while (go_on && !parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // read_some: whatever has arrived (read() would wait for 64 KiB).
    http::read_some(c->stream, c->buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) break;  // the server went away: the caller goes on from what it has
    size_t n = sizeof chunk - parser.get().body().size;
    if (status != 200) {
      if (error_body.size() < (64u << 10)) error_body.append(chunk, n);
      continue;
    }
    if (n > 0) go_on = on_bytes(std::string_view(chunk, n));
  }
  if (status != 200) throw errorOf(status, error_body, "GET " + target);
  return go_on && !ec && parser.is_done();
}

std::string ApiClient::watch(const std::string& path, const std::string& resource_version, const WatchFn& on_event,
                             int timeout_seconds) {
  std::string target = withQuery(path, fmt::format("watch=1&allowWatchBookmarks=true&timeoutSeconds={}", timeout_seconds));
  if (!resource_version.empty()) target += "&resourceVersion=" + resource_version;
  std::string rv = resource_version, pending;
  // The server ends the stream after timeoutSeconds; silence for longer is a broken connection.
  stream(target, [&](std::string_view bytes) {
    pending.append(bytes);
    size_t start = 0;
    bool go_on = true;
    for (size_t nl; go_on && (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      json ev;
      try {
        ev = json::parse(pending.begin() + static_cast<std::ptrdiff_t>(start), pending.begin() + static_cast<std::ptrdiff_t>(nl));
      } catch (const json::exception&) {
        continue;  // not an event: skip the line
      }
      std::string type = ev.value("type", "");
      const json& obj = ev.contains("object") ? ev["object"] : json::object();
      if (type == "ERROR") throw errorOf(obj.value("code", 500), obj.dump(), "watch " + path);
      if (obj.contains("metadata") && obj["metadata"].contains("resourceVersion"))
        rv = obj["metadata"]["resourceVersion"].get<std::string>();
      go_on = on_event(type, obj);
    }
    pending.erase(0, start);
    if (pending.size() > (64u << 20)) throw ApiError(0, "", fmt::format("watch {}: an event over 64 MiB", path));
    return go_on;
  }, timeout_seconds + 30);
  return rv;
}

}  // namespace trainyard::k8s
