#include "dataplane/icmp_error.hpp"

#include <cassert>
#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

namespace {

size_t addr_len(Family f) noexcept { return f == Family::v4 ? 4 : 16; }
size_t src_off(Family f) noexcept { return f == Family::v4 ? 12 : 8; }
size_t dst_off(Family f) noexcept { return f == Family::v4 ? 16 : 24; }

// The quoted transport checksum, when the quote holds it: TCP's or UDP's. SCTP's CRC32c
// covers the whole packet, which a quote never holds: left alone.
int quoted_l4_csum_off(uint8_t proto) noexcept {
  if (proto == kProtoTcp) return int(kTcpCsumOff);
  if (proto == kProtoUdp) return int(kUdpCsumOff);
  return -1;
}

}  // namespace

DropReason rewrite_icmp_error(std::span<uint8_t> frame, const Parsed& p, const IpAddr& outer_src,
                              const IpAddr& outer_dst, const FlowKey& quote) noexcept {
  assert(p.icmp_error && (p.l3 == L3::ipv4 || p.l3 == L3::ipv6));
  if (p.ttl <= 1) return DropReason::ttl_exceeded;
  uint8_t* f = frame.data();
  const Family family = p.key.family;
  const size_t alen = addr_len(family);
  const IcmpInner& in = p.inner;

  // The quote: addresses, ports, and the transport checksum by the same differences (its
  // pseudo-header holds the addresses). Then its IPv4 header checksum, recomputed.
  uint8_t* qip = f + in.l3_off;
  uint32_t diff = csum_diff(0, qip + src_off(family), quote.src.data(), alen);
  diff = csum_diff(diff, qip + dst_off(family), quote.dst.data(), alen);
  std::memcpy(qip + src_off(family), quote.src.data(), alen);
  std::memcpy(qip + dst_off(family), quote.dst.data(), alen);
  if (in.has_ports) {
    uint8_t* ports = f + in.l4_off;
    uint8_t to[kPortsLen];
    store_be16(to, quote.sport);
    store_be16(to + 2, quote.dport);
    diff = csum_diff(diff, ports, to, kPortsLen);
    std::memcpy(ports, to, kPortsLen);
    const int off = quoted_l4_csum_off(quote.proto);
    if (off >= 0 && size_t(in.l4_off) + size_t(off) + 2 <= p.l3_end) {
      uint8_t* csum = f + in.l4_off + off;
      const uint16_t old = load_be16(csum);
      if (!(quote.proto == kProtoUdp && old == 0)) {
        const uint16_t updated = csum_apply(old, diff);
        store_be16(csum, quote.proto == kProtoUdp && updated == 0 ? 0xffff : updated);
      }
    }
  }
  if (family == Family::v4) {
    const size_t hlen = size_t(qip[0] & 0x0f) * 4;  // the parser checked it is quoted whole
    std::memset(qip + 10, 0, 2);
    store_be16(qip + 10, ipv4_header_checksum(qip, hlen));
  }

  // The outer header.
  uint8_t* ip = f + p.l3_off;
  std::memcpy(ip + src_off(family), outer_src.bytes.data(), alen);
  std::memcpy(ip + dst_off(family), outer_dst.bytes.data(), alen);
  if (family == Family::v4) {
    --ip[8];
    const size_t hlen = size_t(ip[0] & 0x0f) * 4;
    std::memset(ip + 10, 0, 2);
    store_be16(ip + 10, ipv4_header_checksum(ip, hlen));
  } else {
    --ip[7];
  }

  // The ICMP checksum over the whole message (at most a few hundred bytes: errors are rare).
  uint8_t* icmp = f + p.l4_off;
  const size_t len = size_t(p.l3_end - p.l4_off);
  std::memset(icmp + kIcmpCsumOff, 0, 2);
  const uint16_t csum =
      family == Family::v4
          ? csum_fold(csum_add(0, icmp, len))
          : l4_checksum(outer_src, outer_dst, kProtoIcmpv6, icmp, len, kIcmpCsumOff);
  store_be16(icmp + kIcmpCsumOff, csum);
  return DropReason::none;
}

}  // namespace magline::dp
