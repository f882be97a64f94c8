#include "control/k8s_client/kube_config.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string_view>
#include <utility>

#include <yaml-cpp/yaml.h>

namespace magline::k8s {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFileBytes = size_t(16) << 20;  // far above any kubeconfig; stops /dev/zero

// The whole file, or the reason it cannot be read (strerror). stdio rather than ifstream: a
// directory opens as an ifstream and throws std::ios_base::failure on the first read.
Result<std::string> read_file(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"),
                                                          &std::fclose);
  if (!f) return Error{std::strerror(errno)};
  std::string text;
  char buf[16384];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxFileBytes) return Error{"larger than 16 MiB"};
  }
  if (std::ferror(f.get())) return Error{std::strerror(errno)};  // e.g. EISDIR
  return text;
}

bool read_text(const std::string& path, std::string& out) {
  auto text = read_file(path);
  if (!text) return false;
  out = std::move(text).value();
  return true;
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// A kubeconfig string field; "" when absent. Throws YAML exceptions on a non-scalar.
std::string str(const YAML::Node& parent, const char* key) {
  const YAML::Node n = parent[key];
  if (!n || n.IsNull()) return {};
  if (!n.IsScalar()) throw YAML::Exception(n.Mark(), std::string(key) + ": expected a string");
  return n.as<std::string>();
}

// An error as one line: yaml-cpp quotes the character it stopped at, and entries are quoted
// from the file, so any byte of the file may be in it.
std::string one_line(const char* what) {
  std::string out;
  for (const char* p = what; *p != 0; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c >= 0x20 && c != 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// The entry named `name` in a kubeconfig list of {name, <field>} (clusters, users, contexts).
YAML::Node find_named(const YAML::Node& root, const char* list, const char* field,
                      const std::string& name) {
  const YAML::Node entries = root[list];
  if (!entries || entries.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  if (!entries.IsSequence())
    throw YAML::Exception(entries.Mark(), std::string(list) + ": expected a list");
  for (const YAML::Node& e : entries) {
    if (e.IsMap() && str(e, "name") == name) {
      const YAML::Node body = e[field];
      if (!body || body.IsNull()) return YAML::Node(YAML::NodeType::Map);  // present but empty
      if (!body.IsMap())
        throw YAML::Exception(body.Mark(), std::string(field) + ": expected a map");
      return body;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string resolve(const fs::path& base, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (base / p).lexically_normal().string();
}

int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool base64_decode(const std::string& in, std::string& out) {
  out.clear();
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (const char ch : in) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const int v = b64_value(c);
    if (v < 0 || padding) return false;  // a foreign byte, or data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return bits < 6;  // 6 leftover bits cannot come from whole bytes
}

std::string default_kubeconfig_path(const EnvLookup& getenv) {
  if (const char* k = getenv("KUBECONFIG"); k != nullptr && *k != '\0') {
    std::string first;
    std::string_view list(k);
    while (!list.empty()) {
      const size_t colon = list.find(':');
      const std::string entry(list.substr(0, colon));
      list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
      if (entry.empty()) continue;  // "a::b", a trailing ':'
      std::error_code ec;
      if (fs::exists(entry, ec)) return entry;
      if (first.empty()) first = entry;
    }
    if (!first.empty()) return first;
  }
  if (const char* home = getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.kube/config";
  }
  return {};
}

Result<void> check_files(const ApiConfig& config) {
  const std::pair<const char*, const std::string*> files[] = {
      {"certificate-authority", &config.ca_file},
      {"client-certificate", &config.client_cert_file},
      {"client-key", &config.client_key_file},
      {"tokenFile", &config.token_file},
  };
  for (const auto& [field, path] : files) {
    if (path->empty()) continue;
    if (auto text = read_file(*path); !text) {
      return Error{std::string(field) + " " + *path + ": cannot read: " + text.error().message};
    }
  }
  return {};
}

Result<ApiConfig> in_cluster_config(const EnvLookup& getenv, const std::string& sa_dir) {
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return Error{
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be "
        "set"};
  }
  ApiConfig c;
  std::string h(host);
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  c.server = "https://" + h + ":" + port;

  c.token_file = sa_dir + "/token";
  const auto token = read_file(c.token_file);
  if (!token) {
    return Error{"in-cluster config: cannot read the service-account token " + c.token_file + ": " +
                 token.error().message};
  }
  c.token = trim(*token);
  if (c.token.empty()) return Error{"in-cluster config: " + c.token_file + " is empty"};

  const std::string ca = sa_dir + "/ca.crt";
  std::error_code ec;
  if (fs::is_regular_file(ca, ec)) c.ca_file = ca;
  std::string ns;
  if (read_text(sa_dir + "/namespace", ns)) c.ns = trim(ns);
  return c;
}

namespace {

Result<ApiConfig> read_kubeconfig(const std::string& path, const std::string& context) {
  const std::string where = "kubeconfig " + path;
  const auto text = read_file(path);
  if (!text) return Error{where + ": cannot read the file: " + text.error().message};
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Error{where + ": " + e.what()};
  }
  if (!root.IsMap()) return Error{where + ": not a YAML map"};
  const fs::path base = fs::path(path).parent_path();

  try {
    const std::string ctx_name = context.empty() ? str(root, "current-context") : context;
    if (ctx_name.empty()) return Error{where + ": no context given and no current-context"};
    const YAML::Node ctx = find_named(root, "contexts", "context", ctx_name);
    if (!ctx) return Error{where + ": context \"" + ctx_name + "\" not found"};

    const std::string cluster_name = str(ctx, "cluster");
    const YAML::Node cluster = find_named(root, "clusters", "cluster", cluster_name);
    if (!cluster) {
      return Error{where + ": context \"" + ctx_name + "\": cluster \"" + cluster_name +
                   "\" not found"};
    }
    const std::string cwhere = where + ": cluster \"" + cluster_name + "\"";

    ApiConfig c;
    c.ns = str(ctx, "namespace");
    c.server = str(cluster, "server");
    if (c.server.empty()) return Error{cwhere + ": server is missing"};
    if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0) {
      return Error{cwhere + ": server \"" + c.server + "\" is not an http(s) URL"};
    }
    while (c.server.size() > 8 && c.server.back() == '/')
      c.server.pop_back();
    if (!str(cluster, "proxy-url").empty()) return Error{cwhere + ": proxy-url is not supported"};

    if (const std::string data = str(cluster, "certificate-authority-data"); !data.empty()) {
      if (!base64_decode(data, c.ca_pem)) {
        return Error{cwhere + ": certificate-authority-data is not valid base64"};
      }
    } else {
      c.ca_file = resolve(base, str(cluster, "certificate-authority"));
    }
    if (const YAML::Node n = cluster["insecure-skip-tls-verify"]; n && !n.IsNull()) {
      c.insecure_skip_tls_verify = n.as<bool>();
    }
    c.tls_server_name = str(cluster, "tls-server-name");

    const std::string user_name = str(ctx, "user");
    if (user_name.empty()) return c;  // anonymous
    const YAML::Node user = find_named(root, "users", "user", user_name);
    if (!user) {
      return Error{where + ": context \"" + ctx_name + "\": user \"" + user_name + "\" not found"};
    }
    const std::string uwhere = where + ": user \"" + user_name + "\"";
    if (user["exec"]) {
      return Error{uwhere +
                   ": exec credential plugins are not supported (use a token, tokenFile or a "
                   "client certificate)"};
    }
    if (user["auth-provider"]) {
      return Error{uwhere +
                   ": auth-provider is not supported (use a token, tokenFile or a client "
                   "certificate)"};
    }
    if (!str(user, "username").empty() || !str(user, "password").empty()) {
      return Error{uwhere + ": username/password (basic auth) is not supported"};
    }
    c.token = str(user, "token");
    c.token_file = resolve(base, str(user, "tokenFile"));
    if (const std::string data = str(user, "client-certificate-data"); !data.empty()) {
      if (!base64_decode(data, c.client_cert_pem)) {
        return Error{uwhere + ": client-certificate-data is not valid base64"};
      }
    } else {
      c.client_cert_file = resolve(base, str(user, "client-certificate"));
    }
    if (const std::string data = str(user, "client-key-data"); !data.empty()) {
      if (!base64_decode(data, c.client_key_pem)) {
        return Error{uwhere + ": client-key-data is not valid base64"};
      }
    } else {
      c.client_key_file = resolve(base, str(user, "client-key"));
    }
    const bool has_cert = !c.client_cert_file.empty() || !c.client_cert_pem.empty();
    const bool has_key = !c.client_key_file.empty() || !c.client_key_pem.empty();
    if (has_cert != has_key) {
      return Error{uwhere + ": a client certificate needs both the certificate and the key"};
    }
    return c;
  } catch (const YAML::Exception& e) {
    return Error{where + ": " + e.what()};
  } catch (const std::exception& e) {  // bad_alloc, or a yaml-cpp surprise: never an abort
    return Error{where + ": " + e.what()};
  }
}

}  // namespace

Result<ApiConfig> load_kubeconfig(const std::string& path, const std::string& context) {
  auto config = read_kubeconfig(path, context);
  if (!config) return Error{one_line(config.error().message.c_str())};
  return config;
}

}  // namespace magline::k8s
