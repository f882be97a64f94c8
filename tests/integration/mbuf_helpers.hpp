// Small helpers for the integration tests: frames into mbufs and back.
#pragma once

#include <rte_mbuf.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/packet.hpp"

namespace magline::test {

// An mbuf from `pool` holding `frame` (single segment), or null if the pool is empty.
inline rte_mbuf* mbuf_with(rte_mempool* pool, const std::vector<uint8_t>& frame) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool);
  if (m == nullptr) return nullptr;
  char* p = rte_pktmbuf_append(m, uint16_t(frame.size()));
  if (p == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memcpy(p, frame.data(), frame.size());
  return m;
}

inline std::vector<uint8_t> bytes_of(const dp::Packet& p) {
  return {p.data, p.data + p.len};
}

}  // namespace magline::test
