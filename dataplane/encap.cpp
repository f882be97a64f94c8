#include "dataplane/encap.hpp"

#include <algorithm>
#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

namespace {

// The inner packet's DSCP and ECN: IPv4's TOS byte, IPv6's traffic class.
uint8_t traffic_class(const uint8_t* ip, bool v4) noexcept {
  return v4 ? ip[1] : uint8_t((ip[0] & 0x0f) << 4 | ip[1] >> 4);
}

void write_ipv4(uint8_t* o, const EncapHeader& h, uint8_t tc, uint8_t proto,
                uint16_t total) noexcept {
  o[0] = 0x45;
  o[1] = tc;
  store_be16(o + 2, total);
  store_be32(o + 4, 0x00004000);  // identification 0 (RFC 6864: atomic), DF
  o[8] = kEncapTtl;
  o[9] = proto;
  std::memcpy(o + 12, h.src.bytes.data(), 4);
  std::memcpy(o + 16, h.dst.bytes.data(), 4);
  // The header checksum from the values, not from the bytes just stored (reading them back
  // would stall on store forwarding).
  const uint8_t* a = h.src.bytes.data();
  const uint8_t* b = h.dst.bytes.data();
  const uint64_t sum = uint64_t(0x4500 | tc) + total + 0x4000 + (kEncapTtl << 8 | proto) +
                       load_be16(a) + load_be16(a + 2) + load_be16(b) + load_be16(b + 2);
  store_be16(o + 10, uint16_t(~detail::fold16(sum)));
}

void write_ipv6(uint8_t* o, const EncapHeader& h, uint8_t tc, uint8_t next,
                uint16_t payload) noexcept {
  const uint32_t label = (h.entropy ^ h.entropy >> 20) & 0xfffff;
  store_be32(o, 6u << 28 | uint32_t(tc) << 20 | label);
  store_be16(o + 4, payload);
  o[6] = next;
  o[7] = kEncapTtl;
  std::memcpy(o + 8, h.src.bytes.data(), 16);
  std::memcpy(o + 24, h.dst.bytes.data(), 16);
}

}  // namespace

DropReason encapsulate(Packet& pkt, const Parsed& p, const EncapHeader& h) noexcept {
  const bool inner_v4 = p.l3 == L3::ipv4;
  const bool outer_v4 = h.dst.family == Family::v4;
  const bool gue = h.mode == ForwardMode::gue;
  const uint16_t l2 = p.l3_off;
  const uint16_t inner_len = uint16_t(p.l3_end - p.l3_off);
  const uint16_t ip_len = outer_v4 ? uint16_t(kIpv4MinHeaderLen) : uint16_t(kIpv6HeaderLen);
  const uint16_t grow = encap_overhead(h.mode, h.dst.family);
  if (pkt.headroom < grow || size_t(inner_len) + grow > kMaxDatagram) {
    return DropReason::no_headroom;
  }
  pkt.len = p.l3_end;  // Ethernet padding goes
  prepend(pkt, grow);
  if (l2 == kEthHeaderLen) {
    std::memmove(pkt.data, pkt.data + grow, kEthHeaderLen);  // inlined: a constant size
  } else {
    std::memmove(pkt.data, pkt.data + grow, l2);  // VLAN tags
  }
  store_be16(pkt.data + l2 - 2, outer_v4 ? kEtherTypeIpv4 : kEtherTypeIpv6);

  uint8_t* o = pkt.data + l2;
  const uint8_t tc = traffic_class(o + grow, inner_v4);
  const uint8_t proto = gue ? kProtoUdp : inner_v4 ? kProtoIpip : kProtoIpv6;
  if (outer_v4) {
    write_ipv4(o, h, tc, proto, uint16_t(grow + inner_len));
  } else {
    write_ipv6(o, h, tc, proto, uint16_t(grow - kIpv6HeaderLen + inner_len));
  }
  if (gue) {
    uint8_t* udp = o + ip_len;
    const uint16_t udp_len = uint16_t(kUdpHeaderLen + inner_len);
    store_be16(udp, uint16_t(kGueSourcePortBase | (h.entropy & 0x3fff)));
    store_be16(udp + 2, h.gue_port);
    store_be16(udp + 4, udp_len);
    store_be16(udp + kUdpCsumOff, 0);
    if (!outer_v4) {
      const uint16_t c = l4_checksum(h.src, h.dst, kProtoUdp, udp, udp_len, kUdpCsumOff);
      store_be16(udp + kUdpCsumOff, c == 0 ? 0xffff : c);
    }
  }
  return DropReason::none;
}

IpAddr encap_source(const IpPrefix& prefix, uint32_t entropy) noexcept {
  IpAddr a = prefix.addr;
  const unsigned bits = (a.family == Family::v4 ? 32u : 128u) - prefix.len;
  // Host bits from the last byte up, at most 32 of them.
  for (unsigned i = 0, n = bits < 32 ? bits : 32; i < n; i += 8) {
    const unsigned take = n - i < 8 ? n - i : 8;
    const size_t byte = (a.family == Family::v4 ? 3 : 15) - i / 8;
    const uint8_t mask = uint8_t((1u << take) - 1);
    a.bytes[byte] = uint8_t((a.bytes[byte] & ~mask) | ((entropy >> i) & mask));
  }
  return a;
}

