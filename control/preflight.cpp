#include "control/preflight.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/json_reader.hpp"
#include "control/k8s_client/kube_config.hpp"
#include "control/k8s_feed.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/traffic.hpp"

namespace magline::control {

namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The value of a cgroup file of this process, v2 (`v2_file` in the unified hierarchy) or v1
// (`v1_file` under the hierarchy of `v1_controller`); empty when there is none to read. `root` is
// where cgroupfs is mounted and `proc_cgroup` the text of /proc/self/cgroup (tests give their own).
std::string cgroup_value(const std::string& proc_cgroup, const std::string& root,
                         const std::string& v2_file, const std::string& v1_controller,
                         const std::string& v1_file) {
  std::istringstream in(proc_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    // "0::/PATH" (v2) or "N:cpuset:/PATH" (v1, possibly with other controllers: "N:cpu,cpuset:")
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    std::string value;
    if (controllers.empty()) {
      value = first_line(root + path + "/" + v2_file);
    } else if (("," + controllers + ",").find("," + v1_controller + ",") != std::string::npos) {
      value = first_line(root + "/" + v1_controller + path + "/" + v1_file);
    }
    if (!value.empty()) return value;
  }
  return {};
}

std::string proc_self_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The cpuset of this process's cgroup ("0-3,8"); empty when there is none to read.
std::string cgroup_cpuset() {
  return cgroup_value(proc_self_cgroup(), "/sys/fs/cgroup", "cpuset.cpus.effective", "cpuset",
                      "cpuset.effective_cpus");
}

// The CPUs the EAL can place a thread on: those online, within this process's cgroup cpuset.
// Not the affinity this process inherited: the EAL sets each lcore's own, and a parent's taskset
// does not bind it (a cpuset does). Empty when it cannot tell.
std::set<uint32_t> usable_cpus() {
  std::set<uint32_t> online = parse_cpu_list(first_line("/sys/devices/system/cpu/online"));
  const std::set<uint32_t> cpuset = parse_cpu_list(cgroup_cpuset());
  if (online.empty() || cpuset.empty()) return online;
  std::set<uint32_t> both;
  for (uint32_t c : online) {
    if (cpuset.count(c)) both.insert(c);
  }
  return both;
}

uint64_t mem_total() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t value = 0;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemTotal:") return value * 1024;  // kB
  }
  return 0;
}

std::string size_text(uint64_t bytes) {
  char buf[32];
  if (bytes >= (uint64_t(1) << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(bytes) / double(uint64_t(1) << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%llu MiB", (unsigned long long)((bytes + kMiB - 1) / kMiB));
  }
  return buf;
}

Result<void> check_cores(const cfg::Config& config, const HostFacts& host) {
  if (host.cpus.empty()) return {};
  const cfg::DataplaneConfig& d = config.dataplane;
  auto missing = [&](uint32_t core, const std::string& path) -> Result<void> {
    if (host.cpus.count(core)) return {};
    return Error{config.source + ": " + path + ": core " + std::to_string(core) +
                 " is not available (the online CPUs of this process's cpuset: " + cpu_list(host.cpus) + ")"};
  };
  if (auto ok = missing(d.main_core, "dataplane.main_core"); !ok) return ok;
  for (size_t i = 0; i < d.worker_cores.size(); ++i) {
    if (auto ok = missing(d.worker_cores[i], cfg::index_path("dataplane.worker_cores", i)); !ok) {
      return ok;
    }
  }
  return {};
}

Result<void> check_memory(const cfg::Config& config, const HostFacts& host) {
  const cfg::DataplaneConfig& d = config.dataplane;
  const uint64_t workers = d.worker_cores.size();
  const uint64_t tables = workers * worker_memory_bytes(config.flow_capacity);
  const uint64_t eal = uint64_t(d.memory_mb) * kMiB;
  // Hugepages are charged to the hugetlb controller, not to memory.max: the EAL's memory counts
  // against the cgroup's limit only without them.
  const uint64_t charged = tables + (d.hugepages ? 0 : eal);
  std::string has;
  if (host.memory_bytes != 0 && tables + eal > host.memory_bytes) {
    has = "the machine has " + size_text(host.memory_bytes) + " (MemTotal)";
  } else if (host.cgroup_memory_bytes != 0 && charged > host.cgroup_memory_bytes) {
    has = "this process's cgroup allows " + size_text(host.cgroup_memory_bytes) + " (memory.max" +
          (d.hugepages ? ", hugepages aside)" : ")");
  } else {
    return {};
  }
  return Error{config.source + ": flow_table.capacity: " + std::to_string(config.flow_capacity) +
               " connections per worker need " + size_text(tables) + " for " +
               std::to_string(workers) + " worker(s) (" + size_text(tables + eal) +
               " with dataplane.memory_mb), but " + has};
}

Result<void> check_kubernetes(const cfg::Config& config, const PreflightOptions& options) {
  const cfg::KubernetesConfig& k = config.kubernetes;
  if (!k.enabled || (k.in_cluster && !options.in_cluster)) return {};
  // The field the problem comes from: the section itself when the kubeconfig is kubectl's
  // default (its messages name the file).
  const std::string field = k.in_cluster           ? "kubernetes.in_cluster"
                            : k.kubeconfig.empty() ? "kubernetes"
                                                   : "kubernetes.kubeconfig";
  auto api = api_config(k);
  if (!api) return Error{config.source + ": " + field + ": " + api.error().message};
  if (auto files = k8s::check_files(*api); !files) {
    const std::string from =
        k.in_cluster ? "in-cluster config" : "kubeconfig " + kubeconfig_file(k).path;
    return Error{config.source + ": " + field + ": " + from + ": " + files.error().message};
  }
  return {};
}

}  // namespace

std::set<uint32_t> control_cpus(const std::set<uint32_t>& usable, const cfg::DataplaneConfig& d) {
  std::set<uint32_t> cpus = usable;
  for (uint32_t w : d.worker_cores)
    cpus.erase(w);
  if (cpus.empty()) cpus.insert(d.main_core);
  return cpus;
}

HostFacts HostFacts::of_this_process() {
  return {usable_cpus(), mem_total(), cgroup_memory_limit(proc_self_cgroup(), "/sys/fs/cgroup")};
}

uint64_t cgroup_memory_limit(const std::string& proc_cgroup, const std::string& root) {
  const std::string text =
      cgroup_value(proc_cgroup, root, "memory.max", "memory", "memory.limit_in_bytes");
  // "max" (v2) is no limit; v1 writes "no limit" as a page-rounded LONG_MAX, which any machine's
  // MemTotal undercuts.
  if (text.empty() || text == "max") return 0;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || v > (uint64_t(1) << 60)) return 0;
    v = v * 10 + uint64_t(c - '0');
  }
  return v;
}

