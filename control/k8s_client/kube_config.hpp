// Where the API server is and how to authenticate to it: from a pod's service account
// (client-go rest.InClusterConfig) or from a kubeconfig file (client-go clientcmd), as described in
// k8s-api.md §5 and docs/k8s-client.md. Only reads files; nothing here talks to the network.
#pragma once

#include <functional>
#include <string>

#include "dataplane/result.hpp"

namespace magline::k8s {

// Everything a request needs. PEM data takes precedence over the matching file when both are
// set; token_file, when set, takes precedence over token and is re-read periodically by the
// client (projected service-account tokens rotate).
struct ApiConfig {
  std::string server;  // "https://host:port" (optionally with a path prefix), no trailing '/'
  std::string ca_file, ca_pem;  // neither: the system trust store
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // SNI and the name checked against the certificate, when set
  std::string token;
  std::string token_file;
  std::string client_cert_file, client_cert_pem, client_key_file, client_key_pem;
  // The pod's namespace (in cluster) or the context's namespace (kubeconfig); empty if unknown.
  // Informational: the watcher's namespace is its own option.
  std::string ns;
};

// getenv-shaped lookup, injectable for tests: returns nullptr when the variable is unset.
using EnvLookup = std::function<const char*(const char*)>;

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// The in-cluster configuration: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT (an
// IPv6 host bracketed), the token read from <sa_dir>/token now (an error if unreadable) and kept
// as token_file for re-reads, <sa_dir>/ca.crt as the CA when it exists (otherwise the system
// store, as client-go falls back), <sa_dir>/namespace as ns. Errors: either variable unset
// ("not running in a cluster"), token unreadable or empty.
Result<ApiConfig> in_cluster_config(const EnvLookup& getenv,
                                    const std::string& sa_dir = kServiceAccountDir);

// Reads a kubeconfig file (YAML) and resolves `context` (empty: current-context) to its cluster
// and user. Relative file paths (certificate-authority, client-certificate, client-key,
// tokenFile) are relative to the kubeconfig's directory; *-data fields are base64 PEM. Errors
// name the file and the offending entry: unreadable or malformed YAML, unknown context, cluster
// or user, missing server, bad base64, and credentials this client does not support (exec
// plugins, auth-provider, username/password) or proxy-url.
Result<ApiConfig> load_kubeconfig(const std::string& path, const std::string& context = "");

// Every file `config` names (certificate-authority, client-certificate, client-key, tokenFile)
// can be read now: the client reads them only when it connects, and would retry a missing CA
// forever. Errors name the kubeconfig field, the file and the system's reason, e.g.
// `certificate-authority /etc/k/ca.crt: cannot read: No such file or directory`.
Result<void> check_files(const ApiConfig& config);

// The kubeconfig path kubectl would start from: with $KUBECONFIG set (a ':' list), its first
// file that exists (kubectl merges them all; this client reads that one only), or its first
// entry when none exists (so that the error names it); else $HOME/.kube/config; empty when
// neither variable is set.
std::string default_kubeconfig_path(const EnvLookup& getenv);

// Standard base64 (RFC 4648 §4, padding optional, whitespace ignored). false on any other byte.
bool base64_decode(const std::string& in, std::string& out);

}  // namespace magline::k8s
