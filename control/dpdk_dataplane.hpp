// `magline run`'s dataplane: the EAL, the packet pool, the ports (each with the steering of its
// return traffic: rte_flow rules where the device takes them, software RSS prediction where it
// refuses them) and the workers (control/dpdk_workers.hpp). Built from the configuration's
// dataplane section; the control thread sees it as a WorkerLink.
//
// Threads: control thread. The header names no DPDK type.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "control/dpdk_workers.hpp"
#include "control/port_metrics.hpp"
#include "dataplane/node.hpp"
#include "dataplane/result.hpp"
#include "dataplane/steering.hpp"

namespace magline::control {

class DpdkDataplane {
 public:
  // Starts the EAL, opens and starts every port, installs rte_flow rules where the device takes
  // them, and builds the workers (not launched). Errors name the port and what failed.
  static Result<std::unique_ptr<DpdkDataplane>> start(const cfg::Config& config);
  // Stops the workers, then the ports, then the EAL (in that order: everything that lives in
  // EAL memory goes before it).
  ~DpdkDataplane();

  const dp::Node& node() const noexcept { return node_; }
  DpdkWorkers& workers() noexcept { return *workers_; }
  const std::vector<PortReport>& ports() const noexcept { return reports_; }
  // Where DPDK's own tools find this process (/stats "dpdk"): the file prefix and runtime
  // directory, the telemetry socket (null when off), whether capture is on.
  nlohmann::ordered_json dpdk_json() const;
  // What the operator should hear at start: the telemetry socket held by another process.
  std::optional<std::string> warning() const;
  // Each port's device counters and link now (rte_eth_stats_get, rte_eth_link_get_nowait:
  // neither waits). Control thread.
  std::vector<PortCounters> port_counters() const;

 private:
  DpdkDataplane();
  struct Devices;  // EAL, pool, ports, rte_flow rules (dpdk_dataplane.cpp)
  std::unique_ptr<Devices> devices_;
  dp::Node node_;
  std::unique_ptr<dp::Steering> steering_;
  std::vector<PortReport> reports_;
  struct Tools {
    std::string file_prefix;
    std::string runtime_dir;
    std::string telemetry_socket;  // empty: telemetry off
    pid_t telemetry_owner = 0;     // another process that holds the socket; 0: this one
    bool capture = false;
  } dpdk_;
  std::unique_ptr<DpdkWorkers> workers_;
};

}  // namespace magline::control
