#include "dataplane/parse.hpp"

#include <bit>
#include <cstddef>
#include <cstring>

#include "dataplane/bytes.hpp"

// Bounds discipline: every function below receives `off <= end <= frame size` and compares the
// space left (`end - off`, which cannot underflow) with what it is about to read.

namespace magline::dp {

namespace {

constexpr size_t kMaxFrame = 0xffff;  // Parsed offsets are 16-bit

bool is_ipv6_ext_header(uint8_t nh) noexcept {
  return nh == kIpv6HopByHop || nh == kIpv6Routing || nh == kIpv6Fragment || nh == kIpv6Ah ||
         nh == kIpv6DestOpts;
}

// RFC 792 / RFC 1122 3.2.2: the messages that quote the datagram that caused them.
bool is_icmpv4_error(uint8_t type) noexcept {
  return type == kIcmpUnreachable || type == kIcmpSourceQuench || type == kIcmpTimeExceeded ||
         type == kIcmpParameterProblem;
}
// RFC 4443 2.1: types below 128 are errors; 1-4 are the ones defined.
bool is_icmpv6_error(uint8_t type) noexcept {
  return type >= 1 && type <= 4;
}

bool is_echo(uint8_t type, Family family) noexcept {
  return family == Family::v4 ? (type == kIcmpEchoRequest || type == kIcmpEchoReply)
                              : (type == kIcmpv6EchoRequest || type == kIcmpv6EchoReply);
}

// The outcome of walking an IPv6 extension-header chain.
struct Ipv6Chain {
  uint8_t proto = 0;  // upper-layer protocol; for a non-first fragment, the fragment's
                      // next header (the rest of the chain is not in this packet)
  size_t l4_off = 0;
  size_t frag_hdr_off = 0;   // 0 if none
  size_t frag_data_off = 0;  // start of the fragmentable part, when is_fragment
  bool is_fragment = false;
  bool more_fragments = false;
  uint16_t frag_offset = 0;
  uint32_t frag_id = 0;
};

// Walks the chain that starts at `off` with next-header value `nh`, reading nothing at or past
// `end` (RFC 8200 4). At most kMaxIpv6ExtHeaders headers: the chain length is attacker-chosen.
DropReason walk_ipv6_chain(const uint8_t* f, size_t off, size_t end, uint8_t nh,
                           Ipv6Chain& c) noexcept {
  for (unsigned n = 0; is_ipv6_ext_header(nh); ++n) {
    if (n == kMaxIpv6ExtHeaders) return DropReason::ipv6_ext_chain_too_long;
    // RFC 8200 4.1: hop-by-hop options may only follow the fixed header.
    if (nh == kIpv6HopByHop && n != 0) return DropReason::ipv6_hop_by_hop_misplaced;
    if (end - off < 2) return DropReason::ipv6_ext_truncated;
    const uint8_t* h = f + off;
    size_t len = 0;
    if (nh == kIpv6Fragment) {
      len = kIpv6FragHeaderLen;
      if (end - off < len) return DropReason::ipv6_ext_truncated;
      const uint16_t word = load_be16(h + 2);
      const uint16_t frag_offset = word & 0xfff8;  // 13 bits of 8-byte units, as bytes
      const bool more = word & 1;
      // RFC 6946: offset 0 with M clear is an atomic fragment, a whole datagram.
      if (frag_offset != 0 || more || c.frag_hdr_off == 0) c.frag_hdr_off = off;
      if (frag_offset != 0 || more) {
        c.is_fragment = true;
        c.more_fragments = more;
        c.frag_offset = frag_offset;
        c.frag_id = load_be32(h + 4);
        c.frag_data_off = off + len;
      }
      if (frag_offset != 0) {
        c.proto = h[0];
        c.l4_off = off + len;
        return DropReason::none;
      }
    } else if (nh == kIpv6Ah) {
      len = (size_t(h[1]) + 2) * 4;  // RFC 4302 2.2: in 4-byte units, minus 2
    } else {
      len = (size_t(h[1]) + 1) * 8;  // RFC 8200 4.3-4.6: in 8-byte units, minus 1
    }
    if (end - off < len) return DropReason::ipv6_ext_truncated;
    // RFC 8200 4.4: with segments left, the destination address is only a waypoint; the
    // checksums cover the final one. Magline is no router of source routes.
    if (nh == kIpv6Routing && h[3] != 0) return DropReason::ipv6_routing_pending;
    nh = h[0];
    off += len;
  }
  c.proto = nh;
  c.l4_off = off;
  return DropReason::none;
}

// Resets every field a parse may leave unwritten: the scalars before `inner`, all zero when
// reset, in one clear of their bytes, and the key. `inner` and `arp` are written whole where
// they become valid (icmp_error, l3 == arp). Not `out = Parsed{}`: gcc clears the struct with
// rep stos, which costs twice the rest of a TCP/IPv4 parse.
void reset_scalars(Parsed& out) noexcept {
  static_assert(sizeof(Parsed) == 172, "a new Parsed field: reset it here");
  static_assert(offsetof(Parsed, icmp_error) < offsetof(Parsed, inner) &&
                offsetof(Parsed, inner) < offsetof(Parsed, key) && L3::none == L3{});
  std::memset(static_cast<void*>(&out), 0, offsetof(Parsed, inner));
}

void reset(Parsed& out) noexcept {
  reset_scalars(out);
  out.key = FlowKey{};
}

DropReason parse_l2(const uint8_t* f, size_t size, Parsed& out, size_t& off) noexcept {
  if (size < kEthHeaderLen) return DropReason::eth_truncated;
  uint16_t type = load_be16(f + 12);
  off = kEthHeaderLen;
  while (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
    if (out.vlan_count == kMaxVlanTags) return DropReason::vlan_too_deep;
    if (size - off < kVlanTagLen) return DropReason::vlan_truncated;
    out.vlan_tci[out.vlan_count++] = load_be16(f + off);
    type = load_be16(f + off + 2);
    off += kVlanTagLen;
  }
  out.ether_type = type;
  return DropReason::none;
}

DropReason parse_arp(const uint8_t* f, size_t off, size_t size, Parsed& out) noexcept {
  if (size - off < kArpFixedLen) return DropReason::arp_truncated;
  const uint8_t* a = f + off;
  if (load_be16(a) != 1 || load_be16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4) {
    return DropReason::arp_unsupported;
  }
  if (size - off < kArpEthIpv4Len) return DropReason::arp_truncated;
  out.l3 = L3::arp;
  out.arp.op = load_be16(a + 6);
  std::memcpy(out.arp.sender_mac, a + 8, 6);
  out.arp.sender_ip = IpAddr::v4(load_be32(a + 14));
  std::memcpy(out.arp.target_mac, a + 18, 6);
  out.arp.target_ip = IpAddr::v4(load_be32(a + 24));
  out.l3_end = out.l4_off = out.payload_off = uint16_t(off + kArpEthIpv4Len);
  return DropReason::none;
}

// Reads the IP header an ICMP error quotes (RFC 792, RFC 4443 2.4(c)). Quotes are truncated by
// design, so the quoted length fields are not checked against the quote; the quote must still
// hold the whole IP header (with IPv6 extension headers) of the outer packet's family.
DropReason parse_icmp_quote(const uint8_t* f, size_t off, size_t end, Family family,
                            IcmpInner& in) noexcept {
  const uint8_t* ip = f + off;
  in = IcmpInner{};
  in.l3_off = uint16_t(off);
  in.key.family = family;
  size_t l4_off = 0;
  bool l4_quoted = false;  // false for a quoted non-first fragment
  if (family == Family::v4) {
    if (end - off < kIpv4MinHeaderLen || ip[0] >> 4 != 4) return DropReason::icmp_inner_truncated;
    const size_t hlen = size_t(ip[0] & 0x0f) * 4;
    if (hlen < kIpv4MinHeaderLen || hlen > end - off) return DropReason::icmp_inner_truncated;
    in.key.proto = ip[9];
    std::memcpy(in.key.src.data(), ip + 12, 4);
    std::memcpy(in.key.dst.data(), ip + 16, 4);
    l4_off = off + hlen;
    l4_quoted = (load_be16(ip + 6) & 0x1fff) == 0;
  } else {
    if (end - off < kIpv6HeaderLen || ip[0] >> 4 != 6) return DropReason::icmp_inner_truncated;
    Ipv6Chain chain;
    if (walk_ipv6_chain(f, off + kIpv6HeaderLen, end, ip[6], chain) != DropReason::none) {
      return DropReason::icmp_inner_truncated;
    }
    in.key.proto = chain.proto;
    std::memcpy(in.key.src.data(), ip + 8, 16);
    std::memcpy(in.key.dst.data(), ip + 24, 16);
    l4_off = chain.l4_off;
    l4_quoted = chain.frag_offset == 0;
  }
  in.l4_off = uint16_t(l4_off);
  if (l4_quoted && has_ports(in.key.proto) && end - l4_off >= kPortsLen) {
    in.has_ports = true;
    in.key.sport = load_be16(f + l4_off);
    in.key.dport = load_be16(f + l4_off + 2);
  }
  return DropReason::none;
}

DropReason parse_icmp(const uint8_t* f, Parsed& out) noexcept {
  const size_t off = out.l4_off;
  const size_t end = out.l3_end;
  if (end - off < kIcmpHeaderLen) return DropReason::icmp_truncated;
  const uint8_t* h = f + off;
  const Family family = out.key.family;
  out.icmp_type = h[0];
  out.icmp_code = h[1];
  if (is_echo(h[0], family)) out.icmp_id = load_be16(h + 4);
  out.payload_off = uint16_t(off + kIcmpHeaderLen);
  out.icmp_error = family == Family::v4 ? is_icmpv4_error(h[0]) : is_icmpv6_error(h[0]);
  if (out.icmp_error) return parse_icmp_quote(f, off + kIcmpHeaderLen, end, family, out.inner);
  return DropReason::none;
}

// L4 bounds are the IP packet's (l3_end), not the frame's: padding is not payload. A first
// fragment must hold its whole L4 header (RFC 7112 for IPv6, RFC 1858 for IPv4).
DropReason parse_l4(const uint8_t* f, Parsed& out) noexcept {
  const size_t off = out.l4_off;
  const size_t avail = out.l3_end - off;
  const uint8_t* h = f + off;
  size_t hlen = 0;
  switch (out.key.proto) {
    case kProtoTcp:
      if (avail < kTcpMinHeaderLen) return DropReason::tcp_truncated;
      hlen = size_t(h[12] >> 4) * 4;
      if (hlen < kTcpMinHeaderLen || hlen > avail) return DropReason::tcp_bad_data_offset;
      out.tcp_flags = h[13];
      break;
    case kProtoUdp: {
      if (avail < kUdpHeaderLen) return DropReason::udp_truncated;
      const size_t udp_len = load_be16(h + 4);
      // In a first fragment the UDP length covers the whole datagram, not this packet.
      if (udp_len < kUdpHeaderLen || (udp_len > avail && !out.first_fragment)) {
        return DropReason::udp_bad_length;
      }
      hlen = kUdpHeaderLen;
      break;
    }
    case kProtoSctp:
      if (avail < kSctpCommonHeaderLen) return DropReason::sctp_truncated;
      hlen = kSctpCommonHeaderLen;
      break;
    case kProtoIcmp:
    case kProtoIcmpv6:
      // ICMP inside IPv6 or ICMPv6 inside IPv4 is nothing we can read: an unknown protocol.
      if ((out.key.proto == kProtoIcmp) != (out.key.family == Family::v4)) return DropReason::none;
      if (const DropReason r = parse_icmp(f, out); r != DropReason::none) return r;
      out.has_l4 = true;
      return DropReason::none;
    default:
      return DropReason::none;
  }
  out.key.sport = load_be16(h);
  out.key.dport = load_be16(h + 2);
  out.payload_off = uint16_t(off + hlen);
  out.has_l4 = true;
  return DropReason::none;
}

DropReason parse_ipv4(const uint8_t* f, size_t off, size_t size, Parsed& out) noexcept {
  if (size - off < kIpv4MinHeaderLen) return DropReason::ipv4_truncated;
  const uint8_t* ip = f + off;
  if (ip[0] >> 4 != 4) return DropReason::ipv4_bad_version;
  const size_t hlen = size_t(ip[0] & 0x0f) * 4;
  if (hlen < kIpv4MinHeaderLen) return DropReason::ipv4_bad_ihl;
  if (hlen > size - off) return DropReason::ipv4_ihl_beyond_packet;
  const size_t total = load_be16(ip + 2);
  // A longer frame is Ethernet padding (frames have a 60-byte minimum); a shorter one is cut.
  if (total > size - off) return DropReason::ipv4_total_len_beyond_frame;
  if (hlen > total) return DropReason::ipv4_ihl_beyond_packet;
  const uint16_t frag = load_be16(ip + 6);
  const size_t frag_offset = size_t(frag & 0x1fff) * 8;
  const bool more = frag & 0x2000;
  // (A whole datagram, offset 0, is within kMaxDatagram: `total` is 16 bits.)
  if (frag_offset != 0 && frag_offset + (total - hlen) > kMaxDatagram) {
    return DropReason::ipv4_fragment_overflow;
  }

  out.l3 = L3::ipv4;
  out.l4_off = out.payload_off = uint16_t(off + hlen);
  out.l3_end = uint16_t(off + total);
  out.ttl = ip[8];
  out.key.proto = ip[9];
  std::memcpy(out.key.src.data(), ip + 12, 4);
  std::memcpy(out.key.dst.data(), ip + 16, 4);
  if (more || frag_offset != 0) {
    out.is_fragment = true;
    out.first_fragment = frag_offset == 0;
    out.more_fragments = more;
    out.frag_offset = uint16_t(frag_offset);
    out.frag_id = load_be16(ip + 4);
    if (!out.first_fragment) return DropReason::none;
  }
  return parse_l4(f, out);
}

DropReason parse_ipv6(const uint8_t* f, size_t off, size_t size, Parsed& out) noexcept {
  if (size - off < kIpv6HeaderLen) return DropReason::ipv6_truncated;
  const uint8_t* ip = f + off;
  if (ip[0] >> 4 != 6) return DropReason::ipv6_bad_version;
  // Jumbograms (RFC 2675, payload length 0) cannot arrive over Ethernet; 0 means an empty payload.
  const size_t payload_len = load_be16(ip + 4);
  if (payload_len > size - off - kIpv6HeaderLen) return DropReason::ipv6_payload_len_beyond_frame;
  const size_t end = off + kIpv6HeaderLen + payload_len;

  Ipv6Chain chain;
  if (const DropReason r = walk_ipv6_chain(f, off + kIpv6HeaderLen, end, ip[6], chain);
      r != DropReason::none) {
    return r;
  }
  if (chain.is_fragment && chain.frag_offset + (end - chain.frag_data_off) > kMaxDatagram) {
    return DropReason::ipv6_fragment_overflow;
  }

  out.l3 = L3::ipv6;
  out.l4_off = out.payload_off = uint16_t(chain.l4_off);
  out.l3_end = uint16_t(end);
  out.ttl = ip[7];
  out.key.family = Family::v6;
  out.key.proto = chain.proto;
  std::memcpy(out.key.src.data(), ip + 8, 16);
  std::memcpy(out.key.dst.data(), ip + 24, 16);
  out.frag_hdr_off = uint16_t(chain.frag_hdr_off);
  if (chain.is_fragment) {
    out.is_fragment = true;
    out.first_fragment = chain.frag_offset == 0;
    out.more_fragments = chain.more_fragments;
    out.frag_offset = chain.frag_offset;
    out.frag_id = chain.frag_id;
    if (!out.first_fragment) return DropReason::none;
  }
  return parse_l4(f, out);
}

// The common frame, checked and read in one go: untagged Ethernet, IPv4 without options and
// not a fragment (DF may be set), a whole TCP or UDP header within the IP packet. Returns false,
// having written nothing, for anything else, well formed or not: the walk below decides those,
// and gives these frames the same result (tests/unit/parse_test.cpp compares the two). A frame
// of a connection costs about half the instructions the walk spends on it.
bool parse_common(const uint8_t* f, size_t size, Parsed& out) noexcept {
  constexpr size_t kL4Off = kEthHeaderLen + kIpv4MinHeaderLen;
  if (size < kL4Off + kUdpHeaderLen) return false;
  const uint8_t* ip = f + kEthHeaderLen;
  if (load_be16(f + 12) != kEtherTypeIpv4 || ip[0] != 0x45) return false;
  const size_t total = load_be16(ip + 2);
  if (total > size - kEthHeaderLen || (load_be16(ip + 6) & 0x3fff) != 0) return false;
  const uint8_t proto = ip[9];
  const uint8_t* l4 = ip + kIpv4MinHeaderLen;
  size_t hlen;
  if (proto == kProtoTcp) {
    if (total < kIpv4MinHeaderLen + kTcpMinHeaderLen) return false;
    hlen = size_t(l4[12] >> 4) * 4;
    if (hlen < kTcpMinHeaderLen || hlen > total - kIpv4MinHeaderLen) return false;
    out.tcp_flags = l4[13];
  } else if (proto == kProtoUdp) {
    if (total < kIpv4MinHeaderLen + kUdpHeaderLen) return false;
    const size_t udp_len = load_be16(l4 + 4);
    if (udp_len < kUdpHeaderLen || udp_len > total - kIpv4MinHeaderLen) return false;
    hlen = kUdpHeaderLen;
  } else {
    return false;
  }
  out.l3 = L3::ipv4;
  out.ether_type = kEtherTypeIpv4;
  out.l3_off = kEthHeaderLen;
  out.l4_off = kL4Off;
  out.l3_end = uint16_t(kEthHeaderLen + total);
  out.payload_off = uint16_t(kL4Off + hlen);
  out.has_l4 = true;
  out.ipv4_tcp_udp = true;
  out.ttl = ip[8];
  // The key, every byte of it (reset_scalars() left it as it was), the addresses in the 8-byte
  // words the flow hash reads next: a word stitched together from a clear of the key and a
  // 4-byte store of an address cannot be forwarded from the store buffer, and the hash waited
  // for both stores to reach the cache (an eighth of the worker's time on a hit, by samples).
  FlowKey& key = out.key;
  const uint64_t zero = 0;
  uint64_t src = 0, dst = 0;
  std::memcpy(&src, ip + 12, 4);
  std::memcpy(&dst, ip + 16, 4);
  std::memcpy(key.src.data(), &src, 8);
  std::memcpy(key.src.data() + 8, &zero, 8);
  std::memcpy(key.dst.data(), &dst, 8);
  std::memcpy(key.dst.data() + 8, &zero, 8);
  // The ports, protocol, family and tag as one word too, which the flow hash reads as one
  // (hash_flow_mix_stored()).
  const uint16_t sport = load_be16(l4);
  const uint16_t dport = load_be16(l4 + 2);
  if constexpr (std::endian::native == std::endian::little) {
    const uint64_t tail = uint64_t(sport) | uint64_t(dport) << 16 | uint64_t(proto) << 32 |
                          uint64_t(Family::v4) << 40;  // the tag: 0
    std::memcpy(&key.sport, &tail, sizeof tail);
  } else {
    key.sport = sport;
    key.dport = dport;
    key.proto = proto;
    key.family = Family::v4;
    key.tag = 0;
  }
  return true;
}

// Header by header, into `out` as reset() left it.
DropReason walk_headers(const uint8_t* f, size_t size, Parsed& out) noexcept {
  size_t off = 0;
  if (const DropReason r = parse_l2(f, size, out, off); r != DropReason::none) return r;
  out.l3_off = uint16_t(off);
  switch (out.ether_type) {  // each sets l4_off, payload_off and l3_end
    case kEtherTypeIpv4:
      return parse_ipv4(f, off, size, out);
    case kEtherTypeIpv6:
      return parse_ipv6(f, off, size, out);
    case kEtherTypeArp:
      return parse_arp(f, off, size, out);
    default:
      out.l4_off = out.payload_off = uint16_t(off);
      out.l3_end = uint16_t(size);
      return DropReason::none;
  }
}

// Every frame but the common one: the headers, then what parse_common() tells of its frames.
// Out of line: inlined into the forwarder's burst loop it cost the common frame 4 more
// instructions (registers).
[[gnu::noinline]] DropReason walk(const uint8_t* f, size_t size, Parsed& out) noexcept {
  const DropReason r = walk_headers(f, size, out);
  out.ipv4_tcp_udp = out.l3 == L3::ipv4 && out.has_l4 &&
                     (out.key.proto == kProtoTcp || out.key.proto == kProtoUdp);
  return r;
}

}  // namespace

DropReason parse(std::span<const uint8_t> frame, Parsed& out) noexcept {
  reset_scalars(out);
  if (frame.size() <= kMaxFrame && parse_common(frame.data(), frame.size(), out)) {
    return DropReason::none;
  }
  out.key = FlowKey{};
  if (frame.size() > kMaxFrame) return DropReason::frame_too_long;
  return walk(frame.data(), frame.size(), out);
}

DropReason parse_walk(std::span<const uint8_t> frame, Parsed& out) noexcept {
  reset(out);
  if (frame.size() > kMaxFrame) return DropReason::frame_too_long;
  return walk(frame.data(), frame.size(), out);
}

}  // namespace magline::dp
