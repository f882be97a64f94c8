#include "control/k8s_client/api_client.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

namespace magline::k8s {

namespace {

CURL* handle(void* p) {
  return static_cast<CURL*>(p);
}

bool read_token_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  // client-go's cached file token source trims whitespace (a trailing newline is common).
  const char* ws = " \t\r\n";
  const size_t b = t.find_first_not_of(ws);
  if (b == std::string::npos) return false;
  out = t.substr(b, t.find_last_not_of(ws) - b + 1);
  return true;
}

bool readable(const std::string& path) {
  return std::ifstream(path).good();
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

// The parts of a server URL: "https://[fd00::1]:6443/prefix" -> https, [fd00::1], 6443, /prefix.
struct ServerUrl {
  std::string scheme, host, port, prefix;
};

Result<ServerUrl> parse_server(const std::string& server) {
  ServerUrl u;
  const size_t sep = server.find("://");
  if (sep == std::string::npos) return Error{"server \"" + server + "\" is not a URL"};
  u.scheme = server.substr(0, sep);
  if (u.scheme != "https" && u.scheme != "http") {
    return Error{"server \"" + server + "\": only http and https are supported"};
  }
  std::string rest = server.substr(sep + 3);
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) u.prefix = rest.substr(slash);
  while (!u.prefix.empty() && u.prefix.back() == '/')
    u.prefix.pop_back();
  if (authority.empty()) return Error{"server \"" + server + "\" has no host"};
  size_t port_colon = std::string::npos;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return Error{"server \"" + server + "\": unclosed '['"};
    if (close + 1 < authority.size() && authority[close + 1] == ':') port_colon = close + 1;
    u.host = authority.substr(0, close + 1);
  } else {
    port_colon = authority.rfind(':');
    u.host = authority.substr(0, port_colon);
  }
  u.port = port_colon == std::string::npos ? (u.scheme == "https" ? "443" : "80")
                                           : authority.substr(port_colon + 1);
  return u;
}

}  // namespace

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

struct ApiClient::Transfer {
  HttpResponse resp;
  bool streaming = false;
  bool status_reported = false;
  bool receiver_aborted = false;
  bool too_large = false;
  size_t max_body = 0;
  const std::function<void(long)>* on_status = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
};

ApiClient::ApiClient(ApiConfig config, ApiClientOptions options, const std::atomic<bool>* stop)
    : config_(std::move(config)), options_(options), stop_(stop) {}

ApiClient::~ApiClient() {
  if (curl_ != nullptr) curl_easy_cleanup(handle(curl_));
  if (connect_to_ != nullptr) curl_slist_free_all(connect_to_);
}

Result<std::unique_ptr<ApiClient>> ApiClient::create(ApiConfig config, ApiClientOptions options,
                                                     const std::atomic<bool>* stop) {
  std::unique_ptr<ApiClient> c(new ApiClient(std::move(config), options, stop));
  if (auto r = c->init(); !r) return r.error();
  return c;
}

Result<void> ApiClient::init() {
  if (config_.server.empty()) return Error{"API client: no server configured"};
  auto url = parse_server(config_.server);
  if (!url) return Error{"API client: " + url.error().message};
  for (const std::string* f :
       {&config_.ca_file, &config_.client_cert_file, &config_.client_key_file}) {
    if (!f->empty() && !readable(*f)) return Error{"API client: cannot read " + *f};
  }

  token_ = config_.token;
  if (!config_.token_file.empty()) {
    std::string t;
    if (read_token_file(config_.token_file, t)) {
      token_ = std::move(t);
    } else if (token_.empty()) {
      return Error{"API client: cannot read the token file " + config_.token_file};
    }
    token_read_at_ = std::chrono::steady_clock::now();
  }

  // libcurl's global state is initialised once per process, before any handle exists.
  static std::once_flag once;
  static CURLcode global_rc = CURLE_OK;
  std::call_once(once, [] { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global_rc != CURLE_OK) return Error{"API client: curl_global_init failed"};
  curl_ = curl_easy_init();
  if (curl_ == nullptr) return Error{"API client: curl_easy_init failed"};
  CURL* h = handle(curl_);

  const bool override_name =
      !config_.tls_server_name.empty() && config_.tls_server_name != url->host;
  const std::string authority = url->host + ":" + url->port;
  if (override_name) {
    // Connect to the configured host, but speak TLS (SNI, certificate check) and build URLs
    // with tls_server_name, as client-go's TLSClientConfig.ServerName does. The Host header
    // keeps naming the server.
    base_url_ = url->scheme + "://" + config_.tls_server_name + ":" + url->port + url->prefix;
    connect_to_ = curl_slist_append(
        nullptr, (config_.tls_server_name + ":" + url->port + ":" + authority).c_str());
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to_);
    host_header_ = "Host: " + authority;
  } else {
    base_url_ = url->scheme + "://" + authority + url->prefix;
  }

  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "magline-k8s-client");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &ApiClient::on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, this);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &ApiClient::on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &ApiClient::on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, this);

  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  // A configured CA is the only trust anchor, as with client-go's RootCAs: no system CA path.
  if (!config_.ca_pem.empty()) {
    curl_blob blob{config_.ca_pem.data(), config_.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  } else if (!config_.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, config_.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
  }
  if (!config_.client_cert_pem.empty()) {
    curl_blob blob{config_.client_cert_pem.data(), config_.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!config_.client_cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, config_.client_cert_file.c_str());
  }
  if (!config_.client_key_pem.empty()) {
    curl_blob blob{config_.client_key_pem.data(), config_.client_key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!config_.client_key_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLKEY, config_.client_key_file.c_str());
  }
  return {};
}

