#include "control/cli.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

namespace magline::cli {
namespace {

struct Outcome {
  int rc;
  std::string out;
  std::string err;
};

Outcome magline(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int rc = run(args, out, err);
  return {rc, out.str(), err.str()};
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "magline-cli-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

const char* kSmall = R"({
  "services": [{
    "name": "t/web:http",
    "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}],
    "backends": [{"address": "198.18.1.10", "port": 8080},
                 {"address": "198.18.1.11", "port": 8080, "weight": 3}],
    "table_size": 13
  }]
})";

TEST(Cli, UsageAndUnknownCommands) {
  Outcome none = magline({});
  EXPECT_EQ(none.rc, kUsage);
  EXPECT_NE(none.err.find("Usage: magline COMMAND"), std::string::npos);

  Outcome help = magline({"--help"});
  EXPECT_EQ(help.rc, kOk);
  EXPECT_NE(help.out.find("table"), std::string::npos);

  Outcome bogus = magline({"frobnicate"});
  EXPECT_EQ(bogus.rc, kUsage);
  EXPECT_NE(bogus.err.find("unknown command 'frobnicate'"), std::string::npos);

  Outcome bad_flag = magline({"check", "--bogus"});
  EXPECT_EQ(bad_flag.rc, kUsage);
  EXPECT_NE(bad_flag.err.find("magline check: unrecognised option '--bogus'"), std::string::npos)
      << bad_flag.err;

  // Options are spelled out: a prefix is not guessed (a later option would change its meaning).
  const std::vector<std::pair<std::vector<std::string>, std::string>> prefixes = {
      {{"check", "--conf", "x.json"}, "--conf"}, {{"table", "--dum"}, "--dum"},
      {{"run", "--dur", "1"}, "--dur"},          {{"replay", "--in", "a", "--ou", "b"}, "--ou"},
      {{"plan", "--k8", "-"}, "--k8"},
  };
  for (const auto& [args, option] : prefixes) {
    Outcome prefix = magline(args);
    EXPECT_EQ(prefix.rc, kUsage) << option;
    EXPECT_NE(prefix.err.find("unrecognised option '" + option + "'"), std::string::npos)
        << prefix.err;
  }

  Outcome extra = magline({"table", "stray"});
  EXPECT_EQ(extra.rc, kUsage);

  Outcome table_help = magline({"table", "--help"});
  EXPECT_EQ(table_help.rc, kOk);
  EXPECT_NE(table_help.out.find("--dump"), std::string::npos);

  EXPECT_EQ(magline({"version", "stray"}).rc, kUsage);
}

// `magline version` and `--version`: what the binary is, one `key: value` a line after the
// first, the same either way.
TEST(Cli, VersionNamesCommitBuildTypeDpdkAndCompiler) {
  const Outcome v = magline({"version"});
  EXPECT_EQ(v.rc, kOk);
  EXPECT_EQ(v.err, "");
  EXPECT_THAT(v.out, ::testing::MatchesRegex("magline 0\\.1\\.0\n"
                                             "commit: ([0-9a-f]{7,40}(-dirty)?|unknown)\n"
                                             "build type: [a-z]+\n"
                                             "DPDK: DPDK [0-9]+\\.[0-9]+\\.[0-9]+.*\n"
                                             "compiler: [a-z]+ [0-9.]+\n"));
  EXPECT_EQ(magline({"--version"}).out, v.out);
  EXPECT_EQ(magline({"version", "--help"}).rc, kOk);
}

// `replay --help` answers before the checks of its required options; replay never writes over
// the capture it reads.
TEST(Cli, ReplayAnswersHelpAndRefusesToWriteOverItsInput) {
  Outcome help = magline({"replay", "--help"});
  EXPECT_EQ(help.rc, kOk) << help.err;
  EXPECT_NE(help.out.find("--in"), std::string::npos);
  EXPECT_EQ(magline({"replay", "--in", "x.pcap"}).rc, kUsage);  // --out missing

  TempDir dir;
  const std::string capture = std::string(MAGLINE_SOURCE_DIR) + "/tests/replay/in.pcap";
  const std::string copy = dir.write("in.pcap", "");
  std::filesystem::copy_file(capture, copy, std::filesystem::copy_options::overwrite_existing);
  const auto size = std::filesystem::file_size(copy);
  Outcome same = magline({"replay", "--in", copy, "--out", copy});
  EXPECT_EQ(same.rc, kInvalid);
  EXPECT_NE(same.err.find("would destroy it"), std::string::npos) << same.err;
  EXPECT_EQ(std::filesystem::file_size(copy), size);

  // A capture cut short in the middle of a frame is an error, not a quiet early end.
  std::filesystem::resize_file(copy, size - 10);
  Outcome cut = magline({"replay", "--in", copy, "--out", dir.write("out.pcap", "")});
  EXPECT_EQ(cut.rc, kInvalid);
  EXPECT_NE(cut.err.find("damaged after"), std::string::npos) << cut.err;
}

// Refused before anything is read or started (these never reach the EAL).
TEST(Cli, RunRefusesADurationThatIsNotAPositiveNumber) {
  for (const char* bad : {"--duration=-1", "--duration=0", "--duration=-0", "--duration=inf",
                          "--duration=-inf", "--duration=nan", "--duration=infinity"}) {
    Outcome o = magline({"run", bad});
    EXPECT_EQ(o.rc, kUsage) << bad;
    EXPECT_EQ(o.err.rfind("magline run: --duration: expected a number of seconds above 0, got ", 0),
              0u)
        << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
    EXPECT_TRUE(o.out.empty());
  }
  Outcome words = magline({"run", "--duration", "soon"});
  EXPECT_EQ(words.rc, kUsage);
  EXPECT_NE(words.err.find("--duration"), std::string::npos) << words.err;
  EXPECT_EQ(magline({"run", "--duration", "-1"}).err,
            "magline run: --duration: expected a number of seconds above 0, got -1\n");
}

// What could not be written is an error naming it, not exit 0 (`magline table > /dev/full`).
TEST(Cli, OutputThatCannotBeWrittenIsAnError) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"table"}, {"check"}, {"version"}}) {
    std::ofstream full("/dev/full");
    std::ostringstream err;
    const int rc = run(args, full, err);
    EXPECT_EQ(rc, kInvalid) << args[0];
    EXPECT_EQ(err.str(), "magline: standard output: cannot write: No space left on device\n");
  }
  // A stream that failed without a reason the system can give.
  std::ostringstream broken, err;
  broken.setstate(std::ios::badbit);
  EXPECT_EQ(run({"version"}, broken, err), kInvalid);
  EXPECT_EQ(err.str(), "magline: standard output: cannot write\n");
  // A failing command keeps its own status.
  std::ofstream full("/dev/full");
  std::ostringstream usage_err;
  EXPECT_EQ(run({"table", "--bogus"}, full, usage_err), kUsage);

  // replay's capture: pcap buffers, the flush tells.
  const std::string dir = std::string(MAGLINE_SOURCE_DIR) + "/tests/replay/";
  Outcome replay = magline(
      {"replay", "--config", dir + "config.json", "--in", dir + "in.pcap", "--out", "/dev/full"});
  EXPECT_EQ(replay.rc, kInvalid);
  EXPECT_EQ(replay.err, "/dev/full: cannot write: No space left on device\n");
  EXPECT_TRUE(replay.out.empty());
}