std::optional<TunnelMtu> tunnel_path_mtu(std::span<const uint8_t> frame, const Parsed& p,
                                         const Node& node) noexcept {
  if (!p.icmp_error) return std::nullopt;
  const bool v4 = p.key.family == Family::v4;
  if (v4 ? (p.icmp_type != kIcmpUnreachable || p.icmp_code != kIcmpFragNeeded)
         : p.icmp_type != kIcmpv6PacketTooBig) {
    return std::nullopt;
  }
  const IcmpInner& in = p.inner;
  const bool tunnel = in.key.proto == kProtoIpip || in.key.proto == kProtoIpv6 ||
                      (in.key.proto == kProtoUdp && in.has_ports &&
                       in.key.dport == node.encap.gue_port);
  if (!tunnel) return std::nullopt;
  const IpAddr src = in.key.src_addr();
  if (!node.is_local(src) && !node.encap.in_sources(src)) return std::nullopt;
  const uint8_t* icmp = frame.data() + p.l4_off;
  const uint32_t said = v4 ? load_be16(icmp + 6) : load_be32(icmp + 4);
  if (said == 0) return std::nullopt;
  const uint16_t least = in.key.family == Family::v4 ? kMinPathMtuV4 : kMinPathMtuV6;
  return TunnelMtu{in.key.dst_addr(), uint16_t(std::clamp<uint32_t>(said, least, 65535))};
}

std::optional<InnerSplit> plan_inner_split(std::span<const uint8_t> frame, const Parsed& outer,
                                           uint16_t mtu) noexcept {
  const bool gue = outer.key.proto == kProtoUdp;
  if (outer.key.proto != kProtoIpip && !gue) return std::nullopt;
  const size_t inner_off = outer.l4_off + (gue ? kUdpHeaderLen : 0);
  if (inner_off + kIpv4MinHeaderLen > outer.l3_end) return std::nullopt;
  const uint8_t* in = frame.data() + inner_off;
  if (in[0] != 0x45 || (load_be16(in + 6) & 0x4000)) return std::nullopt;  // v4, no options, DF
  const size_t total = load_be16(in + 2);
  if (total < kIpv4MinHeaderLen || inner_off + total > outer.l3_end) return std::nullopt;
  const size_t headers = inner_off - outer.l3_off + kIpv4MinHeaderLen;
  if (mtu < headers + 8) return std::nullopt;
  InnerSplit s;
  s.inner_off = uint16_t(inner_off);
  s.chunk = uint16_t((mtu - headers) & ~size_t(7));
  s.payload = uint16_t(total - kIpv4MinHeaderLen);
  s.count = uint16_t(std::max<size_t>(1, (s.payload + s.chunk - 1) / s.chunk));
  return s;
}

uint16_t write_inner_piece(std::span<const uint8_t> frame, const Parsed& outer,
                           const InnerSplit& plan, uint16_t k, uint8_t* out) noexcept {
  const uint8_t* f = frame.data();
  const size_t from = size_t(k) * plan.chunk;
  const size_t len = std::min<size_t>(plan.chunk, plan.payload - from);
  std::memcpy(out, f, plan.inner_off + kIpv4MinHeaderLen);
  std::memcpy(out + plan.inner_off + kIpv4MinHeaderLen,
              f + plan.inner_off + kIpv4MinHeaderLen + from, len);
  // The inner fragment: its length, offset and MF (the last keeps the packet's own: it may be a
  // fragment already), and its header checksum.
  uint8_t* in = out + plan.inner_off;
  const uint16_t inner_len = uint16_t(kIpv4MinHeaderLen + len);
  const uint16_t frag = load_be16(in + 6);
  const bool more = k + 1 < plan.count || (frag & 0x2000);
  store_be16(in + 2, inner_len);
  store_be16(in + 6, uint16_t((more ? 0x2000 : 0) | ((frag & 0x1fff) + from / 8)));
  store_be16(in + 10, ipv4_header_checksum(in, kIpv4MinHeaderLen));
  // The outer headers' lengths and checksums.
  uint8_t* ip = out + outer.l3_off;
  const bool v4 = outer.key.family == Family::v4;
  const uint16_t outer_len = uint16_t(plan.inner_off - outer.l3_off + inner_len);
  if (v4) {
    store_be16(ip + 2, outer_len);
    store_be16(ip + 10, ipv4_header_checksum(ip, size_t(ip[0] & 0x0f) * 4));
  } else {
    store_be16(ip + 4, uint16_t(outer_len - kIpv6HeaderLen));
  }
  if (outer.key.proto == kProtoUdp) {
    uint8_t* udp = out + outer.l4_off;
    const uint16_t udp_len = uint16_t(kUdpHeaderLen + inner_len);
    store_be16(udp + 4, udp_len);
    store_be16(udp + kUdpCsumOff, 0);  // IPv4: none, as encapsulate() sends
    if (!v4) {
      const uint16_t c = l4_checksum(outer.key.src_addr(), outer.key.dst_addr(), kProtoUdp, udp,
                                     udp_len, kUdpCsumOff);
      store_be16(udp + kUdpCsumOff, c == 0 ? 0xffff : c);
    }
  }
  return uint16_t(plan.inner_off + inner_len);
}

}  // namespace magline::dp
