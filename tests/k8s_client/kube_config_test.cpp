#include "control/k8s_client/kube_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace magline::k8s {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kubecfg-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const fs::path p = fs::path(path_) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

EnvLookup env(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

// base64 of "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n" and friends.
constexpr const char* kCaPem = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
constexpr const char* kCaB64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";

TEST(Base64, DecodesWithAndWithoutPaddingAndIgnoresWhitespace) {
  std::string out;
  ASSERT_TRUE(base64_decode(kCaB64, out));
  EXPECT_EQ(out, kCaPem);
  ASSERT_TRUE(base64_decode("aGk=", out));
  EXPECT_EQ(out, "hi");
  ASSERT_TRUE(base64_decode("aGk", out));
  EXPECT_EQ(out, "hi");
  ASSERT_TRUE(base64_decode("aG\nk=\n", out));
  EXPECT_EQ(out, "hi");
  ASSERT_TRUE(base64_decode("", out));
  EXPECT_EQ(out, "");
}

TEST(Base64, RejectsForeignBytesAndDataAfterPadding) {
  std::string out;
  EXPECT_FALSE(base64_decode("aGk*", out));
  EXPECT_FALSE(base64_decode("aG=k", out));
  EXPECT_FALSE(base64_decode("a", out));  // 6 bits: not a whole byte
}

TEST(InCluster, BuildsTheServerAndReadsTheServiceAccount) {
  TempDir d;
  d.write("sa/token", "tok-123\n");
  d.write("sa/ca.crt", kCaPem);
  d.write("sa/namespace", "kube-system");
  auto c = in_cluster_config(
      env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
      d.path() + "/sa");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token, "tok-123");
  EXPECT_EQ(c->token_file, d.path() + "/sa/token");  // kept: the client re-reads it
  EXPECT_EQ(c->ca_file, d.path() + "/sa/ca.crt");
  EXPECT_EQ(c->ns, "kube-system");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
}

TEST(InCluster, BracketsAnIpv6Host) {
  TempDir d;
  d.write("sa/token", "t");
  auto c = in_cluster_config(
      env({{"KUBERNETES_SERVICE_HOST", "fd00:10:96::1"}, {"KUBERNETES_SERVICE_PORT", "6443"}}),
      d.path() + "/sa");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://[fd00:10:96::1]:6443");
  EXPECT_EQ(c->ca_file, "");  // no ca.crt: the system store, as client-go falls back
}

TEST(InCluster, NeedsBothVariables) {
  TempDir d;
  d.write("sa/token", "t");
  auto c = in_cluster_config(env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}}), d.path() + "/sa");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("KUBERNETES_SERVICE_PORT"), std::string::npos);
  EXPECT_FALSE(in_cluster_config(env({}), d.path() + "/sa").ok());
}

TEST(InCluster, MissingOrEmptyTokenIsAnError) {
  TempDir d;
  const auto vars =
      env({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  auto c = in_cluster_config(vars, d.path() + "/sa");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("token"), std::string::npos);
  d.write("sa/token", "\n");
  EXPECT_FALSE(in_cluster_config(vars, d.path() + "/sa").ok());
}

constexpr const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K
    tls-server-name: kubernetes.default
- name: dev
  cluster:
    server: https://[::1]:6443
    certificate-authority: certs/ca.crt
    insecure-skip-tls-verify: false
users:
- name: alice
  user:
    tokenFile: secrets/token
    client-certificate: /abs/alice.crt
    client-key: alice.key
- name: bot
  user:
    token: static-token
    client-certificate-data: aGk=
    client-key-data: aG8=
contexts:
- name: dev
  context:
    cluster: dev
    user: alice
    namespace: team-a
- name: prod
  context:
    cluster: prod
    user: bot
- name: anon
  context:
    cluster: prod
)";

