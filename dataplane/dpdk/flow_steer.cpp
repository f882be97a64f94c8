#include "dataplane/dpdk/flow_steer.hpp"

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_flow.h>

#include <cstring>
#include <deque>
#include <utility>

#include "dataplane/steering.hpp"

namespace magline::dpdk {
namespace {

// One rule's pattern and action storage: ETH / IPV4|IPV6 (dst = addr) / TCP|UDP (dst port =
// queue under mask W-1) / END -> QUEUE(queue) / END. The pattern points into the struct, so
// rules live in a deque (stable addresses).
struct Rule {
  rte_flow_attr attr{};
  rte_flow_item_ipv4 ip4_spec{}, ip4_mask{};
  rte_flow_item_ipv6 ip6_spec{}, ip6_mask{};
  rte_flow_item_tcp tcp_spec{}, tcp_mask{};
  rte_flow_item_udp udp_spec{}, udp_mask{};
  rte_flow_action_queue queue{};
  rte_flow_item pattern[4]{};
  rte_flow_action actions[2]{};
};

// The rte_flow form of one partition rule (dp::partition_rules says which).
void fill(Rule& r, const dp::PartitionRule& rule) {
  const dp::IpAddr& addr = rule.addr;
  r.attr.ingress = 1;
  r.pattern[0].type = RTE_FLOW_ITEM_TYPE_ETH;
  if (addr.family == dp::Family::v4) {
    std::memcpy(&r.ip4_spec.hdr.dst_addr, addr.data(), 4);
    std::memset(&r.ip4_mask.hdr.dst_addr, 0xff, 4);
    r.pattern[1] = {RTE_FLOW_ITEM_TYPE_IPV4, &r.ip4_spec, nullptr, &r.ip4_mask};
  } else {
    std::memcpy(r.ip6_spec.hdr.dst_addr, addr.data(), 16);
    std::memset(r.ip6_mask.hdr.dst_addr, 0xff, 16);
    r.pattern[1] = {RTE_FLOW_ITEM_TYPE_IPV6, &r.ip6_spec, nullptr, &r.ip6_mask};
  }
  const rte_be16_t port = rte_cpu_to_be_16(rule.value);
  const rte_be16_t mask = rte_cpu_to_be_16(rule.mask);
  if (rule.proto == dp::kProtoTcp) {
    r.tcp_spec.hdr.dst_port = port;
    r.tcp_mask.hdr.dst_port = mask;
    r.pattern[2] = {RTE_FLOW_ITEM_TYPE_TCP, &r.tcp_spec, nullptr, &r.tcp_mask};
  } else {
    r.udp_spec.hdr.dst_port = port;
    r.udp_mask.hdr.dst_port = mask;
    r.pattern[2] = {RTE_FLOW_ITEM_TYPE_UDP, &r.udp_spec, nullptr, &r.udp_mask};
  }
  r.pattern[3].type = RTE_FLOW_ITEM_TYPE_END;
  r.queue.index = rule.queue;
  r.actions[0] = {RTE_FLOW_ACTION_TYPE_QUEUE, &r.queue};
  r.actions[1] = {RTE_FLOW_ACTION_TYPE_END, nullptr};
}

std::string describe(const rte_flow_error& e, int rc) {
  std::string s = error_text(rc);
  if (e.message != nullptr && s != e.message) s += std::string(" (") + e.message + ")";
  return s;
}

}  // namespace

Result<FlowSteering> FlowSteering::install(const Port& port, const SnatSteerConfig& cfg) {
  if (cfg.addresses.empty()) return Error{port.name() + ": flow steering for no SNAT address"};
  if (!cfg.tcp && !cfg.udp) return Error{port.name() + ": flow steering for no protocol"};
  if (cfg.workers == 0 || cfg.workers > port.rx_queues()) {
    return Error{port.name() + ": flow steering for " + std::to_string(cfg.workers) +
                 " workers on a port with " + std::to_string(port.rx_queues()) + " RX queues"};
  }
  FlowSteering fs(port.id(), cfg.workers);
  if ((cfg.workers & (cfg.workers - 1)) != 0) {
    fs.reason_ = "unsupported: " + std::to_string(cfg.workers) +
                 " workers is not a power of two, so no port mask partitions the range";
    return fs;
  }

  std::deque<Rule> rules;
  for (const dp::PartitionRule& rule :
       dp::partition_rules(cfg.addresses, cfg.workers, cfg.tcp, cfg.udp)) {
    fill(rules.emplace_back(), rule);
  }
  // Validate everything first: a device that cannot take the rules is told apart from one that
  // runs out of room half way, and nothing is installed in the first case.
  for (const Rule& r : rules) {
    rte_flow_error err;
    std::memset(&err, 0, sizeof err);
    if (int rc = rte_flow_validate(fs.port_, &r.attr, r.pattern, r.actions, &err); rc != 0) {
      fs.reason_ = "unsupported: rte_flow_validate: " + describe(err, rc);
      return fs;
    }
  }
  for (const Rule& r : rules) {
    rte_flow_error err;
    std::memset(&err, 0, sizeof err);
    rte_flow* f = rte_flow_create(fs.port_, &r.attr, r.pattern, r.actions, &err);
    if (f == nullptr) {
      fs.reason_ = "unsupported: rte_flow_create: " + describe(err, -rte_errno);
      fs.destroy_all();
      return fs;
    }
    fs.flows_.push_back(f);
  }
  fs.reason_ = std::to_string(fs.flows_.size()) +
               " rte_flow rules: SNAT port p goes to queue p & " + std::to_string(cfg.workers - 1);
  return fs;
}

FlowSteering::FlowSteering(FlowSteering&& o) noexcept
    : port_(o.port_),
      workers_(o.workers_),
      flows_(std::move(o.flows_)),
      reason_(std::move(o.reason_)) {
  o.flows_.clear();
}

FlowSteering::~FlowSteering() { destroy_all(); }

void FlowSteering::destroy_all() noexcept {
  for (rte_flow* f : flows_) {
    rte_flow_error err;
    rte_flow_destroy(port_, f, &err);
  }
  flows_.clear();
}

const char* to_string(SteeringKind kind) noexcept {
  switch (kind) {
    case SteeringKind::single_queue: return "single-queue";
    case SteeringKind::rte_flow: return "rte-flow";
    case SteeringKind::rss_predicted: return "rss-predicted";
    case SteeringKind::unknown: return "unknown";
  }
  return "unknown";
}

SteeringInEffect steering_in_effect(const Port& port, const FlowSteering* rules) {
  if (port.rx_queues() == 1) return {SteeringKind::single_queue, "one RX queue"};
  if (rules != nullptr && rules->active()) return {SteeringKind::rte_flow, rules->reason()};
  auto rss = port.steering();
  if (rss) {
    return {SteeringKind::rss_predicted,
            "Toeplitz with the port's key over a " + std::to_string(rss->reta().size()) +
                "-entry redirection table"};
  }
  std::string detail = rss.error().message;
  if (rules != nullptr) detail += "; rte_flow: " + rules->reason();
  return {SteeringKind::unknown, detail};
}

}  // namespace magline::dpdk
