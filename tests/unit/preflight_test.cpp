// What `run` checks of the machine before starting DPDK, and `check` with it (control/preflight):
// the machine is given, so every case runs anywhere.
#include "control/preflight.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace magline::control {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "magline-preflight-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
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

cfg::Config parse(const std::string& text) {
  auto c = cfg::parse_config(text, "t.json");
  EXPECT_TRUE(c) << c.error().message;
  return c ? std::move(c).value() : cfg::Config{};
}

std::string with_port(const std::string& dataplane, const std::string& rest = "") {
  return R"({)" + rest + R"("dataplane": {)" + dataplane +
         R"("ports": [{"name": "p0", "device": "net_null0", "addresses": ["198.18.0.1/16"]}]}})";
}

std::string error_of(const cfg::Config& config, const HostFacts& host,
                     const PreflightOptions& options = {}) {
  auto r = preflight(config, host, options);
  return r ? "(no error)" : r.error().message;
}

constexpr uint64_t kGiB = uint64_t(1) << 30;
const HostFacts kTwoCpus{{0, 1}, 16 * kGiB};

TEST(Preflight, CoresMustBeOnesThisProcessMayUse) {
  EXPECT_EQ(error_of(parse(with_port(R"("main_core": 0, "worker_cores": [1],)")), kTwoCpus),
            "(no error)");
  EXPECT_EQ(error_of(parse(with_port(R"("main_core": 0, "worker_cores": [1, 5],)")), kTwoCpus),
            "t.json: dataplane.worker_cores[1]: core 5 is not available (the online CPUs of this process's cpuset: 0-1)");
  EXPECT_EQ(error_of(parse(with_port(R"("main_core": 2, "worker_cores": [1],)")), kTwoCpus),
            "t.json: dataplane.main_core: core 2 is not available (the online CPUs of this process's cpuset: 0-1)");
  // A cpuset with holes (taskset -c 0,2-3).
  const HostFacts holes{{0, 2, 3}, 16 * kGiB};
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1],)")), holes),
            "t.json: dataplane.worker_cores[0]: core 1 is not available (the online CPUs of this process's cpuset: 0,2-3)");
  // Unknown affinity: not checked. No ports: nothing `run` would start.
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [100],)")), HostFacts{{}, 0}),
            "(no error)");
  EXPECT_EQ(error_of(parse(R"({"dataplane": {"worker_cores": [100]}})"), kTwoCpus), "(no error)");
}

TEST(Preflight, FlowTablesMustFitInMemory) {
  // 2^24 connections: 2^21 buckets of 576 bytes, 1.125 GiB, and 11 MiB of traffic rows.
  EXPECT_EQ(worker_memory_bytes(uint64_t(1) << 24), 1152 * (uint64_t(1) << 20) + 11 * (1 << 20));
  const std::string big = R"("flow_table": {"capacity": 16777216},)";
  const HostFacts two_gib{{0, 1, 2}, 2 * kGiB};
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1], "memory_mb": 256,)", big)), two_gib),
            "(no error)");
  EXPECT_EQ(
      error_of(parse(with_port(R"("worker_cores": [1, 2], "memory_mb": 256,)", big)), two_gib),
      "t.json: flow_table.capacity: 16777216 connections per worker need 2.3 GiB for 2 "
      "worker(s) (2.5 GiB with dataplane.memory_mb), but the machine has 2.0 GiB (MemTotal)");
  // The EAL's memory counts too.
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1], "memory_mb": 1024,)", big)), two_gib),
            "t.json: flow_table.capacity: 16777216 connections per worker need 1.1 GiB for 1 "
            "worker(s) (2.1 GiB with dataplane.memory_mb), but the machine has 2.0 GiB (MemTotal)");
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1, 2],)", big)), HostFacts{{0, 1, 2}, 0}),
            "(no error)");  // unknown memory
}