TEST(Kubeconfig, CurrentContextWithPathsRelativeToTheFile) {
  TempDir d;
  const std::string path = d.write("kube/config", kKubeconfig);
  auto c = load_kubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://[::1]:6443");
  EXPECT_EQ(c->ca_file, d.path() + "/kube/certs/ca.crt");
  EXPECT_EQ(c->ca_pem, "");
  EXPECT_EQ(c->token_file, d.path() + "/kube/secrets/token");
  EXPECT_EQ(c->client_cert_file, "/abs/alice.crt");
  EXPECT_EQ(c->client_key_file, d.path() + "/kube/alice.key");
  EXPECT_EQ(c->ns, "team-a");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
}

TEST(Kubeconfig, NamedContextWithInlineData) {
  TempDir d;
  const std::string path = d.write("config", kKubeconfig);
  auto c = load_kubeconfig(path, "prod");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->server, "https://prod.example:6443");  // trailing '/' dropped
  EXPECT_EQ(c->ca_pem, kCaPem);
  EXPECT_EQ(c->ca_file, "");
  EXPECT_EQ(c->tls_server_name, "kubernetes.default");
  EXPECT_EQ(c->token, "static-token");
  EXPECT_EQ(c->token_file, "");
  EXPECT_EQ(c->client_cert_pem, "hi");
  EXPECT_EQ(c->client_key_pem, "ho");
}

TEST(Kubeconfig, ContextWithoutUserIsAnonymous) {
  TempDir d;
  auto c = load_kubeconfig(d.write("config", kKubeconfig), "anon");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->token, "");
  EXPECT_EQ(c->client_cert_pem, "");
}

TEST(Kubeconfig, InsecureSkipVerify) {
  TempDir d;
  auto c = load_kubeconfig(d.write("config", R"(current-context: c
clusters: [{name: k, cluster: {server: "https://1.2.3.4", insecure-skip-tls-verify: true}}]
contexts: [{name: c, context: {cluster: k}}]
)"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->insecure_skip_tls_verify);
}

struct BadCase {
  const char* description;
  std::string yaml;
  std::string context;
  const char* expected;  // a substring of the error
};

TEST(Kubeconfig, ErrorsNameTheProblem) {
  const std::string cluster = "clusters: [{name: k, cluster: {server: \"https://h:1\"}}]\n";
  const std::vector<BadCase> cases = {
      {.description = "unknown context",
       .yaml = kKubeconfig,
       .context = "nope",
       .expected = "context \"nope\" not found"},
      {.description = "no current context",
       .yaml = cluster,
       .context = "",
       .expected = "no current-context"},
      {.description = "unknown cluster",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: x}}]\n" + cluster,
       .context = "",
       .expected = "cluster \"x\" not found"},
      {.description = "unknown user",
       .yaml =
           "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" + cluster,
       .context = "",
       .expected = "user \"u\" not found"},
      {.description = "no server",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
               "clusters: [{name: k, cluster: {}}]\n",
       .context = "",
       .expected = "server is missing"},
      {.description = "exec plugin",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
               cluster + "users: [{name: u, user: {exec: {command: aws}}}]\n",
       .context = "",
       .expected = "exec credential plugins are not supported"},
      {.description = "auth provider",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
               cluster + "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n",
       .context = "",
       .expected = "auth-provider is not supported"},
      {.description = "basic auth",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
               cluster + "users: [{name: u, user: {username: a, password: b}}]\n",
       .context = "",
       .expected = "basic auth"},
      {.description = "bad base64",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
               "clusters: [{name: k, cluster: {server: \"https://h\", "
               "certificate-authority-data: \"!!notbase64\"}}]\n",
       .context = "",
       .expected = "not valid base64"},
      {.description = "cert without key",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n" +
               cluster + "users: [{name: u, user: {client-certificate: a.crt}}]\n",
       .context = "",
       .expected = "both the certificate and the key"},
      {.description = "not a URL",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
               "clusters: [{name: k, cluster: {server: \"h:6443\"}}]\n",
       .context = "",
       .expected = "not an http(s) URL"},
      {.description = "proxy",
       .yaml = "current-context: c\ncontexts: [{name: c, context: "
               "{cluster: k}}]\nclusters: [{name: k, cluster: {server: "
               "\"https://h\", proxy-url: \"http://p:3128\"}}]\n",
       .context = "",
       .expected = "proxy-url is not supported"},
      {.description = "wrong type",
       .yaml = "current-context: [a, b]\n",
       .context = "",
       .expected = "expected a string"},
      {.description = "bad bool",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
               "clusters: [{name: k, cluster: {server: \"https://h\", "
               "insecure-skip-tls-verify: maybe}}]\n",
       .context = "",
       .expected = "bad conversion"},
      // YAML has no number overflow (1e999 is a string until read as something else), but
      // what reads it must still refuse it rather than throw.
      {.description = "huge number as a bool",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
               "clusters: [{name: k, cluster: {server: \"https://h\", "
               "insecure-skip-tls-verify: 1e999}}]\n",
       .context = "",
       .expected = "bad conversion"},
      {.description = "huge number as the server",
       .yaml = "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
               "clusters: [{name: k, cluster: {server: 1e999}}]\n",
       .context = "",
       .expected = "server \"1e999\" is not an http(s) URL"},
      {.description = "malformed YAML",
       .yaml = "clusters: [\n",
       .context = "",
       .expected = "kubeconfig"},
      {.description = "not a map",
       .yaml = "- a\n- b\n",
       .context = "",
       .expected = "not a YAML map"},
  };
  for (const BadCase& bc : cases) {
    TempDir d;
    auto c = load_kubeconfig(d.write("config", bc.yaml), bc.context);
    ASSERT_FALSE(c.ok()) << bc.description;
    EXPECT_NE(c.error().message.find(bc.expected), std::string::npos)
        << bc.description << ": " << c.error().message;
  }
}