// --stats is checked before anything starts (so these never reach the EAL), without touching
// the file.
TEST(Cli, RunRefusesAStatsFileItCouldNotWrite) {
  TempDir dir;
  Outcome missing = magline({"run", "--stats", "/nonexistent/stats.json"});
  EXPECT_EQ(missing.rc, kInvalid);
  EXPECT_EQ(missing.err,
            "magline: --stats /nonexistent/stats.json: cannot write: No such file or directory\n");
  EXPECT_TRUE(missing.out.empty());
  Outcome directory = magline({"run", "--stats", dir.path()});
  EXPECT_EQ(directory.rc, kInvalid);
  EXPECT_EQ(directory.err, "magline: --stats " + dir.path() + ": cannot write: Is a directory\n");
  const std::string file = dir.write("not-a-dir", "kept");
  Outcome under_file = magline({"run", "--stats", file + "/stats.json"});
  EXPECT_EQ(under_file.rc, kInvalid);
  EXPECT_EQ(under_file.err,
            "magline: --stats " + file + "/stats.json: cannot write: Not a directory\n");
  std::ifstream kept(file);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "kept");
}

TEST(Cli, CheckAcceptsTheEmbeddedDefault) {
  Outcome o = magline({"check"});
  EXPECT_EQ(o.rc, kOk) << o.err;
  EXPECT_EQ(o.out.rfind("<embedded default>: OK: ", 0), 0u) << o.out;
}

TEST(Cli, CheckRefusesBadFilesWithTheirName) {
  TempDir dir;
  Outcome missing = magline({"check", "--config", "/nonexistent/magline.json"});
  EXPECT_EQ(missing.rc, kInvalid);
  EXPECT_EQ(missing.err.rfind("/nonexistent/magline.json: ", 0), 0u) << missing.err;

  const std::string typo = dir.write("typo.json", R"({"servics": []})");
  Outcome t = magline({"check", "-c", typo});
  EXPECT_EQ(t.rc, kInvalid);
  EXPECT_EQ(t.err.rfind(typo + ": ", 0), 0u) << t.err;
  EXPECT_NE(t.err.find("servics"), std::string::npos) << t.err;
  EXPECT_TRUE(t.out.empty());

  // Caught when the services are built, after the file itself validated.
  const std::string clash = dir.write("clash.json", R"({"services": [
    {"name": "a", "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}]},
    {"name": "b", "frontends": [{"kind": "load_balancer", "address": "198.18.100.1", "port": 80}]}
  ]})");
  Outcome c = magline({"check", "--config", clash});
  EXPECT_EQ(c.rc, kInvalid);
  EXPECT_EQ(c.err, clash + ": frontend 198.18.100.1:80/tcp is claimed by services \"a\" and \"b\"\n");
}