const char* kKubeconfig = R"(current-context: c
contexts: [{name: c, context: {cluster: k, user: u}}]
clusters: [{name: k, cluster: {server: "https://198.18.0.100:6443", certificate-authority: ca.crt}}]
users: [{name: u, user: {client-certificate: u.crt, client-key: /nonexistent/u.key}}]
)";

// Files the kubeconfig names are read only when the client connects: a missing CA would be a
// watch retrying forever after the ports are up. Relative names are the kubeconfig's.
TEST(Preflight, EveryFileTheKubeconfigNamesCanBeRead) {
  TempDir dir;
  const std::string kubeconfig = dir.write("kube/config", kKubeconfig);
  const cfg::Config config = parse(R"({"kubernetes": {"kubeconfig": ")" + kubeconfig + R"("}})");
  EXPECT_EQ(error_of(config, kTwoCpus), "t.json: kubernetes.kubeconfig: kubeconfig " + kubeconfig +
                                            ": certificate-authority " + dir.path() +
                                            "/kube/ca.crt: cannot read: No such file or directory");
  dir.write("kube/ca.crt", "CA");
  EXPECT_EQ(error_of(config, kTwoCpus), "t.json: kubernetes.kubeconfig: kubeconfig " + kubeconfig +
                                            ": client-certificate " + dir.path() +
                                            "/kube/u.crt: cannot read: No such file or directory");
  fs::create_directories(dir.path() + "/kube/u.crt");
  EXPECT_EQ(error_of(config, kTwoCpus), "t.json: kubernetes.kubeconfig: kubeconfig " + kubeconfig +
                                            ": client-certificate " + dir.path() +
                                            "/kube/u.crt: cannot read: Is a directory");
  fs::remove(dir.path() + "/kube/u.crt");
  dir.write("kube/u.crt", "CERT");
  EXPECT_EQ(error_of(config, kTwoCpus),
            "t.json: kubernetes.kubeconfig: kubeconfig " + kubeconfig +
                ": client-key /nonexistent/u.key: cannot read: No such file or directory");

  // The kubeconfig itself.
  const cfg::Config directory = parse(R"({"kubernetes": {"kubeconfig": ")" + dir.path() + R"("}})");
  EXPECT_EQ(error_of(directory, kTwoCpus), "t.json: kubernetes.kubeconfig: kubeconfig " +
                                               dir.path() +
                                               ": cannot read the file: Is a directory");
}

TEST(Preflight, InClusterFilesOnlyWhenAsked) {
  const cfg::Config config = parse(R"({"kubernetes": {"in_cluster": true}})");
  EXPECT_EQ(error_of(config, kTwoCpus, {.in_cluster = false}), "(no error)");
  if (getenv("KUBERNETES_SERVICE_HOST") == nullptr) {
    EXPECT_EQ(error_of(config, kTwoCpus),
              "t.json: kubernetes.in_cluster: not running in a cluster: KUBERNETES_SERVICE_HOST "
              "and KUBERNETES_SERVICE_PORT must be set");
  }
}

TEST(Preflight, CpuList) {
  EXPECT_EQ(cpu_list({}), "none");
  EXPECT_EQ(cpu_list({3}), "3");
  EXPECT_EQ(cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
}

// The control threads take every CPU no worker polls; the main core alone when none is left.
TEST(Preflight, ControlCpusAreTheOnesNoWorkerPolls) {
  cfg::DataplaneConfig d;
  d.main_core = 0;
  d.worker_cores = {2, 3};
  EXPECT_EQ(control_cpus({0, 1, 2, 3, 4, 5}, d), (std::set<uint32_t>{0, 1, 4, 5}));
  EXPECT_EQ(control_cpus({2, 3}, d), (std::set<uint32_t>{0}));
  EXPECT_EQ(control_cpus({}, d), (std::set<uint32_t>{0}));  // unknown
  d.main_core = 4;
  d.worker_cores = {0, 1, 2, 3};
  EXPECT_EQ(control_cpus({0, 1, 2, 3, 4}, d), (std::set<uint32_t>{4}));
}

TEST(Preflight, ParsesTheKernelsCpuLists) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11"), (std::set<uint32_t>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5"), (std::set<uint32_t>{5}));
  EXPECT_EQ(parse_cpu_list(""), std::set<uint32_t>{});
  for (const char* bad : {"3-1", "a", "1,,2", "1-", "-1", "0-99999999"}) {
    EXPECT_EQ(parse_cpu_list(bad), std::set<uint32_t>{}) << bad;
  }
  for (uint32_t c : {0u, 1u, 100u}) {
    EXPECT_EQ(parse_cpu_list(cpu_list({c, c + 1, c + 5})), (std::set<uint32_t>{c, c + 1, c + 5}));
  }
}