TEST(Kubeconfig, MissingFileIsAnError) {
  auto c = load_kubeconfig("/nonexistent/kubeconfig");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("cannot read"), std::string::npos) << c.error().message;
}

// A directory opens as an ifstream and used to throw from the first read (an abort, exit 134).
TEST(Kubeconfig, ADirectoryIsAnError) {
  TempDir d;
  auto c = load_kubeconfig(d.path());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "kubeconfig " + d.path() + ": cannot read the file: Is a directory");
  // The service account's token likewise.
  fs::create_directories(d.path() + "/sa/token");
  auto in = in_cluster_config(
      env({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
      d.path() + "/sa");
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.error().message, "in-cluster config: cannot read the service-account token " +
                                    d.path() + "/sa/token: Is a directory");
}

// The files a configuration names must be readable now, not when the client first connects.
TEST(Kubeconfig, CheckFilesNamesTheFieldAndTheFile) {
  TempDir d;
  ApiConfig c;
  EXPECT_TRUE(check_files(c).ok());  // nothing named: the system store, no client certificate
  c.ca_file = d.write("ca.crt", "CA");
  c.token_file = d.path() + "/token";
  auto missing = check_files(c);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "tokenFile " + d.path() + "/token: cannot read: No such file or directory");
  d.write("token", "t");
  EXPECT_TRUE(check_files(c).ok());
  c.client_key_file = d.path();
  auto directory = check_files(c);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, "client-key " + d.path() + ": cannot read: Is a directory");
}

TEST(Kubeconfig, DefaultPath) {
  EXPECT_EQ(default_kubeconfig_path(env({{"KUBECONFIG", "/a/one:/b/two"}, {"HOME", "/h"}})),
            "/a/one");
  EXPECT_EQ(default_kubeconfig_path(env({{"HOME", "/h"}})), "/h/.kube/config");
  EXPECT_EQ(default_kubeconfig_path(env({{"KUBECONFIG", ""}, {"HOME", "/h"}})), "/h/.kube/config");
  EXPECT_EQ(default_kubeconfig_path(env({})), "");
  // As kubectl, files of the list that do not exist are passed over; empty entries too.
  TempDir d;
  const std::string second = d.write("second", "");
  EXPECT_EQ(default_kubeconfig_path(env({{"KUBECONFIG", "/nonexistent/a::" + second + ":"}})),
            second);
  EXPECT_EQ(default_kubeconfig_path(env({{"KUBECONFIG", ":/nonexistent/a:/nonexistent/b"}})),
            "/nonexistent/a");
}

}  // namespace
}  // namespace magline::k8s