TEST(Cli, CheckReadsTheKubeconfigRunWouldUse) {
  TempDir dir;
  const std::string kubeconfig = dir.write("kubeconfig", R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://198.18.0.100:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)");
  const std::string good =
      dir.write("good.json", R"({"kubernetes": {"kubeconfig": ")" + kubeconfig + R"("}})");
  Outcome ok = magline({"check", "-c", good});
  EXPECT_EQ(ok.rc, kOk) << ok.err;
  EXPECT_EQ(ok.out, good + ": OK: 0 services, 0 frontends, 0 backends; watching Kubernetes (" +
                        kubeconfig + ")\n");

  // A relative kubeconfig is the configuration file's neighbour, whatever the working directory.
  ASSERT_NE(std::filesystem::current_path(), dir.path());
  const std::string relative =
      dir.write("relative.json", R"({"kubernetes": {"kubeconfig": "kubeconfig"}})");
  Outcome r = magline({"check", "-c", relative});
  EXPECT_EQ(r.rc, kOk) << r.err;
  EXPECT_EQ(r.out, relative + ": OK: 0 services, 0 frontends, 0 backends; watching Kubernetes (" +
                       kubeconfig + ")\n");

  const std::string missing = dir.write(
      "missing.json", R"({"kubernetes": {"kubeconfig": "/nonexistent/kubeconfig"}})");
  Outcome m = magline({"check", "-c", missing});
  EXPECT_EQ(m.rc, kInvalid);
  EXPECT_EQ(m.err.rfind(missing + ": kubernetes.kubeconfig: ", 0), 0u) << m.err;
  EXPECT_NE(m.err.find("/nonexistent/kubeconfig"), std::string::npos) << m.err;

  // A directory (it used to abort check and run with exit 134).
  const std::string directory =
      dir.write("directory.json", R"({"kubernetes": {"kubeconfig": ")" + dir.path() + R"("}})");
  Outcome d = magline({"check", "-c", directory});
  EXPECT_EQ(d.rc, kInvalid);
  EXPECT_EQ(d.err, directory + ": kubernetes.kubeconfig: kubeconfig " + dir.path() +
                       ": cannot read the file: Is a directory\n");

  // A file the kubeconfig names, read only when the client connects.
  const std::string with_ca = dir.write("kubeconfig-ca", R"(clusters:
- name: c
  cluster: {server: "https://198.18.0.100:6443", certificate-authority: missing-ca.crt}
contexts:
- name: x
  context: {cluster: c}
current-context: x
)");
  const std::string ca =
      dir.write("ca.json", R"({"kubernetes": {"kubeconfig": ")" + with_ca + R"("}})");
  Outcome no_ca = magline({"check", "-c", ca});
  EXPECT_EQ(no_ca.rc, kInvalid);
  EXPECT_EQ(no_ca.err, ca + ": kubernetes.kubeconfig: kubeconfig " + with_ca +
                           ": certificate-authority " + dir.path() +
                           "/missing-ca.crt: cannot read: No such file or directory\n");

  const std::string context = dir.write(
      "context.json",
      R"({"kubernetes": {"kubeconfig": ")" + kubeconfig + R"(", "context": "nope"}})");
  Outcome c = magline({"check", "-c", context});
  EXPECT_EQ(c.rc, kInvalid);
  EXPECT_NE(c.err.find("nope"), std::string::npos) << c.err;
}

// What `run` checks before starting DPDK, check checks (control/preflight.hpp has the cases;
// these are the command's ends of them).
TEST(Cli, CheckRefusesWhatRunWouldRefuseBeforeStarting) {
  TempDir dir;
  const std::string port =
      R"("ports": [{"name": "p0", "device": "net_null0", "addresses": ["198.18.0.1/16"]}])";
  const std::string no_core =
      dir.write("core.json", R"({"dataplane": {"worker_cores": [1000], )" + port + "}}");
  Outcome core = magline({"check", "-c", no_core});
  EXPECT_EQ(core.rc, kInvalid);
  EXPECT_EQ(core.err.rfind(no_core + ": dataplane.worker_cores[0]: core 1000 is not available "
                                     "(the online CPUs of this process's cpuset: ",
                           0),
            0u)
      << core.err;
  EXPECT_TRUE(core.out.empty());

  const std::string bogus = dir.write(
      "bogus.json", R"({"dataplane": {"ports": [{"name": "p0", "device": "net_bogus0"}]}})");
  Outcome device = magline({"check", "-c", bogus});
  EXPECT_EQ(device.rc, kInvalid);
  EXPECT_EQ(device.err.rfind(bogus + ": dataplane.ports[0].device: expected a PCI address", 0), 0u)
      << device.err;

  // 2^31 connections: 144 GiB per worker.
  const std::string huge =
      dir.write("huge.json",
                R"({"flow_table": {"capacity": 2147483648}, "dataplane": {"worker_cores": [1], )" +
                    port + "}}");
  Outcome memory = magline({"check", "-c", huge});
  if (memory.rc == kOk) GTEST_SKIP() << "this machine has more than 144 GiB";
  EXPECT_EQ(memory.rc, kInvalid);
  EXPECT_EQ(memory.err.rfind(huge + ": flow_table.capacity: 2147483648 connections per worker "
                                    "need 144.0 GiB for 1 worker(s) (144.5 GiB with "
                                    "dataplane.memory_mb), but the machine has ",
                             0),
            0u)
      << memory.err;
}

// Sets an environment variable for a scope (unset: nullptr), and puts it back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A kubernetes section without a kubeconfig follows kubectl: $KUBECONFIG, else ~/.kube/config.
TEST(Cli, CheckFindsTheKubeconfigAsKubectlDoes) {
  TempDir dir;
  const std::string text = R"(clusters: [{name: c, cluster: {server: "https://198.18.0.100:6443"}}]
contexts: [{name: x, context: {cluster: c}}]
current-context: x
)";
  const std::string from_env = dir.write("from-env", text);
  std::filesystem::create_directories(dir.path() + "/.kube");
  const std::string from_home = dir.write(".kube/config", text);
  const std::string config = dir.write("c.json", R"({"kubernetes": {}})");
  {
    const ScopedEnv kubeconfig("KUBECONFIG", ("/nonexistent/first:" + from_env).c_str());
    Outcome o = magline({"check", "-c", config});
    EXPECT_EQ(o.rc, kOk) << o.err;
    EXPECT_EQ(o.out, config + ": OK: 0 services, 0 frontends, 0 backends; watching Kubernetes (" +
                         from_env + ", from $KUBECONFIG)\n");
  }
  {
    const ScopedEnv kubeconfig("KUBECONFIG", nullptr);
    const ScopedEnv home("HOME", dir.path().c_str());
    Outcome o = magline({"check", "-c", config});
    EXPECT_EQ(o.rc, kOk) << o.err;
    EXPECT_EQ(o.out, config + ": OK: 0 services, 0 frontends, 0 backends; watching Kubernetes (" +
                         from_home + ", from $HOME/.kube/config)\n");
  }
  {
    const ScopedEnv kubeconfig("KUBECONFIG", "/nonexistent/kubeconfig");
    Outcome o = magline({"check", "-c", config});
    EXPECT_EQ(o.rc, kInvalid);
    EXPECT_EQ(o.err, config +
                         ": kubernetes: kubeconfig /nonexistent/kubeconfig: cannot read the "
                         "file: No such file or directory\n");
  }
  {
    const ScopedEnv kubeconfig("KUBECONFIG", nullptr);
    const ScopedEnv home("HOME", nullptr);
    Outcome o = magline({"check", "-c", config});
    EXPECT_EQ(o.rc, kInvalid);
    EXPECT_EQ(o.err, config +
                         ": kubernetes: no kubeconfig: the section names none "
                         "(\"kubeconfig\" or \"in_cluster\"), and neither $KUBECONFIG nor "
                         "$HOME is set\n");
  }
}

