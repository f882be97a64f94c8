// The 5-tuple of a flow, in one fixed-size layout for IPv4 and IPv6.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dataplane/addr.hpp"
#include "dataplane/hash.hpp"

namespace magline::dp {

struct FlowKey {
  std::array<uint8_t, 16> src{};  // IPv4 in the first 4 bytes, the rest zero
  std::array<uint8_t, 16> dst{};
  uint16_t sport = 0;  // host byte order; 0 for protocols without ports
  uint16_t dport = 0;
  uint8_t proto = 0;  // IP protocol number
  Family family = Family::v4;
  // Zero in every key a packet gives. A stored forward entry keeps its frontend's
  // FrontendRegistry id here, so that a flow-table hit names its service without a frontend
  // lookup; same_flow() ignores it.
  uint16_t tag = 0;

  IpAddr src_addr() const noexcept { return IpAddr{src, family}; }
  IpAddr dst_addr() const noexcept { return IpAddr{dst, family}; }

  // The key of the other direction of the same conversation.
  FlowKey reversed() const noexcept {
    FlowKey r = *this;
    r.src = dst;
    r.dst = src;
    r.sport = dport;
    r.dport = sport;
    return r;
  }

  // Five word compares: a defaulted == compiles the arrays to memcmp calls, which cost more
  // than the rest of a flow-table hit.
  friend bool operator==(const FlowKey& a, const FlowKey& b) noexcept {
    uint64_t x[5], y[5];
    std::memcpy(x, &a, sizeof x);
    std::memcpy(y, &b, sizeof y);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
  }
  // The same connection: equal but for the tag. The addresses as two 16-byte compares where
  // SSE2 is (x86-64 always): 11 instructions where the five words took 25, on every lookup.
  bool same_flow(const FlowKey& o) const noexcept {
    constexpr uint64_t kNoTag = ~(uint64_t(0xffff) << 48);  // tag: bytes 38-39 of the key
#if defined(__SSE2__)
    const auto* a = reinterpret_cast<const __m128i*>(this);
    const auto* b = reinterpret_cast<const __m128i*>(&o);
    const __m128i eq = _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128(a), _mm_loadu_si128(b)),
                                     _mm_cmpeq_epi8(_mm_loadu_si128(a + 1), _mm_loadu_si128(b + 1)));
    uint64_t x, y;
    std::memcpy(&x, &sport, sizeof x);
    std::memcpy(&y, &o.sport, sizeof y);
    return _mm_movemask_epi8(eq) == 0xffff && ((x ^ y) & kNoTag) == 0;
#else
    uint64_t x[5], y[5];
    std::memcpy(x, this, sizeof x);
    std::memcpy(y, &o, sizeof y);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) |
            ((x[4] ^ y[4]) & kNoTag)) == 0;
#endif
  }
};
static_assert(offsetof(FlowKey, sport) == 32 && offsetof(FlowKey, tag) == 38);
static_assert(sizeof(FlowKey) == 40 && std::has_unique_object_representations_v<FlowKey>);

// 64-bit hashes of a flow key. hash_flow_mix is the flow table's, seeded per worker (hash
// flooding): the multiply-folds alone, the last of which spreads every input bit over the
// result, as wyhash ends. hash_flow adds MurmurHash3's finaliser; Maglev uses it with a fixed
// seed (kFlowHashSeed) so that every edge node picks the same backend for the same flow, and it
// may not change.
inline uint64_t hash_flow_mix(const FlowKey& k, uint64_t seed, uint64_t tail) noexcept {
  const uint64_t a = hash_mum(load_le64(k.src.data()) ^ seed ^ kHashP0,
                              load_le64(k.src.data() + 8) ^ kHashP1);
  const uint64_t b = hash_mum(load_le64(k.dst.data()) ^ seed ^ kHashP2,
                              load_le64(k.dst.data() + 8) ^ kHashP3);
  return hash_mum(a ^ tail ^ kHashP1, b ^ tail ^ kHashP0);
}

inline uint64_t hash_flow_mix(const FlowKey& k, uint64_t seed) noexcept {
  // The fields one by one: a key made on the stack (a reply key, a candidate source port's) is
  // written field by field, and one load of the 6 bytes would wait for every store to reach the
  // cache (store forwarding takes a load from one store only).
  const uint64_t tail = uint64_t(k.sport) | uint64_t(k.dport) << 16 | uint64_t(k.proto) << 32 |
                        uint64_t(k.family) << 40;
  return hash_flow_mix(k, seed, tail);
}

// The same hash of a key whose last 8 bytes (ports, protocol, family, tag) were stored as one
// word, as parse() stores a frame's: read back in one load, which that store forwards (14
// instructions fewer on every frame than the fields one by one). A key written otherwise gets
// the same hash, after a wait for its stores to reach the cache.
inline uint64_t hash_flow_mix_stored(const FlowKey& k, uint64_t seed) noexcept {
  if constexpr (std::endian::native != std::endian::little) return hash_flow_mix(k, seed);
  const auto* tail = reinterpret_cast<const uint8_t*>(&k) + offsetof(FlowKey, sport);
  return hash_flow_mix(k, seed, load_le64(tail) & 0xffff'ffff'ffffu);  // not the tag
}

inline uint64_t hash_flow(const FlowKey& k, uint64_t seed) noexcept {
  return hash_fmix(hash_flow_mix(k, seed));
}

// Hash of a client address alone, for session affinity (sessionAffinity: ClientIP).
inline uint64_t hash_client(const IpAddr& a, uint64_t seed) noexcept {
  const uint64_t x = hash_mum(load_le64(a.bytes.data()) ^ seed ^ kHashP0,
                              load_le64(a.bytes.data() + 8) ^ kHashP1);
  return hash_fmix(x ^ uint64_t(a.family));
}

inline constexpr uint64_t kFlowHashSeed = 0x4d61676c696e6531ull;  // "Magline1"

}  // namespace magline::dp
