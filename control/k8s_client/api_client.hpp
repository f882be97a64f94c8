// HTTP GETs against the Kubernetes API server through libcurl: authentication (bearer token,
// re-read from its file), TLS (CA, client certificate, SNI override), timeouts, and a stop flag
// that aborts a transfer blocked on a silent watch. Knows nothing about LIST or WATCH semantics:
// that is the watcher's (docs/k8s-client.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "control/k8s_client/kube_config.hpp"
#include "dataplane/result.hpp"

struct curl_slist;  // libcurl's, kept out of this header

namespace magline::k8s {

struct HttpResponse {
  // How the transfer ended. A non-2xx status is still `complete`: the status says the rest.
  enum class Transfer : uint8_t {
    complete,          // the whole response arrived (for a stream: a clean end of the body)
    failed,            // connect, TLS, reset, timeout, truncated body: `error` says which
    stopped,           // the stop flag was raised
    receiver_aborted,  // the stream callback returned false
  };
  Transfer transfer = Transfer::complete;
  long status = 0;  // 0: no status line was received
  // get(): the body. stream(): the body of a non-2xx response only (at most kMaxErrorBody).
  std::string body;
  std::optional<std::chrono::seconds> retry_after;  // the Retry-After header, in seconds form
  uint64_t bytes = 0;                               // body bytes received
  std::string error;                                // when transfer == failed

  bool complete() const noexcept { return transfer == Transfer::complete; }
};

struct ApiClientOptions {
  std::chrono::milliseconds connect_timeout{10000};
  // How long a token read from token_file is used before it is read again (client-go: a
  // minute, token_source.go). After invalidate_token() it is read before the next request.
  std::chrono::milliseconds token_period{60000};
  // get() (LIST): abort when fewer than low_speed_bytes per low_speed_time arrive (a stalled
  // server), and after total_timeout. stream() (WATCH) has neither: a watch may be silent for
  // minutes; its bound is the max_duration argument, and TCP keepalive finds dead peers.
  long low_speed_bytes = 1;
  std::chrono::seconds low_speed_time{30};
  std::chrono::seconds total_timeout{300};
  size_t max_body_bytes = size_t{1} << 30;  // get(): a larger body fails the transfer
  // Incremented on every re-read of the token file (not the first read). May be null.
  std::atomic<uint64_t>* token_reloads = nullptr;
};

class ApiClient {
 public:
  static constexpr size_t kMaxErrorBody = 64 * 1024;

  // Checks the configuration and reads the token file. `stop` (may be null) is polled during
  // transfers, at least about once a second: raising it ends a transfer promptly with
  // Transfer::stopped. It must outlive the client. Errors: no server or not an http(s) URL, a
  // token file that cannot be read when no static token is given, libcurl initialisation.
  static Result<std::unique_ptr<ApiClient>> create(ApiConfig config, ApiClientOptions options,
                                                   const std::atomic<bool>* stop);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // One client is used by one thread at a time (it owns a libcurl easy handle and reuses its
  // connection). Both calls block until the response ends, fails, or `stop` is raised.

  // A buffered GET of server + path_and_query (which must start with '/').
  HttpResponse get(const std::string& path_and_query);

  // A streaming GET: once the status is known, on_status(status) is called (may be empty);
  // for a 2xx status every body byte is handed to on_data as it arrives, in order, in pieces
  // of any size (returning false aborts: Transfer::receiver_aborted). The whole request is
  // bounded by max_duration (a watch asks the server for timeoutSeconds; this is the backstop).
  HttpResponse stream(const std::string& path_and_query,
                      const std::function<void(long status)>& on_status,
                      const std::function<bool(std::string_view)>& on_data,
                      std::chrono::milliseconds max_duration);

  // A buffered request with a body: POST, PUT, PATCH (or DELETE, with an empty body) of
  // server + path_and_query, the body sent as `content_type` (for PATCH: one of the types
  // k8s-api.md §6.1 lists, e.g. application/merge-patch+json). The answer as get() gives it.
  HttpResponse send(const std::string& method, const std::string& path_and_query,
                    const std::string& body, const std::string& content_type);

  // The server refused the token (401): read the token file again before the next request.
  void invalidate_token() noexcept { token_stale_ = true; }

  // The URL for path_and_query, as requests use it (tls_server_name replaces the host).
  std::string url(const std::string& path_and_query) const { return base_url_ + path_and_query; }

 private:
  struct Transfer;
  ApiClient(ApiConfig config, ApiClientOptions options, const std::atomic<bool>* stop);
  Result<void> init();
  void refresh_token();
  HttpResponse perform(const std::string& path_and_query, Transfer& t, bool streaming,
                       std::chrono::milliseconds max_duration,
                       const std::string* content_type = nullptr);

  static size_t on_write(char* data, size_t size, size_t n, void* user);
  static size_t on_header(char* data, size_t size, size_t n, void* user);
  static int on_progress(void* user, int64_t, int64_t, int64_t, int64_t);

  ApiConfig config_;
  ApiClientOptions options_;
  const std::atomic<bool>* stop_;
  void* curl_ = nullptr;  // CURL*
  ::curl_slist* connect_to_ = nullptr;
  std::string base_url_;
  std::string host_header_;  // "Host: <server's authority>" with tls_server_name
  std::string token_;
  std::chrono::steady_clock::time_point token_read_at_{};
  std::atomic<bool> token_stale_{false};
  Transfer* current_ = nullptr;  // the transfer in progress, for the callbacks
};

// Percent-encodes everything but RFC 3986 unreserved characters: for query values such as a
// label selector ("!service.kubernetes.io/headless" -> "%21service.kubernetes.io%2Fheadless").
std::string url_encode(std::string_view s);

}  // namespace magline::k8s
