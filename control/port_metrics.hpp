// Each DPDK port as Prometheus samples and as /stats JSON: the return-traffic steering in effect, the device's
// counters (rte_eth_stats) and its link. Plain structs, filled by the DPDK adapter
// (control/dpdk_dataplane.cpp) and rendered here, so the renderer needs no EAL.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/exposition.hpp"

namespace magline::control {

// How a port's return traffic reaches the worker that owns the connection.
struct PortReport {
  std::string name;
  std::string steering;  // single-queue, rte-flow, rss-predicted
  std::string detail;    // why
};

// One reading of a port (control thread, now and then). `read` false: the device refused
// (rte_eth_stats_get failed) and the counters are absent rather than zero, which would look
// like a reset to Prometheus.
struct PortCounters {
  std::string name;
  bool read = false;
  uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
  uint64_t rx_missed = 0;   // dropped by the NIC: no room in an RX queue (imissed)
  uint64_t rx_errors = 0;   // erroneous frames received (ierrors)
  uint64_t tx_errors = 0;   // frames the NIC failed to send (oerrors)
  uint64_t rx_no_mbuf = 0;  // RX buffer allocation failures (rx_nombuf)
  bool link_up = false;
  uint64_t speed_bytes_per_second = 0;  // 0 when down or unknown
};

// magline_port_* (docs/metrics.md); label `port` is the configured port name.
void port_metrics(Exposition& e, const std::vector<PortReport>& reports,
                  const std::vector<PortCounters>& counters);
// /stats "ports": each port's steering and why, its link and, when the device answered, its
// counters (the same names as the metrics without magline_port_ and _total). Ports without a
// reading yet have only their steering.
nlohmann::ordered_json ports_json(const std::vector<PortReport>& reports,
                                  const std::vector<PortCounters>& counters);

}  // namespace magline::control