TEST(Cli, TableTextShowsSlotsPerBackend) {
  TempDir dir;
  Outcome o = magline({"table", "--config", dir.write("small.json", kSmall)});
  ASSERT_EQ(o.rc, kOk) << o.err;
  EXPECT_NE(o.out.find("service t/web:http  mode full_nat  M 13\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("frontend 198.18.100.1:80/tcp (load_balancer)"), std::string::npos);
  // Weights 1 and 3 over 13 slots: 3.25 and 9.75, largest remainder gives 3 and 10.
  EXPECT_NE(o.out.find("198.18.1.10:8080"), std::string::npos);
  EXPECT_NE(o.out.find("slots 3 "), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("slots 10 "), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("slot 0 "), std::string::npos);  // no dump without --dump
}

TEST(Cli, TableJsonWithDump) {
  TempDir dir;
  Outcome o = magline({"table", "--json", "--dump", "--config", dir.write("small.json", kSmall)});
  ASSERT_EQ(o.rc, kOk) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  const auto& svc = j.at("services").at(0);
  EXPECT_EQ(svc.at("name"), "t/web:http");
  EXPECT_EQ(svc.at("table_size"), 13);
  EXPECT_EQ(svc.at("backends").at(0).at("slots"), 3);
  EXPECT_EQ(svc.at("backends").at(1).at("slots"), 10);
  ASSERT_EQ(svc.at("slots").size(), 13u);
  int ones = 0;
  for (int s : svc.at("slots")) ones += s == 1;
  EXPECT_EQ(ones, 10);
}

// The shipped edge example limits its storefront's new connections: both views say so, and
// only for that service.
TEST(Cli, TableShowsANewConnectionLimit) {
  const std::string example =
      std::string(MAGLINE_SOURCE_DIR) + "/config/examples/edge-full-nat.json";
  Outcome text = magline({"table", "--config", example});
  ASSERT_EQ(text.rc, kOk) << text.err;
  EXPECT_NE(text.out.find("service shop/storefront:https  mode full_nat  M 65537  new connections "
                          "20000/s burst 40000\n"),
            std::string::npos)
      << text.out;
  Outcome json = magline({"table", "--json", "--config", example});
  ASSERT_EQ(json.rc, kOk) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  int limited = 0;
  for (const auto& svc : j.at("services")) {
    if (!svc.contains("new_connection_limit")) continue;
    EXPECT_EQ(svc.at("name"), "shop/storefront:https");
    EXPECT_EQ(svc.at("new_connection_limit"), nlohmann::json({{"rate", 20000}, {"burst", 40000}}));
    ++limited;
  }
  EXPECT_EQ(limited, 1);
}

TEST(Cli, TableRunsOnTheEmbeddedDefault) {
  Outcome o = magline({"table"});
  EXPECT_EQ(o.rc, kOk) << o.err;
  EXPECT_NE(o.out.find("service "), std::string::npos);
}

// `magline plan`: a List as kubectl prints it (items carry their kind).
const char* kK8sList = R"({"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Service",
   "metadata": {"name": "web", "namespace": "shop"},
   "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
            "loadBalancerClass": "example.com/lb",
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "nodePort": 30080}]},
   "status": {"loadBalancer": {"ingress": [{"ip": "198.18.100.9", "ipMode": "VIP"}]}}},
  {"apiVersion": "v1", "kind": "Service",
   "metadata": {"name": "internal", "namespace": "shop"},
   "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.11", "ports": [{"port": 80}]}},
  {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
   "metadata": {"name": "web-x", "namespace": "shop",
                "labels": {"kubernetes.io/service-name": "web"}},
   "addressType": "IPv4",
   "endpoints": [{"addresses": ["198.18.1.10"], "nodeName": "n1"}],
   "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}
]})";

TEST(Cli, PlanPrintsTheTranslation) {
  TempDir dir;
  const std::string file = dir.write("k8s.json", kK8sList);
  Outcome o = magline({"plan", "--k8s", file, "--lb-class", "example.com/lb", "--node-address",
                       "198.18.0.1", "--node-address", "2001:db8::1"});
  ASSERT_EQ(o.rc, kOk) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.at("services").size(), 1u);
  const auto& svc = j.at("services").at(0);
  EXPECT_EQ(svc.at("name"), "shop/web:http/tcp/v4");
  EXPECT_EQ(svc.at("mode"), "full_nat");
  EXPECT_EQ(svc.at("frontends").size(), 2u);
  EXPECT_EQ(svc.at("frontends").at(1).at("address"), "198.18.0.1");
  EXPECT_EQ(svc.at("frontends").at(1).at("port"), 30080);
  EXPECT_EQ(svc.at("backends").at(0).at("address"), "198.18.1.10");
  EXPECT_EQ(svc.at("backends").at(0).at("port"), 8080);
  EXPECT_EQ(svc.at("table_size"), 65537);
  ASSERT_EQ(j.at("skipped").size(), 1u);
  EXPECT_EQ(j.at("skipped").at(0).at("service"), "shop/internal");
  EXPECT_EQ(j.at("options").at("load_balancer_class"), "example.com/lb");

  // Without the class its LoadBalancer IP belongs to another implementation: programmed are
  // only its NodePorts (none here: no node address), and a note says why.
  Outcome classless = magline({"plan", "--k8s", file});
  ASSERT_EQ(classless.rc, kOk) << classless.err;
  const auto c = nlohmann::json::parse(classless.out);
  ASSERT_EQ(c.at("services").size(), 1u);
  EXPECT_TRUE(c.at("services").at(0).at("frontends").empty());
  EXPECT_NE(c.at("notes").dump().find("belongs to another implementation"), std::string::npos);
}

