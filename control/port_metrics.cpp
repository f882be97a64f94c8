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

nlohmann::ordered_json ports_json(const std::vector<PortReport>& reports,
                                  const std::vector<PortCounters>& counters) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const PortReport& r : reports) {
    nlohmann::ordered_json j = {
        {"name", r.name}, {"steering", r.steering}, {"steering_detail", r.detail}};
    for (const PortCounters& p : counters) {
      if (p.name != r.name) continue;
      j["link_up"] = p.link_up;
      j["link_speed_bytes_per_second"] = p.speed_bytes_per_second;
      if (p.read) {
        j["counters"] = {{"rx_packets", p.rx_packets}, {"tx_packets", p.tx_packets},
                         {"rx_bytes", p.rx_bytes},     {"tx_bytes", p.tx_bytes},
                         {"rx_missed", p.rx_missed},   {"rx_errors", p.rx_errors},
                         {"tx_errors", p.tx_errors},   {"rx_nombuf", p.rx_no_mbuf}};
      }
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace magline::control
