#include "control/port_metrics.hpp"

namespace magline::control {

void port_metrics(Exposition& e, const std::vector<PortReport>& reports,
                  const std::vector<PortCounters>& counters) {
  for (const PortReport& p : reports) {
    e.sample("magline_port_steering", MetricType::gauge,
             "How a port's return traffic reaches the worker that owns its connection (1 for "
             "the kind in effect).",
             "port=\"" + label_escaped(p.name) + "\",kind=\"" + label_escaped(p.steering) + "\"",
             uint64_t{1});
  }
  for (const PortCounters& p : counters) {
    const std::string port = "port=\"" + label_escaped(p.name) + "\"";
    e.sample("magline_port_link_up", MetricType::gauge, "1 when the port's link is up.", port,
             uint64_t{p.link_up});
    e.sample("magline_port_link_speed_bytes_per_second", MetricType::gauge,
             "The link's speed (0 when down or unknown).", port, p.speed_bytes_per_second);
    if (!p.read) continue;
    const struct {
      const char* metric;
      const char* help;
      uint64_t value;
    } rows[] = {
        {"magline_port_rx_packets_total", "Frames the device received (every queue).",
         p.rx_packets},
        {"magline_port_tx_packets_total", "Frames the device sent.", p.tx_packets},
        {"magline_port_rx_bytes_total", "Bytes the device received.", p.rx_bytes},
        {"magline_port_tx_bytes_total", "Bytes the device sent.", p.tx_bytes},
        {"magline_port_rx_missed_total",
         "Frames the device dropped for want of room in an RX queue (workers too slow).",
         p.rx_missed},
        {"magline_port_rx_errors_total", "Erroneous frames the device received.", p.rx_errors},
        {"magline_port_tx_errors_total", "Frames the device failed to send.", p.tx_errors},
        {"magline_port_rx_nombuf_total", "RX buffer allocation failures (the packet pool ran dry).",
         p.rx_no_mbuf},
    };
    for (const auto& r : rows)
      e.sample(r.metric, MetricType::counter, r.help, port, r.value);
  }
}

}  // namespace magline::control
