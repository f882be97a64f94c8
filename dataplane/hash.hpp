// The hashes Magline relies on. They are fixed and documented (docs/architecture.md): a Maglev
// table and the backend a flow maps to must be the same on every edge node and after every
// restart, so nothing here may depend on the machine, the build or the run. Keys are read as
// little-endian words; the mixing step is the 64x64->128 multiply-fold used by wyhash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/bytes.hpp"

namespace magline::dp {

inline constexpr uint64_t kHashP0 = 0xa0761d6478bd642full;
inline constexpr uint64_t kHashP1 = 0xe7037ed1a0b428dbull;
inline constexpr uint64_t kHashP2 = 0x8ebc6af09c88c6e3ull;
inline constexpr uint64_t kHashP3 = 0x589965cc75374cc3ull;

__extension__ using uint128 = unsigned __int128;  // g++ and clang on 64-bit targets

// Multiply two words into 128 bits and fold the halves together.
inline uint64_t hash_mum(uint64_t a, uint64_t b) noexcept {
  const uint128 r = static_cast<uint128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// MurmurHash3's 64-bit finaliser: full avalanche, so that keys differing in a few low bits (one
// port, say) spread over every bit of the result, which bucket and slot choices rely on.
inline uint64_t hash_fmix(uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

// Hash of an arbitrary byte string (backend identities, names). Not for the per-packet path.
inline uint64_t hash_bytes(const uint8_t* p, size_t n, uint64_t seed) noexcept {
  uint64_t h = seed ^ kHashP0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    h = hash_mum(load_le64(p + i) ^ kHashP1, load_le64(p + i + 8) ^ h);
  }
  uint8_t tail[16] = {};
  std::memcpy(tail, p + i, n - i);
  h = hash_mum(load_le64(tail) ^ kHashP1, load_le64(tail + 8) ^ h);
  return hash_fmix(hash_mum(h ^ kHashP2, uint64_t(n) ^ kHashP3));
}

// Maps a 32-bit hash onto [0, n) with a multiply and a shift (Lemire, "Fast random integer
// generation in an interval", 2019): no division on the per-packet path, any n, not only powers
// of two. Uses the high bits of `h`, so callers pass well-mixed bits.
inline uint32_t reduce32(uint32_t h, uint32_t n) noexcept {
  return static_cast<uint32_t>((static_cast<uint64_t>(h) * n) >> 32);
}

}  // namespace magline::dp