void ApiClient::refresh_token() {
  if (config_.token_file.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  const bool stale = token_stale_.exchange(false);
  if (!stale && now - token_read_at_ < options_.token_period) return;
  token_read_at_ = now;
  // A failed read keeps the token we have (client-go logs and keeps its cached token).
  std::string t;
  if (read_token_file(config_.token_file, t)) token_ = std::move(t);
  if (options_.token_reloads != nullptr) {
    options_.token_reloads->fetch_add(1, std::memory_order_relaxed);
  }
}

HttpResponse ApiClient::get(const std::string& path_and_query) {
  Transfer t;
  t.max_body = options_.max_body_bytes;
  return perform(path_and_query, t, false, options_.total_timeout);
}

HttpResponse ApiClient::send(const std::string& method, const std::string& path_and_query,
                             const std::string& body, const std::string& content_type) {
  CURL* h = handle(curl_);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method != "DELETE" || !body.empty()) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  Transfer t;
  t.max_body = options_.max_body_bytes;
  HttpResponse r = perform(path_and_query, t, false, options_.total_timeout, &content_type);
  // Back to a plain GET for the next request on this handle.
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, nullptr);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, nullptr);
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  return r;
}

HttpResponse ApiClient::stream(const std::string& path_and_query,
                               const std::function<void(long)>& on_status,
                               const std::function<bool(std::string_view)>& on_data,
                               std::chrono::milliseconds max_duration) {
  Transfer t;
  t.streaming = true;
  t.max_body = kMaxErrorBody;
  t.on_status = on_status ? &on_status : nullptr;
  t.on_data = &on_data;
  return perform(path_and_query, t, true, max_duration);
}

HttpResponse ApiClient::perform(const std::string& path_and_query, Transfer& t, bool streaming,
                                std::chrono::milliseconds max_duration,
                                const std::string* content_type) {
  refresh_token();
  CURL* h = handle(curl_);
  struct curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (content_type != nullptr) {
    headers = curl_slist_append(headers, ("Content-Type: " + *content_type).c_str());
  }
  if (!token_.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
  if (!host_header_.empty()) headers = curl_slist_append(headers, host_header_.c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  const std::string url = base_url_ + path_and_query;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(max_duration.count()));
  if (streaming) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 0L);
  } else {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, options_.low_speed_bytes);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_time.count()));
  }

  current_ = &t;
  const CURLcode rc = curl_easy_perform(h);
  current_ = nullptr;
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);

  HttpResponse& r = t.resp;
  long code = 0;
  if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code != 0) r.status = code;
  if (rc == CURLE_OK) {
    r.transfer = HttpResponse::Transfer::complete;
  } else if (stop_ != nullptr && stop_->load(std::memory_order_relaxed)) {
    r.transfer = HttpResponse::Transfer::stopped;
  } else if (t.receiver_aborted) {
    r.transfer = HttpResponse::Transfer::receiver_aborted;
  } else {
    r.transfer = HttpResponse::Transfer::failed;
    if (t.too_large) {
      r.error = "response body exceeds " + std::to_string(t.max_body) + " bytes";
    } else {
      r.error = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(": ") + errbuf : "");
    }
  }
  return std::move(r);
}

size_t ApiClient::on_write(char* data, size_t size, size_t n, void* user) {
  Transfer& t = *static_cast<ApiClient*>(user)->current_;
  const size_t len = size * n;
  t.resp.bytes += len;
  if (t.streaming && t.resp.status >= 200 && t.resp.status < 300) {
    if (!(*t.on_data)(std::string_view(data, len))) {
      t.receiver_aborted = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    return len;
  }
  if (t.resp.body.size() + len > t.max_body) {
    if (t.streaming) {  // an error body: keep its beginning
      t.resp.body.append(data, t.max_body - t.resp.body.size());
      return len;
    }
    t.too_large = true;
    return 0;
  }
  t.resp.body.append(data, len);
  return len;
}

size_t ApiClient::on_header(char* data, size_t size, size_t n, void* user) {
  Transfer& t = *static_cast<ApiClient*>(user)->current_;
  const size_t len = size * n;
  std::string_view line(data, len);
  if (iequals_prefix(line, "http/")) {
    // A new response (an interim 1xx, or the final one): its status and headers replace any
    // earlier ones.
    const size_t sp = line.find(' ');
    t.resp.status =
        sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    t.resp.retry_after.reset();
  } else if (iequals_prefix(line, "retry-after:")) {
    std::string v(line.substr(12));
    const char* ws = " \t\r\n";
    const size_t b = v.find_first_not_of(ws);
    v = b == std::string::npos ? "" : v.substr(b, v.find_last_not_of(ws) - b + 1);
    // Only the delay-seconds form (RFC 9110 §10.2.3); the apiserver sends nothing else.
    if (!v.empty() && v.size() < 9 && v.find_first_not_of("0123456789") == std::string::npos) {
      t.resp.retry_after = std::chrono::seconds(std::atol(v.c_str()));
    }
  } else if (line == "\r\n" || line == "\n") {
    if (t.resp.status >= 200 && !t.status_reported) {
      t.status_reported = true;
      if (t.on_status != nullptr) (*t.on_status)(t.resp.status);
    }
  }
  return len;
}

int ApiClient::on_progress(void* user, int64_t, int64_t, int64_t, int64_t) {
  const auto* self = static_cast<ApiClient*>(user);
  return self->stop_ != nullptr && self->stop_->load(std::memory_order_relaxed) ? 1 : 0;
}

}  // namespace magline::k8s
