// What `magline run` checks before it starts anything (the EAL, ports, workers), and `magline
// check` with it: that the machine can hold the configuration, beyond what the file alone says
// (config/validate.cpp). One place, so that `check` cannot pass what `run` refuses:
//   - every core (main_core, worker_cores) is one the EAL can run a thread on: online and within
//     this process's cgroup cpuset (a taskset the process inherited does not count: the EAL
//     sets each lcore's affinity itself);
//   - the flow tables and traffic rows of every worker, with the EAL's memory_mb, fit in the
//     machine's memory (MemTotal: they are faulted in at start, and would abort it), and within
//     the cgroup's memory limit (memory.max; v1 memory.limit_in_bytes: a container's or a
//     systemd MemoryMax=, which would kill it instead), where hugepages do not count;
//   - the API server credentials: the kubeconfig (or, when asked, the in-cluster files) reads,
//     and every file it names (CA, client certificate and key, token file) can be read.
// The dataplane checks apply to a configuration `run` would start (one with ports).
//
// Control thread (or the command line) only; reads files (sysfs, procfs, the cgroup's cpuset).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

// What the checks need to know of the machine; tests make their own.
struct HostFacts {
  std::set<uint32_t> cpus;    // the CPUs the EAL may use; empty: unknown, not checked
  uint64_t memory_bytes = 0;         // MemTotal; 0: unknown, not checked
  uint64_t cgroup_memory_bytes = 0;  // the cgroup's memory limit; 0: none

  static HostFacts of_this_process();
};

struct PreflightOptions {
  // Read the pod's service-account files (in_cluster): `run` does; `check`, which usually runs
  // outside the pod, does not.
  bool in_cluster = true;
};

// Bytes `run` allocates outside the EAL per worker: its flow table and its traffic rows.
uint64_t worker_memory_bytes(uint64_t flow_capacity);

// The first problem, as one line `SOURCE: FIELD: what` (SOURCE is config.source).
Result<void> preflight(const cfg::Config& config, const HostFacts& host,
                       const PreflightOptions& options = {});

// What the kernel does beside Magline with the frames of an af_packet port's interface
// (`net_af_packet0,iface=X`): it receives each one too, and may route it on (a second copy
// towards wherever its routes lead) or answer ARP there. One line per such port, naming what
// to turn off (docs/runbook.md, "Without a DPDK NIC"); none for other ports, or for an
// interface not found (DPDK's start says so). Read under `proc` and `sys` ("/proc", "/sys"):
// tests give their own.
std::vector<std::string> af_packet_warnings(const cfg::Config& config,
                                            const std::string& proc = "/proc",
                                            const std::string& sys = "/sys");

// The memory limit of the cgroup that /proc/self/cgroup's text `proc_cgroup` names, read under
// `root` (cgroupfs, "/sys/fs/cgroup"): v2 memory.max or v1 memory.limit_in_bytes; 0 for none.
uint64_t cgroup_memory_limit(const std::string& proc_cgroup, const std::string& root);

// The CPUs of the control threads (the main thread, the watchers, the provider, the admin
// listener, the Maglev builders): every CPU this process may use that no worker polls, as
// DPDK's own control threads do; the main core alone when the workers take all of them (or
// `usable` is unknown).
std::set<uint32_t> control_cpus(const std::set<uint32_t>& usable, const cfg::DataplaneConfig& d);

// "0-3,8,10-11" (the kernel's list format), both ways; parse_cpu_list gives {} for text it
// cannot read.
std::set<uint32_t> parse_cpu_list(const std::string& text);
std::string cpu_list(const std::set<uint32_t>& cpus);

}  // namespace magline::control
