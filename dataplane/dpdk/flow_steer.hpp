// Return-traffic steering for full-NAT with rte_flow, and the answer to "which steering is in
// effect on this port".
//
// With W workers (W a power of two), worker i owns the SNAT ports p with (p & (W-1)) == i, and
// for every SNAT address one rule per worker and L4 protocol sends packets to (address, such a
// destination port) to RX queue i: the mask selects the low bits of the port, so W rules cover
// the whole port range. Everything else still goes through RSS. Where the NIC refuses the rules
// (every virtual device here: net_ring, net_null, net_pcap have no rte_flow support), the caller
// falls back to software steering: choosing SNAT ports whose replies RSS hashes to the owning
// queue (dp::RssSteering::find_port).
//
// Threads: control thread only; installing may block in the driver. Ownership: a FlowSteering
// owns its rules and destroys them when destroyed, which must happen before its Port closes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/dpdk/port.hpp"
#include "dataplane/result.hpp"
#include "dataplane/rss.hpp"

struct rte_flow;

namespace magline::dpdk {

struct SnatSteerConfig {
  std::vector<dp::IpAddr> addresses{};  // Magline's SNAT addresses (either family)
  uint16_t workers = 1;               // RX queues 0 .. workers-1
  bool tcp = true;
  bool udp = true;
};

class FlowSteering {
 public:
  // Validates every rule with rte_flow_validate, then creates them all, or none: if the device
  // refuses any rule (validation or creation), nothing stays installed and the result is
  // inactive, with the device's reason in reason(). An inactive result is the normal outcome
  // on devices without rte_flow, not an error. Errors: bad arguments (no address, no protocol,
  // more workers than the port's RX queues). A worker count that is not a power of two is
  // inactive ("unsupported"), like a device without rte_flow.
  static Result<FlowSteering> install(const Port& port, const SnatSteerConfig& config);

  FlowSteering(FlowSteering&& o) noexcept;
  FlowSteering& operator=(FlowSteering&&) = delete;
  ~FlowSteering();

  bool active() const noexcept { return !flows_.empty(); }
  const std::string& reason() const noexcept { return reason_; }
  size_t rule_count() const noexcept { return flows_.size(); }
  uint16_t workers() const noexcept { return workers_; }

 private:
  FlowSteering(uint16_t port, uint16_t workers) : port_(port), workers_(workers) {}
  void destroy_all() noexcept;

  uint16_t port_;
  uint16_t workers_;
  std::vector<rte_flow*> flows_;
  std::string reason_;
};

enum class SteeringKind {
  single_queue,   // one RX queue: every packet reaches the one worker
  rte_flow,       // SNAT port partition rules installed
  rss_predicted,  // RSS with a known key and RETA: dp::RssSteering predicts the queue
  unknown,        // several queues, no rules, RSS unknown: full-NAT replies may go astray
};

const char* to_string(SteeringKind kind) noexcept;

struct SteeringInEffect {
  SteeringKind kind = SteeringKind::unknown;
  std::string detail;  // for logs and the admin page: why this kind
};

// Which steering the port uses for return traffic, given the rules installed for it (may be
// null). Call after Port::start().
SteeringInEffect steering_in_effect(const Port& port, const FlowSteering* rules);

}  // namespace magline::dpdk
