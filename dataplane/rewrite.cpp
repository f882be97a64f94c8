#include "dataplane/rewrite.hpp"

#include <bit>
#include <cassert>
#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

namespace {

// Ones' complement sums do not depend on byte order (RFC 1071, 2(B)): the differences are
// summed over the fields as native 32-bit words and each checksum is read, updated and stored
// in the same native order, with one fold per checksum. (Byte-swapping every 16-bit word and
// folding after each field cost about a tenth of the hit path.)
uint32_t load_ne32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint16_t load_ne16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void store_ne16(uint8_t* p, uint16_t v) noexcept { std::memcpy(p, &v, sizeof v); }

// ~m + m' for the 4 bytes at `field` becoming `to` (in memory order), then the store.
uint64_t replace_word(uint8_t* field, uint32_t to) noexcept {
  const uint64_t diff = uint64_t(uint32_t(~load_ne32(field))) + to;
  std::memcpy(field, &to, sizeof to);
  return diff;
}

// Two ports as the 4 bytes they are on the wire, made in a register: written into a buffer as
// two 16-bit stores and read back as one word, they waited for the stores to reach the cache.
uint32_t ports_word(uint16_t sport, uint16_t dport) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return uint32_t(__builtin_bswap16(sport)) | uint32_t(__builtin_bswap16(dport)) << 16;
  } else {
    return uint32_t(sport) << 16 | dport;
  }
}

// ~m + m' for the `N` bytes at `field` becoming `to` (N a multiple of 4), then the copy.
template <size_t N>
uint64_t replace(uint8_t* field, const uint8_t* to) noexcept {
  uint64_t diff = 0;
  for (size_t i = 0; i < N; i += 4) {
    diff += uint32_t(~load_ne32(field + i));
    diff += load_ne32(to + i);
  }
  std::memcpy(field, to, N);
  return diff;
}

// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), with `diff` the sum of ~m + m'.
uint16_t updated(uint16_t csum, uint64_t diff) noexcept {
  return uint16_t(~detail::fold16(uint64_t(uint16_t(~csum)) + diff));
}

void update_csum(uint8_t* field, uint64_t diff) noexcept {
  store_ne16(field, updated(load_ne16(field), diff));
}

// RFC 768: a UDP checksum of 0 means the sender computed none (allowed for IPv4; for IPv6 only
// for tunnels, RFC 6936), so it stays 0; a computed 0 is sent as 0xffff.
void update_udp_csum(uint8_t* field, uint64_t diff) noexcept {
  const uint16_t csum = load_ne16(field);
  if (csum == 0) return;
  const uint16_t u = updated(csum, diff);
  store_ne16(field, u == 0 ? 0xffff : u);
}

// L4 ports and checksum. `addr_diff` is the pseudo-header change; ICMPv4 and SCTP have no
// pseudo-header. SCTP's CRC32c is not linear in the same way: it is recomputed (RFC 9260 6.8).
void rewrite_l4(uint8_t* f, const Parsed& p, const Tuple& to, uint64_t addr_diff,
                bool ports_change) noexcept {
  uint8_t* l4 = f + p.l4_off;
  uint64_t diff = addr_diff;
  static_assert(kPortsLen == 4);
  if (ports_change) diff += replace_word(l4, ports_word(to.sport, to.dport));
  switch (p.key.proto) {
    case kProtoTcp:
      update_csum(l4 + kTcpCsumOff, diff);
      break;
    case kProtoUdp:
      update_udp_csum(l4 + kUdpCsumOff, diff);
      break;
    case kProtoIcmpv6:
      if (p.key.family == Family::v6) update_csum(l4 + kIcmpCsumOff, diff);
      break;
    case kProtoSctp:
      if (ports_change) {
        std::memset(l4 + kSctpCsumOff, 0, 4);
        store_crc32c(l4 + kSctpCsumOff, crc32c(l4, size_t(p.l3_end - p.l4_off)));
      }
      break;
    default:
      break;
  }
}

