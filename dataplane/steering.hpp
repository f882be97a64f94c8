// Which worker the NIC delivers a tuple to, and full-NAT source ports whose replies come back to
// the worker that chose them: the one interface the forwarder asks, and its implementations.
//
// - SingleWorker: everything reaches one worker (one RX queue; tests of several workers where
//   every connection is known to reach the same one).
// - RssWorkers: the NIC spreads frames by RSS, predicted in software (rss.hpp): a full-NAT
//   connection searches for a source port whose reply tuple hashes to its own queue.
// - With rte_flow rules installed on a port (dataplane/dpdk/flow_steer.hpp), the NIC sends
//   replies to SNAT address A and destination port p to queue (p & (W-1)): worker i owns the
//   ports congruent to i, and a source port is chosen among them with no hash at all. RssWorkers
//   takes a per-port "rules installed" flag; everything the rules do not cover (other
//   addresses, SCTP) still goes by RSS.
//
// Everything here is immutable after construction: any worker may call the const members.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/flow_key.hpp"
#include "dataplane/rss.hpp"

namespace magline::dp {

class Steering {
 public:
  virtual ~Steering() = default;
  // The worker the NIC delivers frames with key `k` arriving on `port` to.
  virtual uint16_t worker_of(const FlowKey& k, uint16_t port) const noexcept = 0;
  // A destination port for `reply` (a reply tuple whose dport is to be chosen), in [lo, hi],
  // tried from `first` on, such that the reply reaches `worker` on `port` and `usable(p)` holds;
  // nullopt after `usable` said no `max_checks` times.
  virtual std::optional<uint16_t> find_reply_port(const FlowKey& reply, uint16_t port,
                                                  uint16_t worker, uint16_t first, uint16_t lo,
                                                  uint16_t hi,
                                                  bool (*usable)(void*, uint16_t),
                                                  void* ctx, uint32_t max_checks) const noexcept = 0;
};

// Everything arrives at one worker: a single queue (worker 0), or, in tests and benchmarks of
// several workers, the one every connection is known to reach.
class SingleWorker final : public Steering {
 public:
  explicit SingleWorker(uint16_t worker = 0) : worker_(worker) {}
  uint16_t worker_of(const FlowKey&, uint16_t) const noexcept override { return worker_; }
  std::optional<uint16_t> find_reply_port(const FlowKey& reply, uint16_t port, uint16_t worker,
                                          uint16_t first, uint16_t lo, uint16_t hi,
                                          bool (*usable)(void*, uint16_t), void* ctx,
                                          uint32_t max_checks) const noexcept override;

 private:
  uint16_t worker_;
};

// One rule of the SNAT port partition: frames to `addr`, protocol `proto`, whose destination
// port p has (p & mask) == value go to RX queue `queue`. The DPDK adapter turns each into an
// rte_flow rule (dataplane/dpdk/flow_steer.hpp).
struct PartitionRule {
  IpAddr addr;
  uint8_t proto = 0;
  uint16_t value = 0;
  uint16_t mask = 0;
  uint16_t queue = 0;
};

// The rules that give worker i the SNAT ports p with (p & (workers - 1)) == i, for every address
// and for TCP and UDP (as asked): workers rules per address and protocol, covering the whole port
// range. None when `workers` is not a power of two (no port mask partitions the range then).
std::vector<PartitionRule> partition_rules(const std::vector<IpAddr>& addrs, uint16_t workers,
                                           bool tcp = true, bool udp = true);

// One port's return-traffic steering for RssWorkers.
struct PortSteering {
  RssSteering rss = RssSteering::single_queue();
  // rte_flow rules partition the SNAT ports of these addresses by their low bits (TCP and UDP):
  // empty when the device refused them (or none were asked for).
  std::vector<IpAddr> partitioned;
  uint16_t workers = 1;  // a power of two when `partitioned` is not empty
};

// Worker i owns RX queue i of every port.
class RssWorkers final : public Steering {
 public:
  explicit RssWorkers(std::vector<PortSteering> ports) : ports_(std::move(ports)) {}
  uint16_t worker_of(const FlowKey& k, uint16_t port) const noexcept override;
  std::optional<uint16_t> find_reply_port(const FlowKey& reply, uint16_t port, uint16_t worker,
                                          uint16_t first, uint16_t lo, uint16_t hi,
                                          bool (*usable)(void*, uint16_t), void* ctx,
                                          uint32_t max_checks) const noexcept override;

  // The worker that owns SNAT port `p` when `workers` (a power of two) partition the range.
  static uint16_t partition_owner(uint16_t p, uint16_t workers) noexcept {
    return uint16_t(p & (workers - 1));
  }

 private:
  // Whether the port's rules decide where `k` goes (its destination is a partitioned address).
  bool by_rules(const FlowKey& k, uint16_t port) const noexcept;

  std::vector<PortSteering> ports_;
};

}  // namespace magline::dp
