// Internet checksums (RFC 1071), incremental updates (RFC 1624) and SCTP's CRC32c (RFC 9260
// appendix A). Checksum values are passed as host-order integers holding the 16-bit field as it
// reads in network order (load_be16 of the field). All functions are noexcept and allocation free.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/addr.hpp"

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
uint16_t l4_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto, const uint8_t* l4,
                     size_t l4_len, size_t csum_field_off) noexcept;

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Returns the updated checksum after the 16-bit words
// `old_words` were replaced by `new_words` (`n` bytes, even).
uint16_t csum_replace(uint16_t csum, const uint8_t* old_words, const uint8_t* new_words,
                      size_t n) noexcept;
uint16_t csum_replace16(uint16_t csum, uint16_t old_word, uint16_t new_word) noexcept;

// CRC32c (Castagnoli), as SCTP uses it: returns the value to store, in host order, for
// store_le32 into the checksum field (SCTP transmits the CRC least significant byte first).
uint32_t crc32c(const uint8_t* p, size_t n) noexcept;

}  // namespace magline::dp
