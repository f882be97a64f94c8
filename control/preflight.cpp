#include "control/preflight.hpp"

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <fstream>

#include "config/json_reader.hpp"
#include "control/k8s_client/kube_config.hpp"
#include "control/k8s_feed.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/traffic.hpp"

namespace magline::control {

namespace {

constexpr uint64_t kMiB = uint64_t(1) << 20;

// sched_getaffinity with a mask as large as the kernel's (CPU_SETSIZE is 1024; machines have
// more). Empty when it cannot tell.
std::set<uint32_t> affinity() {
  for (size_t n = CPU_SETSIZE; n <= (size_t(1) << 20); n *= 2) {
    cpu_set_t* set = CPU_ALLOC(n);
    if (set == nullptr) return {};
    const size_t size = CPU_ALLOC_SIZE(n);
    if (sched_getaffinity(0, size, set) == 0) {
      std::set<uint32_t> cpus;
      for (size_t c = 0; c < n; ++c) {
        if (CPU_ISSET_S(c, size, set)) cpus.insert(uint32_t(c));
      }
      CPU_FREE(set);
      return cpus;
    }
    CPU_FREE(set);
    if (errno != EINVAL) return {};
  }
  return {};
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
                 " is not one this process may run on (" + cpu_list(host.cpus) + ")"};
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
  if (host.memory_bytes == 0) return {};
  const cfg::DataplaneConfig& d = config.dataplane;
  const uint64_t workers = d.worker_cores.size();
  const uint64_t tables = workers * worker_memory_bytes(config.flow_capacity);
  const uint64_t eal = uint64_t(d.memory_mb) * kMiB;
  if (tables + eal <= host.memory_bytes) return {};
  return Error{config.source + ": flow_table.capacity: " + std::to_string(config.flow_capacity) +
               " connections per worker need " + size_text(tables) + " for " +
               std::to_string(workers) + " worker(s) (" + size_text(tables + eal) +
               " with dataplane.memory_mb), but the machine has " + size_text(host.memory_bytes) +
               " (MemTotal)"};
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

HostFacts HostFacts::of_this_process() {
  return {affinity(), mem_total()};
}

uint64_t worker_memory_bytes(uint64_t flow_capacity) {
  return dp::FlowTable::memory_bytes(flow_capacity) +
         uint64_t(dp::TrafficRows::kFrontendSlots) * sizeof(dp::TrafficCounter) +
         uint64_t(dp::TrafficRows::kBackendSlots) * sizeof(dp::BackendRow);
}

Result<void> preflight(const cfg::Config& config, const HostFacts& host,
                       const PreflightOptions& options) {
  if (!config.dataplane.ports.empty()) {
    if (auto ok = check_cores(config, host); !ok) return ok;
    if (auto ok = check_memory(config, host); !ok) return ok;
  }
  return check_kubernetes(config, options);
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