// IPv4: TTL and addresses are both under the header checksum (RFC 791), updated at once.
void rewrite_ipv4(uint8_t* f, const Parsed& p, const Tuple& to, bool ports_change) noexcept {
  uint8_t* ip = f + p.l3_off;
  uint64_t addr_diff = replace<4>(ip + 12, to.src);
  addr_diff += replace<4>(ip + 16, to.dst);
  // TTL and protocol form one 16-bit word, changed in a register and stored once (a byte store
  // followed by a load of the word would stall on store forwarding).
  uint8_t ttl_word[2] = {uint8_t(ip[8] - 1), ip[9]};
  const uint64_t ttl_diff = uint16_t(~load_ne16(ip + 8)) + uint64_t(load_ne16(ttl_word));
  std::memcpy(ip + 8, ttl_word, 2);
  update_csum(ip + 10, addr_diff + ttl_diff);
  if (p.has_l4) rewrite_l4(f, p, to, addr_diff, ports_change);
}

// The common packet, IPv4 with a TCP or UDP header: the addresses (8 bytes side by side) and
// the ports (4) each read and written as one word, the TTL's share of the header checksum a
// constant. The same checksums as rewrite_ipv4() (up to the sign of a zero, which every
// receiver accepts either way, RFC 1624 3): the ports and addresses that stay add ~m + m, a
// ones' complement zero.
void rewrite_ipv4_ports(uint8_t* f, const Parsed& p, const Tuple& to) noexcept {
  uint8_t* ip = f + p.l3_off;
  uint8_t* l4 = f + p.l4_off;
  uint64_t old_addrs;
  std::memcpy(&old_addrs, ip + 12, 8);
  const uint64_t src = load_ne32(to.src);
  const uint64_t dst = load_ne32(to.dst);
  constexpr bool kLittle = std::endian::native == std::endian::little;
  const uint64_t addrs = kLittle ? src | dst << 32 : src << 32 | dst;
  const uint64_t inverse = ~old_addrs;
  const uint64_t addr_diff = (inverse & 0xffffffff) + (inverse >> 32) + src + dst;
  std::memcpy(ip + 12, &addrs, 8);
  // The TTL is above 1 (checked): the word (TTL, protocol) m becomes m minus one in the TTL's
  // byte, and ~m + m' is that byte's place value less one.
  --ip[8];
  constexpr uint64_t kTtlDiff = kLittle ? 0xfffe : 0xfeff;
  update_csum(ip + 10, addr_diff + kTtlDiff);
  const uint64_t diff = addr_diff + replace_word(l4, ports_word(to.sport, to.dport));
  if (p.key.proto == kProtoTcp) {
    update_csum(l4 + kTcpCsumOff, diff);
  } else {
    update_udp_csum(l4 + kUdpCsumOff, diff);
  }
}

// IPv6 has no header checksum; the hop limit is not in the pseudo-header (RFC 8200 8.1).
void rewrite_ipv6(uint8_t* f, const Parsed& p, const Tuple& to, bool ports_change) noexcept {
  uint8_t* ip = f + p.l3_off;
  --ip[7];
  uint64_t addr_diff = replace<16>(ip + 8, to.src);
  addr_diff += replace<16>(ip + 24, to.dst);
  if (p.has_l4) rewrite_l4(f, p, to, addr_diff, ports_change);
}

}  // namespace

DropReason rewrite_tuple(std::span<uint8_t> frame, const Parsed& p, const Tuple& to) noexcept {
  assert(p.l3 == L3::ipv4 || p.l3 == L3::ipv6);
  assert(frame.size() >= p.l3_end);
  if (p.ttl <= 1) return DropReason::ttl_exceeded;
  if (p.ipv4_tcp_udp) {
    rewrite_ipv4_ports(frame.data(), p, to);
    return DropReason::none;
  }
  const bool ports_change =
      p.has_l4 && has_ports(p.key.proto) && (to.sport != p.key.sport || to.dport != p.key.dport);
  // The CRC32c of a fragmented SCTP packet covers bytes this packet does not hold.
  if (ports_change && p.key.proto == kProtoSctp && p.is_fragment) {
    return DropReason::sctp_fragment_rewrite;
  }
  if (p.l3 == L3::ipv4) {
    rewrite_ipv4(frame.data(), p, to, ports_change);
  } else {
    rewrite_ipv6(frame.data(), p, to, ports_change);
  }
  return DropReason::none;
}

void rewrite_macs(std::span<uint8_t> frame, const uint8_t src[6], const uint8_t dst[6]) noexcept {
  assert(frame.size() >= 12);
  std::memcpy(frame.data(), dst, 6);
  std::memcpy(frame.data() + 6, src, 6);
}

}  // namespace magline::dp