// A container's or a systemd unit's memory limit is what `run` can fault in, not MemTotal.
TEST(Preflight, MemoryLimitOfTheCgroup) {
  const TempDir root;
  root.write("system.slice/magline.service/memory.max", "1073741824\n");
  root.write("kubepods/pod1/memory.max", "max\n");
  root.write("memory/docker/abc/memory.limit_in_bytes", "536870912\n");
  root.write("bad/memory.max", "12x\n");
  const std::string& r = root.path();
  EXPECT_EQ(cgroup_memory_limit("0::/system.slice/magline.service\n", r), uint64_t(1) << 30);
  EXPECT_EQ(cgroup_memory_limit("0::/kubepods/pod1\n", r), 0u);  // "max": no limit
  EXPECT_EQ(cgroup_memory_limit("0::/elsewhere\n", r), 0u);      // nothing to read
  EXPECT_EQ(cgroup_memory_limit("0::/bad\n", r), 0u);
  EXPECT_EQ(cgroup_memory_limit("12:cpuset:/docker/abc\n4:memory:/docker/abc\n", r), uint64_t(512)
                                                                                         << 20);
  EXPECT_EQ(cgroup_memory_limit("4:cpu,memory:/docker/abc\n", r), uint64_t(512) << 20);
  EXPECT_EQ(cgroup_memory_limit("4:cpuacct:/docker/abc\n", r), 0u);

  const std::string big = R"("flow_table": {"capacity": 16777216},)";
  const HostFacts limited{{0, 1, 2}, 16 * kGiB, 1 * kGiB};
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1], "memory_mb": 256,)", big)), limited),
            "t.json: flow_table.capacity: 16777216 connections per worker need 1.1 GiB for 1 "
            "worker(s) (1.4 GiB with dataplane.memory_mb), but this process's cgroup allows "
            "1.0 GiB (memory.max, hugepages aside)");
  // Hugepages are not charged to memory.max; without them the EAL's memory is.
  const HostFacts roomy{{0, 1, 2}, 16 * kGiB, 1200 * (uint64_t(1) << 20)};
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1], "memory_mb": 256,)", big)), roomy),
            "(no error)");
  EXPECT_EQ(error_of(parse(with_port(R"("worker_cores": [1], "memory_mb": 256,
                                        "hugepages": false,)", big)), roomy),
            "t.json: flow_table.capacity: 16777216 connections per worker need 1.1 GiB for 1 "
            "worker(s) (1.4 GiB with dataplane.memory_mb), but this process's cgroup allows "
            "1.2 GiB (memory.max)");
}

// An af_packet port's interface as the kernel would treat it beside Magline: forwarding (IPv4,
// IPv6 unless disabled) and ARP named, one line per port; nothing for an interface given to
// Magline, for other devices, or for an interface that is not there.
TEST(Preflight, WarnsOfAnAfPacketInterfaceTheKernelStillServes) {
  const TempDir root;
  const auto iface = [&](const std::string& name, const char* flags, const char* fwd4,
                         const char* fwd6, const char* no6) {
    root.write("sys/class/net/" + name + "/flags", flags);
    root.write("proc/sys/net/ipv4/conf/" + name + "/forwarding", fwd4);
    root.write("proc/sys/net/ipv6/conf/" + name + "/forwarding", fwd6);
    root.write("proc/sys/net/ipv6/conf/" + name + "/disable_ipv6", no6);
  };
  iface("open0", "0x1003\n", "1\n", "1\n", "0\n");   // all three
  iface("given0", "0x1083\n", "0\n", "1\n", "1\n");  // arp off, v4 off, v6 disabled
  iface("arp0", "0x1003\n", "0\n", "0\n", "0\n");    // ARP alone
  iface("v6fwd0", "0x1083\n", "0\n", "1\n", "0\n");  // IPv6 forwarding alone
  const auto warnings = [&](const std::string& device) {
    const cfg::Config c = parse(R"({"dataplane": {"ports": [{"name": "edge", "device": ")" +
                                device + R"(", "addresses": ["198.18.0.1/16"]}]}})");
    return af_packet_warnings(c, root.path() + "/proc", root.path() + "/sys");
  };
  const std::vector<std::string> all = warnings("net_af_packet0,iface=open0");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0],
            "dataplane.ports[0] (edge, net_af_packet0,iface=open0): the kernel receives every "
            "frame on open0 too, and routes IPv4 frames on (net.ipv4.conf.open0.forwarding = 1), "
            "routes IPv6 frames on (net.ipv6.conf.open0.forwarding = 1) and answers ARP (ip link "
            "set open0 arp off): give open0 to Magline alone (docs/runbook.md, \"Without a DPDK "
            "NIC\")");
  EXPECT_TRUE(warnings("net_af_packet0,iface=given0").empty());
  EXPECT_TRUE(warnings("net_af_packet0,iface=absent0").empty());
  EXPECT_TRUE(warnings("net_null0").empty());
  EXPECT_TRUE(warnings("net_pcap0,iface=open0").empty());
  EXPECT_TRUE(warnings("net_af_packet0,iface=../open0").empty());
  const std::vector<std::string> arp = warnings("eth_af_packet1,qpairs=2,iface=arp0,blocksz=4096");
  ASSERT_EQ(arp.size(), 1u);
  EXPECT_NE(arp[0].find("on arp0 too, and answers ARP (ip link set arp0 arp off): give"),
            std::string::npos)
      << arp[0];
  const std::vector<std::string> v6 = warnings("net_af_packet0,iface=v6fwd0");
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_NE(v6[0].find("too, and routes IPv6 frames on (net.ipv6.conf.v6fwd0.forwarding = 1): "),
            std::string::npos)
      << v6[0];
  // Two ports, each its own line.
  const cfg::Config two = parse(R"({"dataplane": {"worker_cores": [1], "ports": [
      {"name": "a", "device": "net_af_packet0,iface=open0", "addresses": ["198.18.0.1/16"]},
      {"name": "b", "device": "net_af_packet1,iface=arp0", "addresses": ["198.19.0.1/16"]}]}})");
  const std::vector<std::string> both =
      af_packet_warnings(two, root.path() + "/proc", root.path() + "/sys");
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].rfind("dataplane.ports[1] (b, net_af_packet1,iface=arp0)", 0), 0u) << both[1];
}

// This machine, as `run` sees it: the CPU running this test is usable, memory is known; a
// narrower affinity than the cpuset (a parent's taskset) does not narrow it, since the EAL sets
// each lcore's own.
TEST(Preflight, ThisProcess) {
  const HostFacts host = HostFacts::of_this_process();
  EXPECT_EQ(host.cpus.count(uint32_t(sched_getcpu())), 1u);
  cpu_set_t before;
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const HostFacts narrowed = HostFacts::of_this_process();
  ASSERT_EQ(sched_setaffinity(0, sizeof before, &before), 0);
  EXPECT_EQ(narrowed.cpus, host.cpus);
  EXPECT_GT(host.memory_bytes, uint64_t(64) << 20);
}

}  // namespace
}  // namespace magline::control
