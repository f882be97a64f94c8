#include "dataplane/rewrite.hpp"

#include <cassert>
#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"

namespace magline::dp {

namespace {

constexpr size_t kTcpCsumOff = 16;
constexpr size_t kUdpCsumOff = 6;
constexpr size_t kIcmpCsumOff = 2;
constexpr size_t kSctpCsumOff = 8;

bool has_ports(uint8_t proto) noexcept {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp;
}

// Replaces the `N` address bytes at `field` by `to` and returns the checksum difference, which the
// IPv4 header and every pseudo-header checksum share. `N` is a constant so that the compare and
// the copy compile to a few loads and stores instead of library calls.
template <size_t N>
uint32_t replace_addr(uint8_t* field, const uint8_t* to, uint32_t diff) noexcept {
  if (std::memcmp(field, to, N) == 0) return diff;
  diff = csum_diff(diff, field, to, N);
  std::memcpy(field, to, N);
  return diff;
}

void update_csum(uint8_t* field, uint32_t diff) noexcept {
  store_be16(field, csum_apply(load_be16(field), diff));
}

// RFC 768: a UDP checksum of 0 means the sender computed none (allowed for IPv4; for IPv6 only
// for tunnels, RFC 6936), so it stays 0; a computed 0 is sent as 0xffff.
void update_udp_csum(uint8_t* field, uint32_t diff) noexcept {
  const uint16_t csum = load_be16(field);
  if (csum == 0) return;
  const uint16_t updated = csum_apply(csum, diff);
  store_be16(field, updated == 0 ? 0xffff : updated);
}

// L4 ports and checksum. `addr_diff` is the pseudo-header change; ICMPv4 and SCTP have no
// pseudo-header. SCTP's CRC32c is not linear in the same way: it is recomputed (RFC 9260 6.8).
void rewrite_l4(uint8_t* f, const Parsed& p, const FlowKey& to, uint32_t addr_diff,
                bool ports_change) noexcept {
  uint8_t* l4 = f + p.l4_off;
  uint32_t diff = addr_diff;
  if (ports_change) {
    diff += uint16_t(~load_be16(l4)) + uint32_t(to.sport);
    diff += uint16_t(~load_be16(l4 + 2)) + uint32_t(to.dport);
    store_be16(l4, to.sport);
    store_be16(l4 + 2, to.dport);
  }
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
void rewrite_ipv4(uint8_t* f, const Parsed& p, const FlowKey& to, bool ports_change) noexcept {
  uint8_t* ip = f + p.l3_off;
  uint32_t addr_diff = replace_addr<4>(ip + 12, to.src.data(), 0);
  addr_diff = replace_addr<4>(ip + 16, to.dst.data(), addr_diff);
  // TTL and protocol form one 16-bit word; decrementing it as a word, rather than storing a byte
  // and reading the word back, avoids a store-forwarding stall.
  const uint16_t ttl_word = load_be16(ip + 8);
  const uint16_t new_ttl_word = uint16_t(ttl_word - 0x100);
  store_be16(ip + 8, new_ttl_word);
  update_csum(ip + 10, addr_diff + uint16_t(~ttl_word) + new_ttl_word);
  if (p.has_l4) rewrite_l4(f, p, to, addr_diff, ports_change);
}

// IPv6 has no header checksum; the hop limit is not in the pseudo-header (RFC 8200 8.1).
void rewrite_ipv6(uint8_t* f, const Parsed& p, const FlowKey& to, bool ports_change) noexcept {
  uint8_t* ip = f + p.l3_off;
  --ip[7];
  uint32_t addr_diff = replace_addr<16>(ip + 8, to.src.data(), 0);
  addr_diff = replace_addr<16>(ip + 24, to.dst.data(), addr_diff);
  if (p.has_l4) rewrite_l4(f, p, to, addr_diff, ports_change);
}

}  // namespace

DropReason rewrite_tuple(std::span<uint8_t> frame, const Parsed& p, const FlowKey& to) noexcept {
  assert(p.l3 == L3::ipv4 || p.l3 == L3::ipv6);
  assert(to.family == p.key.family && to.proto == p.key.proto);
  assert(frame.size() >= p.l3_end);
  if (p.ttl <= 1) return DropReason::ttl_exceeded;
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