// --default-lb-class: a classless Service's LoadBalancer IP is programmed beside its class's;
// without a class to be the default beside, the flag is refused.
TEST(Cli, PlanWithTheDefaultClassTakesClasslessServices) {
  TempDir dir;
  std::string list = kK8sList;
  const size_t cls = list.find(R"("loadBalancerClass": "example.com/lb",)");
  list.erase(cls, std::string(R"("loadBalancerClass": "example.com/lb",)").size());
  const std::string file = dir.write("k8s.json", list);
  Outcome o =
      magline({"plan", "--k8s", file, "--lb-class", "example.com/lb", "--default-lb-class"});
  ASSERT_EQ(o.rc, kOk) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.at("services").size(), 1u);
  ASSERT_EQ(j.at("services").at(0).at("frontends").size(), 1u);
  EXPECT_EQ(j.at("services").at(0).at("frontends").at(0).at("address"), "198.18.100.9");
  EXPECT_EQ(j.at("options").at("default_load_balancer_class"), true);
  Outcome without = magline({"plan", "--k8s", file, "--lb-class", "example.com/lb"});
  EXPECT_TRUE(nlohmann::json::parse(without.out).at("services").at(0).at("frontends").empty());
  Outcome alone = magline({"plan", "--k8s", file, "--default-lb-class"});
  EXPECT_EQ(alone.rc, kUsage);
  EXPECT_EQ(alone.err,
            "magline plan: --default-lb-class needs a class (--lb-class, or the configuration's "
            "load_balancer_class)\n");
}

// --targets nodes: the Nodes in the file are the backends, at the port's nodePort; without
// Nodes a note says so; the configuration's kubernetes.targets does the same.
TEST(Cli, PlanWithNodeTargets) {
  TempDir dir;
  std::string list = kK8sList;
  list.insert(list.rfind(']'), R"(,
  {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
   "status": {"addresses": [{"type": "InternalIP", "address": "198.18.2.1"}],
              "conditions": [{"type": "Ready", "status": "True"}]}})");
  const std::string file = dir.write("k8s.json", list);
  Outcome o =
      magline({"plan", "--k8s", file, "--lb-class", "example.com/lb", "--targets", "nodes"});
  ASSERT_EQ(o.rc, kOk) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.at("services").size(), 1u);
  const auto& backends = j.at("services").at(0).at("backends");
  ASSERT_EQ(backends.size(), 1u);
  EXPECT_EQ(backends.at(0).at("address"), "198.18.2.1");
  EXPECT_EQ(backends.at(0).at("port"), 30080);
  EXPECT_EQ(j.at("options").at("targets"), "nodes");
  EXPECT_EQ(j.at("nodes").at(0).at("name"), "n1");

  const std::string bare = dir.write("bare.json", kK8sList);
  Outcome none = magline(
      {"plan", "--k8s", bare, "--lb-class", "example.com/lb", "--targets", "nodes", "--strict"});
  EXPECT_EQ(none.rc, kInvalid);
  EXPECT_NE(none.err.find("node targets, and no Nodes in the input"), std::string::npos)
      << none.err;

  const std::string conf =
      dir.write("magline.json", R"({"kubernetes": {"in_cluster": true, "targets": "nodes"}})");
  Outcome configured = magline({"plan", "--k8s", file, "--config", conf});
  ASSERT_EQ(configured.rc, kOk) << configured.err;
  EXPECT_EQ(nlohmann::json::parse(configured.out).at("options").at("targets"), "nodes");

  Outcome bad = magline({"plan", "--k8s", file, "--targets", "endpoints"});
  EXPECT_EQ(bad.rc, kUsage);
  EXPECT_EQ(bad.err, "magline plan: --targets: expected pods or nodes, got \"endpoints\"\n");
}

