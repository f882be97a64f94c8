// mbufs <-> dp::Packet, and the burst helpers the workers call per packet.
//
// A dp::Packet views the first segment of an mbuf: data = rte_pktmbuf_mtod, len = data_len of
// that segment, headroom = rte_pktmbuf_headroom (data_off), handle = the mbuf, chained = more
// segments follow. The forwarding code changes bytes in place, may move `data` into the headroom
// (prepend) or past the start of the frame (strip a header), `headroom` moving with it, and may
// shorten `len`; to_mbuf() applies that to the mbuf before TX: data_off = headroom, data_len =
// len, and pkt_len changed by the same amount as data_len. In a multi-segment mbuf only the
// first segment changes, which is right for header rewrites (what the forwarding code does) and
// would cut bytes out of the middle if it trimmed a tail.
//
// Threads: a worker calls these only for the queues it owns (RX/TX queue i of each port; DPDK
// queues are not thread-safe). No allocation, locks, logging or syscalls: everything is inline
// and bounded by the burst size.
#pragma once

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "dataplane/packet.hpp"

namespace magline::dpdk {

// The largest burst the helpers handle in one call (their scratch arrays live on the stack).
inline constexpr uint16_t kMaxBurst = dp::kMaxBurst;

inline dp::Packet to_packet(rte_mbuf* m, uint16_t port) noexcept {
  dp::Packet p;
  p.handle = m;
  p.data = rte_pktmbuf_mtod(m, uint8_t*);
  p.len = m->data_len;
  p.headroom = rte_pktmbuf_headroom(m);
  p.port = port;
  p.chained = m->nb_segs > 1;
  return p;
}

// Writes the packet's data/len back into its mbuf and returns the mbuf. Idempotent.
// Precondition: data lies within the mbuf's buffer, headroom bytes from its start, and data + len
// within its end (dp::prepend keeps the first two; the forwarding code only shortens len).
// A frame in one segment is written back with stores alone: by the time a burst is sent, the
// mbuf headers' line has often left the L1 cache (the burst's forwarding went through many
// lines), and reading data_len and buf_addr back here stalled the transmit loop
// (magline-dpbench's copy+macswap: 131 -> 115 cycles a frame on a Zen 3, docs/performance.md).
inline rte_mbuf* to_mbuf(const dp::Packet& p) noexcept {
  auto* m = static_cast<rte_mbuf*>(p.handle);
  assert(p.data == static_cast<const uint8_t*>(m->buf_addr) + p.headroom);
  if (p.chained) {
    m->pkt_len = uint32_t(int64_t(m->pkt_len) + int32_t(p.len) - int32_t(m->data_len));
  } else {
    m->pkt_len = p.len;
  }
  m->data_off = p.headroom;
  m->data_len = p.len;
  return m;
}

// Receives up to min(n, kMaxBurst) packets from (port, queue) into `out`, each with
// Packet::port = `tag` (the port's number where the caller numbers ports its own way). Returns
// the count.
inline uint16_t rx_burst(uint16_t port, uint16_t queue, dp::Packet* out, uint16_t n,
                         uint16_t tag) noexcept {
  rte_mbuf* mbufs[kMaxBurst];
  const uint16_t got = rte_eth_rx_burst(port, queue, mbufs, std::min(n, kMaxBurst));
  for (uint16_t i = 0; i < got; ++i) out[i] = to_packet(mbufs[i], tag);
  return got;
}

inline uint16_t rx_burst(uint16_t port, uint16_t queue, dp::Packet* out, uint16_t n) noexcept {
  return rx_burst(port, queue, out, n, port);
}

// Transmits up to min(n, kMaxBurst) packets on (port, queue). Returns how many the device took
// (it owns those now); the caller still owns pkts[sent..n) and retries or frees them.
inline uint16_t tx_burst(uint16_t port, uint16_t queue, const dp::Packet* pkts,
                         uint16_t n) noexcept {
  rte_mbuf* mbufs[kMaxBurst];
  n = std::min(n, kMaxBurst);
  for (uint16_t i = 0; i < n; ++i) mbufs[i] = to_mbuf(pkts[i]);
  return rte_eth_tx_burst(port, queue, mbufs, n);
}

// Returns packets' mbufs (all segments) to their pools.
inline void free_packets(const dp::Packet* pkts, uint16_t n) noexcept {
  rte_mbuf* mbufs[kMaxBurst];
  while (n > 0) {
    const uint16_t k = std::min(n, kMaxBurst);
    for (uint16_t i = 0; i < k; ++i) mbufs[i] = static_cast<rte_mbuf*>(pkts[i].handle);
    rte_pktmbuf_free_bulk(mbufs, k);
    pkts += k;
    n = uint16_t(n - k);
  }
}

inline void free_packet(const dp::Packet& p) noexcept {
  rte_pktmbuf_free(static_cast<rte_mbuf*>(p.handle));
}

// The NIC's RSS hash of a received packet, if it delivered one (RTE_MBUF_F_RX_RSS_HASH).
inline bool rx_rss_hash(const dp::Packet& p, uint32_t* hash) noexcept {
  const auto* m = static_cast<const rte_mbuf*>(p.handle);
  if ((m->ol_flags & RTE_MBUF_F_RX_RSS_HASH) == 0) return false;
  *hash = m->hash.rss;
  return true;
}

}  // namespace magline::dpdk