uint64_t worker_memory_bytes(uint64_t flow_capacity) {
  return dp::FlowTable::memory_bytes(flow_capacity) + dp::TrafficRows::kBytes;
}

Result<void> preflight(const cfg::Config& config, const HostFacts& host,
                       const PreflightOptions& options) {
  if (!config.dataplane.ports.empty()) {
    if (auto ok = check_cores(config, host); !ok) return ok;
    if (auto ok = check_memory(config, host); !ok) return ok;
  }
  return check_kubernetes(config, options);
}

namespace {

// The interface an af_packet device names (`iface=`), or "" for any other device.
std::string af_packet_interface(const std::string& device) {
  const size_t comma = device.find(',');
  const std::string driver = device.substr(0, comma);
  if (driver.rfind("net_af_packet", 0) != 0 && driver.rfind("eth_af_packet", 0) != 0) return "";
  for (size_t at = comma; at != std::string::npos;) {
    const size_t next = device.find(',', at + 1);
    const std::string arg = device.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    if (arg.rfind("iface=", 0) == 0) return arg.substr(6);
    at = next;
  }
  return "";
}

}  // namespace

std::vector<std::string> af_packet_warnings(const cfg::Config& config, const std::string& proc,
                                            const std::string& sys) {
  std::vector<std::string> lines;
  const std::vector<cfg::PortConfig>& ports = config.dataplane.ports;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string ifname = af_packet_interface(ports[i].device);
    // A name with a slash or a dot-dot would read outside the interface's own files.
    if (ifname.empty() || ifname.find('/') != std::string::npos || ifname == "." ||
        ifname == "..") {
      continue;
    }
    const std::string flags = first_line(sys + "/class/net/" + ifname + "/flags");
    if (flags.empty()) continue;  // no such interface here
    const std::string v4 = proc + "/sys/net/ipv4/conf/" + ifname + "/";
    const std::string v6 = proc + "/sys/net/ipv6/conf/" + ifname + "/";
    std::vector<std::string> what;
    if (first_line(v4 + "forwarding") == "1") {
      what.push_back("routes IPv4 frames on (net.ipv4.conf." + ifname + ".forwarding = 1)");
    }
    if (first_line(v6 + "forwarding") == "1" && first_line(v6 + "disable_ipv6") == "0") {
      what.push_back("routes IPv6 frames on (net.ipv6.conf." + ifname + ".forwarding = 1)");
    }
    constexpr unsigned long kIffNoarp = 0x80;  // <linux/if.h>
    if ((std::strtoul(flags.c_str(), nullptr, 16) & kIffNoarp) == 0) {
      what.push_back("answers ARP (ip link set " + ifname + " arp off)");
    }
    if (what.empty()) continue;
    std::string line = "dataplane.ports[" + std::to_string(i) + "] (" + ports[i].name +
                       ", " + ports[i].device + "): the kernel receives every frame on " +
                       ifname + " too, and ";
    for (size_t k = 0; k < what.size(); ++k) {
      line += (k == 0 ? "" : k + 1 == what.size() ? " and " : ", ") + what[k];
    }
    lines.push_back(line + ": give " + ifname +
                    " to Magline alone (docs/runbook.md, \"Without a DPDK NIC\")");
  }
  return lines;
}

std::set<uint32_t> parse_cpu_list(const std::string& text) {
  std::set<uint32_t> cpus;
  size_t i = 0;
  const auto number = [&](uint32_t& v) {
    const size_t from = i;
    v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && v < (1u << 20)) {
      v = v * 10 + uint32_t(text[i++] - '0');
    }
    return i > from && v < (1u << 20);
  };
  while (i < text.size()) {
    uint32_t lo = 0, hi = 0;
    if (!number(lo)) return {};
    hi = lo;
    if (i < text.size() && text[i] == '-') {
      ++i;
      if (!number(hi) || hi < lo) return {};
    }
    for (uint32_t c = lo; c <= hi; ++c) cpus.insert(c);
    if (i < text.size() && text[i] != ',') return {};
    if (i < text.size()) ++i;
  }
  return cpus;
}

std::string cpu_list(const std::set<uint32_t>& cpus) {
  std::string out;
  for (auto it = cpus.begin(); it != cpus.end();) {
    const uint32_t first = *it;
    uint32_t last = first;
    while (++it != cpus.end() && *it == last + 1)
      ++last;
    if (!out.empty()) out += ',';
    out += std::to_string(first);
    if (last != first) out += '-' + std::to_string(last);
  }
  return out.empty() ? "none" : out;
}

}  // namespace magline::control