// With the provider's pools, the plan also shows the address each LoadBalancer Service of
// Magline's class would get: the one its status holds is kept, a new one gets the first free.
TEST(Cli, PlanShowsTheProvidersAssignments) {
  TempDir dir;
  std::string list = kK8sList;
  const std::string fresh = R"({"apiVersion": "v1", "kind": "Service",
   "metadata": {"name": "api", "namespace": "shop"},
   "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12", "loadBalancerClass": "example.com/lb",
            "ports": [{"name": "https", "protocol": "TCP", "port": 443}]}},
  )";
  list.insert(list.find("{\"apiVersion\": \"v1\", \"kind\": \"Service\""), fresh);
  const std::string file = dir.write("k8s.json", list);
  const std::string config = dir.write("c.json", R"({
    "kubernetes": {"in_cluster": true, "load_balancer_class": "example.com/lb"},
    "provider": {"pools": [{"name": "edge", "addresses": ["198.18.100.0/28"]}]}})");
  Outcome o = magline({"plan", "--k8s", file, "--config", config});
  ASSERT_EQ(o.rc, kOk) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.at("allocations").size(), 2u) << j.dump(2);
  EXPECT_EQ(j.at("allocations").at(0).at("service"), "shop/api");
  EXPECT_EQ(j.at("allocations").at(0).at("addresses"), nlohmann::json::array({"198.18.100.0"}));
  EXPECT_EQ(j.at("allocations").at(0).at("why"), "first free address of pool edge");
  EXPECT_EQ(j.at("allocations").at(1).at("service"), "shop/web");
  EXPECT_EQ(j.at("allocations").at(1).at("addresses"), nlohmann::json::array({"198.18.100.9"}));
  EXPECT_EQ(j.at("allocations").at(1).at("why"), "kept");
  EXPECT_EQ(j.at("pools").at(0).at("size"), 16);
  EXPECT_EQ(j.at("pools").at(0).at("used"), 2);
  // A pool that no longer holds web's address: it moves to what is free.
  const std::string moved = dir.write("m.json", R"({
    "kubernetes": {"in_cluster": true, "load_balancer_class": "example.com/lb"},
    "provider": {"pools": [{"name": "edge", "addresses": ["198.18.100.0/30"]}]}})");
  const auto m = nlohmann::json::parse(magline({"plan", "--k8s", file, "--config", moved}).out);
  EXPECT_EQ(m.at("allocations").at(1).at("addresses"), nlohmann::json::array({"198.18.100.1"}));
}

// --strict: exit 1, one line per problem on standard error, when anything would not be served
// as asked; a ClusterIP-only Service is nobody's mistake. The plan is printed either way.
TEST(Cli, PlanStrictFailsOnWhatWouldNotBeServed) {
  TempDir dir;
  const std::string file = dir.write("k8s.json", kK8sList);
  Outcome ok = magline({"plan", "--k8s", file, "--lb-class", "example.com/lb", "--strict"});
  EXPECT_EQ(ok.rc, kOk) << ok.err;
  EXPECT_EQ(ok.err, "");
  EXPECT_EQ(nlohmann::json::parse(ok.out).at("skipped").size(), 1u);  // shop/internal

  // Another class's LoadBalancer IP: a note, so not served as asked.
  Outcome other = magline({"plan", "--k8s", file, "--strict"});
  EXPECT_EQ(other.rc, kInvalid);
  EXPECT_EQ(other.err.rfind("magline plan: strict: shop/web: ", 0), 0u) << other.err;
  EXPECT_NE(other.err.find("belongs to another implementation"), std::string::npos);
  EXPECT_EQ(std::count(other.err.begin(), other.err.end(), '\n'), 1) << other.err;
  EXPECT_EQ(nlohmann::json::parse(other.out),
            nlohmann::json::parse(magline({"plan", "--k8s", file}).out));
  EXPECT_EQ(magline({"plan", "--k8s", file}).rc, kOk);  // without --strict: as before

  // A skip that is not by design, an item that does not decode, and a refused address.
  std::string list = kK8sList;
  list.insert(list.find("{\"apiVersion\": \"v1\", \"kind\": \"Service\""),
              R"({"kind": "Service", "metadata": {"name": "odd", "namespace": "shop"},
                  "spec": {"type": "Special", "ports": [{"port": 1}]}},
                 {"kind": "Service", "metadata": {"name": "bad", "namespace": "shop"},
                  "spec": {"ports": "80"}},
                 {"kind": "Service", "metadata": {"name": "pinned", "namespace": "shop"},
                  "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/lb",
                           "loadBalancerIP": "203.0.113.1", "ports": [{"port": 80}]}},
              )");
  const std::string bad = dir.write("bad.json", list);
  const std::string config = dir.write("c.json", R"({
    "kubernetes": {"in_cluster": true, "load_balancer_class": "example.com/lb"},
    "provider": {"pools": [{"name": "edge", "addresses": ["198.18.100.0/28"]}]}})");
  Outcome many = magline({"plan", "--k8s", bad, "--config", config, "--strict"});
  EXPECT_EQ(many.rc, kInvalid);
  EXPECT_THAT(many.err,
              ::testing::HasSubstr("magline plan: strict: shop/bad: cannot read: items[1]: "
                                   "spec.ports: expected an array, got string\n"));
  EXPECT_THAT(many.err, ::testing::HasSubstr(
                            "magline plan: strict: shop/odd: skipped: unknown type \"Special\"\n"));
  EXPECT_THAT(many.err, ::testing::HasSubstr("magline plan: strict: shop/pinned: no address ("));
  EXPECT_EQ(many.err.find("shop/internal"), std::string::npos) << many.err;
  EXPECT_EQ(magline({"plan", "--k8s", bad, "--config", config}).rc, kOk);
}

// The same objects as YAML (kubectl -o yaml, or manifests) plan as the JSON does.
TEST(Cli, PlanReadsYaml) {
  TempDir dir;
  const std::string json = dir.write("k8s.json", kK8sList);
  const std::string yaml = dir.write("k8s.txt", R"(# kubectl get services,endpointslices -o yaml
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web, namespace: shop}
  spec:
    type: LoadBalancer
    clusterIP: 10.96.0.10
    loadBalancerClass: example.com/lb
    ports:
    - {name: http, protocol: TCP, port: 80, nodePort: 30080}
  status:
    loadBalancer:
      ingress: [{ip: 198.18.100.9, ipMode: VIP}]
- apiVersion: v1
  kind: Service
  metadata: {name: internal, namespace: shop}
  spec: {type: ClusterIP, clusterIP: 10.96.0.11, ports: [{port: 80}]}
)");
  const std::string slice = dir.write("slice.yaml", R"(---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints:
- addresses: [198.18.1.10]
  nodeName: n1
ports:
- {name: http, protocol: TCP, port: 8080}
)");
  std::ifstream a(yaml), b(slice);
  std::stringstream both;
  both << a.rdbuf() << "---\n" << b.rdbuf();
  // A List and a plain manifest in one stream: the List's items and the manifest, as one List.
  const std::string manifests = dir.write("all.yaml", both.str());
  const std::vector<std::string> opts = {"--lb-class", "example.com/lb", "--node-address",
                                         "198.18.0.1"};
  auto plan = [&](const std::string& file) {
    std::vector<std::string> args = {"plan", "--k8s", file};
    args.insert(args.end(), opts.begin(), opts.end());
    return magline(args);
  };
  Outcome from_json = plan(json);
  Outcome from_yaml = plan(manifests);
  ASSERT_EQ(from_yaml.rc, kOk) << from_yaml.err;
  EXPECT_EQ(from_yaml.out, from_json.out);
  EXPECT_EQ(nlohmann::json::parse(from_yaml.out).at("services").at(0).at("backends").size(), 1u);
}

