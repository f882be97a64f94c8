// How the generator reaches the forwarder under test: the two rings of Magline's net_ring port
// (in process), or an ethdev port of its own (net_memif to another process). One queue each
// way, used by the main lcore only; a branch per burst, never per frame.
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdint>

namespace magline::bench {

class Link {
 public:
  static Link rings(rte_ring* to, rte_ring* from) noexcept {
    Link l;
    l.to_ = to;
    l.from_ = from;
    return l;
  }
  static Link port(uint16_t id) noexcept {
    Link l;
    l.port_ = id;
    l.is_port_ = true;
    return l;
  }

  bool is_port() const noexcept { return is_port_; }

  // Frames accepted (the first `return` of `m`); the caller keeps the rest.
  uint32_t send(rte_mbuf** m, uint32_t n) noexcept {
    if (is_port_) return rte_eth_tx_burst(port_, 0, m, uint16_t(n));
    return rte_ring_enqueue_burst(to_, reinterpret_cast<void**>(m), n, nullptr);
  }
  uint32_t receive(rte_mbuf** m, uint32_t n) noexcept {
    if (is_port_) return rte_eth_rx_burst(port_, 0, m, uint16_t(n));
    return rte_ring_dequeue_burst(from_, reinterpret_cast<void**>(m), n, nullptr);
  }
  // Frames that would fit now: exact for a ring; a port does not tell, so a burst is tried and
  // what it refuses is counted as backpressure.
  uint32_t room() const noexcept { return is_port_ ? 0xffffffffu : rte_ring_free_count(to_); }
  // Frames sent and not yet taken by the forwarder (a ring's count; a port does not tell: 0).
  uint32_t queued() const noexcept { return is_port_ ? 0 : rte_ring_count(to_); }

 private:
  rte_ring* to_ = nullptr;
  rte_ring* from_ = nullptr;
  uint16_t port_ = 0;
  bool is_port_ = false;
};

}  // namespace magline::bench
