// Full-NAT's source addresses and ports, for one worker: which of a port's addresses a new
// connection may use, which source port it gets, and whether a port is free.
//
// A connection's source port must bring its replies back to this worker (Steering: predicted
// RSS, or the rte_flow port partition), must not be another open connection's (no reply entry
// at that tuple), and must not be a frontend's (a NodePort on the same address). Ports are per
// backend and per source address: each source address adds 64,512 connections to every backend.
// The search starts at a point the connection's hash gives and moves on port after port, each a
// flow-table lookup, bounded (kMaxSnatPortChecks): a nearly exhausted range refuses connections
// rather than stall the worker.
//
// Contract: per worker, its thread only; per-packet members are noexcept and allocate nothing.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/hash.hpp"
#include "dataplane/node.hpp"
#include "dataplane/service.hpp"
#include "dataplane/steering.hpp"

namespace magline::dp {

// Linear probing needs about 13 probes on average at 80% of a range taken and 50 at 90%, so the
// bound refuses connections only beyond about 90%.
inline constexpr uint32_t kMaxSnatPortChecks = 64;
// A port may have several addresses of a family; full-NAT uses up to this many of them as source
// addresses. A connection's search spreads kMaxSnatPortChecks over them (at least
// kMinSnatPortChecks each), so a SYN's work stays bounded however many there are.
inline constexpr size_t kMaxSnatAddresses = 8;
inline constexpr uint32_t kMinSnatPortChecks = 16;

class SnatAllocator {
 public:
  // `flows` and `frontends` (the worker's) outlive the allocator; it only reads them.
  SnatAllocator(const Node& node, const Steering& steering, uint16_t worker, uint16_t lo,
                uint16_t hi, FlowTable& flows, const FrontendMap& frontends);

  // Source address number `index` on `port` for `family` (ForwardFlow::snat_addr), or nullptr.
  const IfAddr* address(uint16_t port, Family family, uint8_t index) const noexcept {
    if (port >= ports_) return nullptr;
    const Addrs& a = addrs_[port][family == Family::v6];
    return index < a.n ? a.addr[index] : nullptr;
  }

  // The address and port a new connection through `hop` most likely gets, ahead of choose()
  // (so that the reply entry's bucket can be prefetched): the address its hash gives, and the
  // first port from where its hash starts whose replies come to this worker, free or not. Fills
  // reply.dst and reply.dport; false when the port has no address of the family.
  bool foresee(const NextHop& hop, FlowKey& reply, uint64_t flow_hash) const noexcept;

  enum class Outcome : uint8_t { foreseen, searched, no_address, exhausted };
  // Chooses the connection's source: what foresee() gave when free (`foreseen_hash` is that
  // reply key's hash, 0 when nothing was foreseen), else a search from that address over the
  // others in turn. Fills reply.dst and reply.dport and the address's number in `index`.
  Outcome choose(const NextHop& hop, FlowKey& reply, uint64_t flow_hash, uint16_t foreseen_port,
                 uint64_t foreseen_hash, uint64_t now_ms, uint8_t& index) noexcept;

  // A frontend starts or stops listening on `port` (any address, any protocol).
  void frontend_added(uint16_t port) noexcept {
    if (uses_[port]++ == 0) used_[port >> 6] |= uint64_t(1) << (port & 63);
  }
  void frontend_removed(uint16_t port) noexcept {
    if (--uses_[port] == 0) used_[port >> 6] &= ~(uint64_t(1) << (port & 63));
  }

 private:
  // A port's source addresses of one family.
  struct Addrs {
    std::array<const IfAddr*, kMaxSnatAddresses> addr{};
    std::array<IpPrefix, kMaxSnatAddresses> subnet{};
    uint8_t n = 0;
  };

  // The addresses (bit i: number i) a connection through `hop` may use: those whose subnet
  // holds the hop (the backend, or its gateway), which reaches them directly; the first address
  // when none does; none when the port has none of the family.
  uint8_t choices(const NextHop& hop, Family family) const noexcept;
  // Choice number `k` (0 <= k < popcount(choices)): connections start at the one their hash
  // gives and move on to the next when that one's ports are taken.
  static uint8_t nth_choice(uint8_t choices, unsigned k) noexcept {
    for (; k > 0; --k) choices &= uint8_t(choices - 1);
    return uint8_t(__builtin_ctz(choices));
  }
  static unsigned first_choice(uint64_t flow_hash, unsigned count) noexcept {
    return reduce32(uint32_t(flow_hash >> 16), count);
  }
  // Where a connection's search for a port starts: spread over the range by its hash.
  uint16_t first_port(uint64_t flow_hash) const noexcept {
    const uint32_t span = uint32_t(hi_ - lo_) + 1;
    return uint16_t(lo_ + reduce32(uint32_t(flow_hash >> 32), span));
  }
  // No open connection's replies come to reply.dport (`hash` is reply's), and no frontend
  // listens on it. A live entry with the reply key's signature counts as the key's
  // (FlowTable::may_hold()): the entry's line is not read (on a port in use, a miss to memory
  // on one new connection in 17 of a million-connection table), and a free port is passed over
  // a few times in 10^5.
  bool port_free(const FlowKey& reply, uint64_t hash, uint64_t now_ms) noexcept;
  std::optional<uint16_t> search(const FlowKey& reply, uint16_t port, uint64_t flow_hash,
                                 uint32_t max_checks, uint64_t now_ms) noexcept;

  const Steering& steering_;
  uint16_t worker_;
  uint16_t lo_;
  uint16_t hi_;
  FlowTable& flows_;
  const FrontendMap& frontends_;
  std::vector<std::array<Addrs, 2>> addrs_;  // per port: IPv4, IPv6
  size_t ports_ = 0;  // addrs_.size(), kept: the size of a vector of these is a division
  // Ports some frontend listens on: a source port that is not among them cannot collide with a
  // frontend, without a frontend lookup (a likely cache miss) per candidate. Counts per port,
  // and a bit per port set while its count is not zero.
  std::unique_ptr<uint32_t[]> uses_;
  std::array<uint64_t, 1024> used_{};
};

}  // namespace magline::dp