// -o table: for people; json stays the default; anything else is a usage error.
TEST(Cli, PlanPrintsATable) {
  TempDir dir;
  const std::string file = dir.write("k8s.json", kK8sList);
  Outcome t = magline({"plan", "--k8s", file, "--lb-class", "example.com/lb", "--node-address",
                       "198.18.0.1", "-o", "table"});
  ASSERT_EQ(t.rc, kOk) << t.err;
  EXPECT_EQ(t.out.rfind("FRONTENDS (1 services, 2 rows)\n", 0), 0u) << t.out;
  EXPECT_THAT(t.out, ::testing::HasSubstr(
                         "shop/web:http/tcp/v4  NodePort      198.18.0.1:30080/tcp  1/1       "
                         "full_nat  -\n"));
  EXPECT_THAT(t.out, ::testing::HasSubstr("\nSKIPPED\nSERVICE        REASON\nshop/internal  "));
  Outcome j = magline({"plan", "--k8s", file, "--output", "json"});
  EXPECT_EQ(j.out, magline({"plan", "--k8s", file}).out);
  Outcome bad = magline({"plan", "--k8s", file, "-o", "yaml"});
  EXPECT_EQ(bad.rc, kUsage);
  EXPECT_EQ(bad.err, "magline plan: --output: expected json or table, got \"yaml\"\n");
}

TEST(Cli, PlanReadsStandardInput) {
  std::istringstream in(kK8sList);
  std::streambuf* saved = std::cin.rdbuf(in.rdbuf());
  Outcome o = magline({"plan", "--k8s", "-", "--lb-class", "example.com/lb"});
  std::cin.rdbuf(saved);
  ASSERT_EQ(o.rc, kOk) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out).at("services").at(0).at("name"), "shop/web:http/tcp/v4");
}

// Runs `magline ARGS` with `input` as standard input.
Outcome magline_with_stdin(std::vector<std::string> args, const std::string& input) {
  std::istringstream in(input);
  std::streambuf* saved = std::cin.rdbuf(in.rdbuf());
  Outcome o = magline(std::move(args));
  std::cin.rdbuf(saved);
  std::cin.clear();
  return o;
}

// '-' is standard input for --config wherever a file is read once, and never for two options.
TEST(Cli, ConfigFromStandardInput) {
  Outcome check = magline_with_stdin({"check", "--config", "-"}, kSmall);
  EXPECT_EQ(check.rc, kOk) << check.err;
  EXPECT_EQ(check.out, "<stdin>: OK: 1 services, 1 frontends, 2 backends\n");
  Outcome table = magline_with_stdin({"table", "-c", "-"}, kSmall);
  EXPECT_EQ(table.rc, kOk) << table.err;
  EXPECT_NE(table.out.find("service t/web:http  mode full_nat  M 13\n"), std::string::npos);
  Outcome bad = magline_with_stdin({"check", "-c", "-"}, R"({"servics": []})");
  EXPECT_EQ(bad.rc, kInvalid);
  EXPECT_EQ(bad.err.rfind("<stdin>: (top level): unknown key \"servics\"", 0), 0u) << bad.err;
  Outcome plan = magline_with_stdin({"plan", "--k8s", "/nonexistent/k8s.json", "--config", "-"},
                                    R"({"node": {"addresses": ["198.18.0.7"]}})");
  EXPECT_EQ(plan.err, "/nonexistent/k8s.json: cannot read the file\n");  // the config was read

  // Two readers of one standard input.
  Outcome both = magline({"plan", "--k8s", "-", "--config", "-"});
  EXPECT_EQ(both.rc, kUsage);
  EXPECT_EQ(both.err, "magline plan: --config and --k8s cannot both read standard input ('-')\n");
  Outcome replay = magline({"replay", "--config", "-", "--in", "-", "--out", "x.pcap"});
  EXPECT_EQ(replay.rc, kUsage);
  EXPECT_EQ(replay.err,
            "magline replay: --config and --in cannot both read standard input ('-')\n");

  // run: SIGHUP re-reads the file; the counters already go to standard output. Refused before
  // anything starts.
  Outcome run_config = magline({"run", "--config", "-"});
  EXPECT_EQ(run_config.rc, kUsage);
  EXPECT_EQ(run_config.err,
            "magline run: --config -: run re-reads its configuration on SIGHUP, "
            "so it needs a file\n");
  Outcome run_stats = magline({"run", "--stats", "-"});
  EXPECT_EQ(run_stats.rc, kUsage);
  EXPECT_EQ(run_stats.err,
            "magline run: --stats -: the counters already go to standard output; "
            "--stats takes a file\n");
}

