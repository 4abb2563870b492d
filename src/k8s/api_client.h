// A small client of the Kubernetes REST API over HTTPS (Boost.Beast and
// OpenSSL; no kubectl, no client library: none is maintained for C++).
// Requests go over one keep-alive connection guarded by a mutex; each watch
// has its own connection, so any thread may call anything.
//
// Errors: a status >= 400 from the JSON helpers is an ApiError carrying the
// status, the Status object's reason and message. 429, 5xx and a broken
// connection are retried with backoff (0.1 s doubling, 5 tries) before that.
// A watch whose resourceVersion is too old fails with ApiError 410 (sent as
// a status or as an ERROR event): list again, then watch from the list.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "k8s/kubeconfig.h"

namespace trainyard::k8s {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string reason, const std::string& message)
      : std::runtime_error(message), status(status), reason(std::move(reason)) {}
  int status;          // HTTP status; 0 = the server could not be reached
  std::string reason;  // the Status's reason: NotFound, AlreadyExists, Forbidden, Expired, Gone...
};

struct ApiResponse {
  int status = 0;
  std::string body;
};

class ApiClient {
 public:
  explicit ApiClient(KubeConfig config);
  ~ApiClient();
  const KubeConfig& config() const { return config_; }

  // One request, retried as above; any final status is returned as it is.
  ApiResponse request(const std::string& method, const std::string& path, const std::string& body = "",
                      const std::string& content_type = "application/json");

  // JSON in and out; throw ApiError for a status >= 400.
  nlohmann::json get(const std::string& path);
  nlohmann::json create(const std::string& path, const nlohmann::json& object);  // POST to the collection
  nlohmann::json mergePatch(const std::string& path, const nlohmann::json& patch);
  // Server-side apply of `object` at its own path, owned by `field_manager` (force: take conflicting fields).
  nlohmann::json apply(const std::string& path, const nlohmann::json& object, const std::string& field_manager);
  // DELETE; a missing object is not an error (returns false).
  bool remove(const std::string& path, const std::string& propagation = "Background");

  // Watches the collection `path` from `resource_version` (bookmarks on):
  // `on_event(type, object)` for each ADDED, MODIFIED, DELETED or BOOKMARK
  // until it returns false, the server ends the stream or `timeout_seconds`
  // pass. Returns the last resourceVersion seen (where to watch on from).
  using WatchFn = std::function<bool(const std::string& type, const nlohmann::json& object)>;
  std::string watch(const std::string& path, const std::string& resource_version, const WatchFn& on_event,
                    int timeout_seconds = 60);

  // GET `target` (path and query) on a connection of its own and hand the
  // body to `on_bytes` as it arrives, until it returns false or the body
  // ends (a follow=true log: when the container ends). Returns whether the
  // body ended as the server meant it to (false: the connection broke, was
  // silent for `idle_seconds`, or on_bytes stopped it). ApiError for a
  // status other than 200, or when the server cannot be reached (status 0).
  using BytesFn = std::function<bool(std::string_view bytes)>;
  bool stream(const std::string& target, const BytesFn& on_bytes, int idle_seconds);

 private:
  struct Connection;
  std::unique_ptr<Connection> connect();
  ApiResponse once(Connection& c, const std::string& method, const std::string& target, const std::string& body,
                   const std::string& content_type);
  KubeConfig config_;
  std::string host_, port_, base_path_;
  struct Tls;
  std::unique_ptr<Tls> tls_;
  std::mutex mu_;
  std::unique_ptr<Connection> conn_;
};

// `path` with `query` appended ("?" or "&").
std::string withQuery(const std::string& path, const std::string& query);

}  // namespace trainyard::k8s
