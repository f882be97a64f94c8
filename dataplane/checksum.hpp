// Internet checksums (RFC 1071), incremental updates (RFC 1624) and SCTP's CRC32c (RFC 9260
// appendix A). Checksum values are passed as host-order integers holding the 16-bit field as it
// reads in network order (load_be16 of the field). All functions are noexcept and allocation free.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "dataplane/addr.hpp"
#include "dataplane/bytes.hpp"

namespace magline::dp {

// Adds `n` bytes, read as big-endian 16-bit words (an odd last byte is padded with zero), to a
// 32-bit one's-complement accumulator. The accumulator may be carried across calls as long as
// every call but the last covers an even number of bytes.
uint32_t csum_add(uint32_t sum, const uint8_t* p, size_t n) noexcept;

// Folds an accumulator to 16 bits and complements it: the value a checksum field holds.
uint16_t csum_fold(uint32_t sum) noexcept;

// The IPv4 header checksum of `ihl_bytes` bytes, computed as if the checksum field were zero.
uint16_t ipv4_header_checksum(const uint8_t* hdr, size_t ihl_bytes) noexcept;

// Accumulator for the TCP/UDP/ICMPv6 pseudo-header (RFC 793, RFC 768, RFC 8200 8.1).
uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                           uint32_t l4_len) noexcept;

// The full L4 checksum over `l4_len` bytes at `l4` with the pseudo-header, computed as if the
// checksum field were zero. For ICMP over IPv4 (no pseudo-header) use csum_fold(csum_add(...)).
// UDP callers map a result of 0 to 0xffff (RFC 768: 0 means "no checksum").
uint16_t l4_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto, const uint8_t* l4,
                     size_t l4_len, size_t csum_field_off) noexcept;

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Returns the updated checksum after the 16-bit words
// `old_words` were replaced by `new_words` (`n` bytes, even).
uint16_t csum_replace(uint16_t csum, const uint8_t* old_words, const uint8_t* new_words,
                      size_t n) noexcept;
uint16_t csum_replace16(uint16_t csum, uint16_t old_word, uint16_t new_word) noexcept;

namespace detail {

// End-around carry down to 16 bits, straight-line. A non-zero sum never folds to 0, which is what
// makes RFC 1624 eqn. 3 agree exactly with a full recomputation. The halves of the 64-bit sum are
// added with their carry (an add and an add-with-carry), then the 32-bit sum to its rotation: the
// upper half of that is the sum of the two 16-bit halves with its carry (eight instructions
// where four shift-and-add rounds took twelve).
inline uint32_t fold16(uint64_t acc) noexcept {
  const uint32_t lo = uint32_t(acc);
  uint32_t s = lo + uint32_t(acc >> 32);
  s += s < lo;                        // the carry out, back in: no overflow (s <= 2^32 - 2)
  return (s + std::rotr(s, 16)) >> 16;  // upper half: hi + lo + carry(lo + hi), mod 2^16
}

}  // namespace detail

// The same update split in two, for a rewrite that changes fields covered by several checksums
// (an address sits in the IPv4 header and in the TCP/UDP pseudo-header): csum_diff accumulates
// ~m + m' for `n` bytes (even) once, csum_apply adds an accumulated difference to a checksum.
// Inline: they run on every rewritten packet.
inline uint32_t csum_diff(uint32_t acc, const uint8_t* old_words, const uint8_t* new_words,
                          size_t n) noexcept {
  uint64_t a = acc;
  for (size_t i = 0; i + 1 < n; i += 2) {
    a += uint16_t(~load_be16(old_words + i));
    a += load_be16(new_words + i);
  }
  return detail::fold16(a);
}

inline uint16_t csum_apply(uint16_t csum, uint32_t diff) noexcept {
  return uint16_t(~detail::fold16(uint64_t(uint16_t(~csum)) + diff));
}

// CRC32c (Castagnoli), as SCTP uses it: returns the value to store with store_crc32c (SCTP
// transmits the CRC least significant byte first). Table driven, slicing by 8.
uint32_t crc32c(const uint8_t* p, size_t n) noexcept;

inline void store_crc32c(uint8_t* field, uint32_t crc) noexcept {
  field[0] = uint8_t(crc);
  field[1] = uint8_t(crc >> 8);
  field[2] = uint8_t(crc >> 16);
  field[3] = uint8_t(crc >> 24);
}

inline uint32_t load_crc32c(const uint8_t* field) noexcept {
  return uint32_t(field[0]) | uint32_t(field[1]) << 8 | uint32_t(field[2]) << 16 |
         uint32_t(field[3]) << 24;
}

}  // namespace magline::dp