TEST(Cli, PlanTakesDefaultsFromTheConfiguration) {
  TempDir dir;
  const std::string file = dir.write("k8s.json", kK8sList);
  // Node addresses and the kubernetes section's options and table size.
  const std::string with_k8s = dir.write("k.json", R"({
    "node": {"addresses": ["198.18.0.7"]},
    "maglev": {"table_size": 251},
    "kubernetes": {"in_cluster": true, "load_balancer_class": "example.com/lb",
                   "node_name": "n1", "table_size": 4093}})");
  Outcome o = magline({"plan", "--k8s", file, "--config", with_k8s});
  ASSERT_EQ(o.rc, kOk) << o.err;
  auto j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j.at("services").size(), 1u);
  EXPECT_EQ(j.at("services").at(0).at("frontends").at(1).at("address"), "198.18.0.7");
  EXPECT_EQ(j.at("services").at(0).at("table_size"), 4093);
  EXPECT_EQ(j.at("options").at("node_name"), "n1");

  // The command line wins; without a kubernetes section the table size is maglev's.
  const std::string plain = dir.write("p.json", R"({
    "node": {"addresses": ["198.18.0.7"]}, "maglev": {"table_size": 251}})");
  Outcome p = magline({"plan", "--k8s", file, "--config", plain, "--lb-class", "example.com/lb",
                       "--node-address", "198.18.0.8"});
  ASSERT_EQ(p.rc, kOk) << p.err;
  j = nlohmann::json::parse(p.out);
  EXPECT_EQ(j.at("services").at(0).at("frontends").at(1).at("address"), "198.18.0.8");
  EXPECT_EQ(j.at("services").at(0).at("table_size"), 251);
}

TEST(Cli, PlanRefusesWhatItCannotRead) {
  TempDir dir;
  Outcome missing = magline({"plan", "--k8s", "/nonexistent/k8s.json"});
  EXPECT_EQ(missing.rc, kInvalid);
  EXPECT_EQ(missing.err, "/nonexistent/k8s.json: cannot read the file\n");
  EXPECT_TRUE(missing.out.empty());

  // YAML is read (by content); what is neither JSON nor YAML is one line with the place.
  const std::string yaml = dir.write("k8s.yaml", "apiVersion: v1\nkind: List\nitems: []\n");
  EXPECT_EQ(magline({"plan", "--k8s", yaml}).rc, kOk);
  const std::string broken = dir.write("broken.json", "kind: List\nitems: [\n");
  Outcome not_yaml = magline({"plan", "--k8s", broken});
  EXPECT_EQ(not_yaml.rc, kInvalid);
  EXPECT_EQ(not_yaml.err.rfind(broken + ":3:1: invalid YAML: ", 0), 0u) << not_yaml.err;
  EXPECT_EQ(std::count(not_yaml.err.begin(), not_yaml.err.end(), '\n'), 1);

  // A number no double holds: one line, not an abort (exit 134); in the configuration the plan
  // takes its defaults from, the same.
  const std::string huge = dir.write("huge.json", R"({"kind": "ServiceList", "items": [
    {"metadata": {"name": "a", "namespace": "n"}, "spec": {"ports": [{"port": 1e999}]}}]})");
  Outcome overflow = magline({"plan", "--k8s", huge});
  EXPECT_EQ(overflow.rc, kInvalid);
  EXPECT_EQ(overflow.err, huge +
                              ": invalid JSON: [json.exception.out_of_range.406] number "
                              "overflow parsing '1e999'\n");
  EXPECT_TRUE(overflow.out.empty());
  const std::string huge_config = dir.write("c.json", R"({"maglev": {"table_size": 1e999}})");
  Outcome config_overflow = magline({"plan", "--k8s", yaml, "--config", huge_config});
  EXPECT_EQ(config_overflow.rc, kInvalid);
  EXPECT_EQ(config_overflow.err,
            huge_config + ":1:31: invalid JSON: number overflow parsing '1e999'\n");

  const std::string pod = dir.write("pod.json", R"({"kind": "Pod", "metadata": {"name": "p"}})");
  Outcome wrong_kind = magline({"plan", "--k8s", pod});
  EXPECT_EQ(wrong_kind.rc, kInvalid);
  EXPECT_NE(wrong_kind.err.find("got kind Pod"), std::string::npos) << wrong_kind.err;

  // Items that do not decode are reported in the plan; the others still count.
  const std::string bad_item = dir.write("bad.json", R"({"kind": "ServiceList", "items": [
    {"metadata": {"name": "a", "namespace": "n"}, "spec": {"ports": "80"}}]})");
  Outcome partial = magline({"plan", "--k8s", bad_item});
  ASSERT_EQ(partial.rc, kOk) << partial.err;
  const auto j = nlohmann::json::parse(partial.out);
  ASSERT_EQ(j.at("errors").size(), 1u);
  EXPECT_EQ(j.at("errors").at(0).at("object"), "n/a");
  EXPECT_EQ(j.at("errors").at(0).at("error"),
            "items[0]: spec.ports: expected an array, got string");

  EXPECT_EQ(magline({"plan"}).rc, kUsage);
  EXPECT_EQ(magline({"plan", "--k8s", pod, "--node-address", "nope"}).rc, kUsage);
  Outcome link_local = magline({"plan", "--k8s", pod, "--node-address", "fe80::1"});
  EXPECT_EQ(link_local.rc, kUsage);
  EXPECT_EQ(link_local.err,
            "magline plan: --node-address: fe80::1 is link-local "
            "(169.254.0.0/16, fe80::/10): NodePorts listen on routable addresses\n");
  Outcome help = magline({"plan", "--help"});
  EXPECT_EQ(help.rc, kOk);
  EXPECT_NE(help.out.find("--node-address"), std::string::npos);
  EXPECT_NE(magline({"--help"}).out.find("plan"), std::string::npos);
}

}  // namespace
}  // namespace magline::cli
