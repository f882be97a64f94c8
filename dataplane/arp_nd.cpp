#include "dataplane/arp_nd.hpp"

#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"

namespace magline::dp {

namespace {

// Link-layer address option types (RFC 4861 4.6.1).
constexpr uint8_t kOptSourceLl = 1;
constexpr uint8_t kOptTargetLl = 2;
constexpr uint8_t kNdHopLimit = 255;

size_t eth_len(const EthHeader& eth) noexcept {
  return kEthHeaderLen + size_t(eth.vlan_count) * kVlanTagLen;
}

// Writes the header and returns where the L3 header starts.
size_t write_eth(uint8_t* b, const EthHeader& eth, uint16_t ether_type) noexcept {
  eth.dst.store(b);
  eth.src.store(b + 6);
  size_t off = 12;
  for (unsigned i = 0; i < eth.vlan_count; ++i) {
    store_be16(b + off, eth.vlan_tpid[i]);
    store_be16(b + off + 2, eth.vlan_tci[i]);
    off += kVlanTagLen;
  }
  store_be16(b + off, ether_type);
  return off + 2;
}

void store_addr(uint8_t* p, const IpAddr& a) noexcept {
  std::memcpy(p, a.data(), a.size());
}

// An NS or NA: IPv6 header, the 24-byte body and one link-layer address option with eth.src.
size_t build_nd(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& src, const IpAddr& dst,
                uint8_t type, uint8_t flags, const IpAddr& target) noexcept {
  const size_t icmp_len = kNdBodyLen + kNdLlOptionLen;
  const size_t len = eth_len(eth) + kIpv6HeaderLen + icmp_len;
  if (buf.size() < len) return 0;
  uint8_t* b = buf.data();
  uint8_t* ip = b + write_eth(b, eth, kEtherTypeIpv6);
  store_be32(ip, 6u << 28);
  store_be16(ip + 4, uint16_t(icmp_len));
  ip[6] = kProtoIcmpv6;
  ip[7] = kNdHopLimit;  // RFC 4861 7.1: receivers drop anything else
  store_addr(ip + 8, src);
  store_addr(ip + 24, dst);
  uint8_t* icmp = ip + kIpv6HeaderLen;
  std::memset(icmp, 0, icmp_len);
  icmp[0] = type;
  icmp[4] = flags;
  store_addr(icmp + 8, target);
  uint8_t* opt = icmp + kNdBodyLen;
  opt[0] = type == kNdNeighborSolicit ? kOptSourceLl : kOptTargetLl;
  opt[1] = 1;  // in units of 8 bytes
  eth.src.store(opt + 2);
  store_be16(icmp + kIcmpCsumOff,
             l4_checksum(src, dst, kProtoIcmpv6, icmp, icmp_len, kIcmpCsumOff));
  return len;
}

// RFC 4861 4.6: options follow the fixed body up to the end of the ICMP message; each gives its
// length in units of 8 bytes, never 0.
NdError read_options(const uint8_t* opt, size_t n, uint8_t wanted, NdMessage& out) noexcept {
  while (n > 0) {
    if (n < 2 || opt[1] == 0 || size_t(opt[1]) * 8 > n) return NdError::bad_option;
    const size_t len = size_t(opt[1]) * 8;
    if (opt[0] == wanted && !out.has_ll) {
      out.has_ll = true;
      out.ll = MacAddr::from(opt + 2);
    }
    opt += len;
    n -= len;
  }
  return NdError::none;
}

// RFC 4861 7.1.1 and 7.1.2, the checks that depend on the message type.
NdError check_addresses(const NdMessage& m) noexcept {
  if (m.type == kNdNeighborSolicit && m.src == IpAddr{{}, Family::v6}) {
    // Duplicate address detection (RFC 4862 5.4.2).
    const IpAddr group = solicited_node(m.target);
    if (m.dst != group || m.has_ll) return NdError::unspecified_source;
  }
  if (m.type == kNdNeighborAdvert && is_ipv6_multicast(m.dst) && (m.flags & kNaSolicited)) {
    return NdError::solicited_to_multicast;
  }
  return NdError::none;
}

}  // namespace

EthHeader answer_header(std::span<const uint8_t> frame, const Parsed& p, const MacAddr& src,
                        const MacAddr& dst) noexcept {
  EthHeader eth;
  eth.src = src;
  eth.dst = dst;
  // The TPIDs are not in Parsed: read them from the frame (parse() checked every tag is there).
  for (unsigned i = 0; i < p.vlan_count && 12 + (i + 1) * kVlanTagLen <= frame.size(); ++i) {
    eth.vlan_tpid[i] = load_be16(frame.data() + 12 + i * kVlanTagLen);
    eth.vlan_tci[i] = p.vlan_tci[i];
    eth.vlan_count = uint8_t(i + 1);
  }
  return eth;
}

// ---- ARP ----

size_t build_arp(std::span<uint8_t> buf, const EthHeader& eth, const ArpMessage& m) noexcept {
  const size_t used = eth_len(eth) + kArpEthIpv4Len;
  const size_t len = used < kMinFrameLen ? kMinFrameLen : used;
  if (buf.size() < len) return 0;
  uint8_t* b = buf.data();
  uint8_t* a = b + write_eth(b, eth, kEtherTypeArp);
  store_be16(a, 1);  // hardware type: Ethernet
  store_be16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  store_be16(a + 6, m.op);
  m.sender_mac.store(a + 8);
  std::memcpy(a + 14, m.sender_ip.data(), 4);
  m.target_mac.store(a + 18);
  std::memcpy(a + 24, m.target_ip.data(), 4);
  std::memset(b + used, 0, len - used);
  return len;
}

size_t build_arp_request(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& sender,
                         const IpAddr& target) noexcept {
  return build_arp(buf, eth, ArpMessage{kArpRequest, eth.src, sender, MacAddr{}, target});
}

size_t build_arp_reply(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& sender,
                       const MacAddr& target_mac, const IpAddr& target_ip) noexcept {
  return build_arp(buf, eth, ArpMessage{kArpReply, eth.src, sender, target_mac, target_ip});
}

size_t build_gratuitous_arp(std::span<uint8_t> buf, const EthHeader& eth,
                            const IpAddr& ip) noexcept {
  return build_arp(buf, eth, ArpMessage{kArpRequest, eth.src, ip, MacAddr{}, ip});
}

// ---- Neighbour discovery ----

IpAddr solicited_node(const IpAddr& target) noexcept {
  IpAddr g{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff}, Family::v6};
  std::memcpy(g.bytes.data() + 13, target.bytes.data() + 13, 3);
  return g;
}

MacAddr ipv6_multicast_mac(const IpAddr& group) noexcept {
  MacAddr m{{0x33, 0x33}};
  std::memcpy(m.b.data() + 2, group.bytes.data() + 12, 4);
  return m;
}

bool is_ipv6_multicast(const IpAddr& a) noexcept {
  return a.family == Family::v6 && a.bytes[0] == 0xff;
}

IpAddr all_nodes() noexcept {
  return IpAddr{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01}, Family::v6};
}

size_t build_ns(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& src, const IpAddr& dst,
                const IpAddr& target) noexcept {
  return build_nd(buf, eth, src, dst, kNdNeighborSolicit, 0, target);
}

size_t build_na(std::span<uint8_t> buf, const EthHeader& eth, const IpAddr& src, const IpAddr& dst,
                const IpAddr& target, uint8_t flags) noexcept {
  return build_nd(buf, eth, src, dst, kNdNeighborAdvert, flags, target);
}

size_t build_unsolicited_na(std::span<uint8_t> buf, const EthHeader& eth,
                            const IpAddr& ip) noexcept {
  EthHeader to_all = eth;
  to_all.dst = ipv6_multicast_mac(all_nodes());
  return build_na(buf, to_all, ip, all_nodes(), ip, kNaOverride);
}

std::string_view nd_error_name(NdError e) noexcept {
  switch (e) {
    case NdError::none:
      return "none";
    case NdError::not_nd:
      return "not_nd";
    case NdError::fragmented:
      return "fragmented";
    case NdError::hop_limit:
      return "hop_limit";
    case NdError::checksum:
      return "checksum";
    case NdError::code:
      return "code";
    case NdError::too_short:
      return "too_short";
    case NdError::multicast_target:
      return "multicast_target";
    case NdError::bad_option:
      return "bad_option";
    case NdError::unspecified_source:
      return "unspecified_source";
    case NdError::solicited_to_multicast:
      return "solicited_to_multicast";
  }
  return "unknown";
}

NdError parse_nd(std::span<const uint8_t> frame, const Parsed& p, NdMessage& out) noexcept {
  if (p.l3 != L3::ipv6 || p.key.proto != kProtoIcmpv6 ||
      (p.icmp_type != kNdNeighborSolicit && p.icmp_type != kNdNeighborAdvert)) {
    return NdError::not_nd;
  }
  if (p.is_fragment) return NdError::fragmented;
  if (!p.has_l4 || frame.size() < p.l3_end) return NdError::not_nd;
  if (p.ttl != kNdHopLimit) return NdError::hop_limit;
  const uint8_t* icmp = frame.data() + p.l4_off;
  const size_t n = size_t(p.l3_end - p.l4_off);
  out = NdMessage{};
  out.type = icmp[0];
  out.src = p.key.src_addr();
  out.dst = p.key.dst_addr();
  if (load_be16(icmp + kIcmpCsumOff) !=
      l4_checksum(out.src, out.dst, kProtoIcmpv6, icmp, n, kIcmpCsumOff)) {
    return NdError::checksum;
  }
  if (icmp[1] != 0) return NdError::code;
  if (n < kNdBodyLen) return NdError::too_short;
  out.flags = out.type == kNdNeighborAdvert ? uint8_t(icmp[4] & 0xe0) : 0;
  out.target = IpAddr::v6(icmp + 8);
  if (is_ipv6_multicast(out.target)) return NdError::multicast_target;
  const uint8_t wanted = out.type == kNdNeighborSolicit ? kOptSourceLl : kOptTargetLl;
  if (const NdError e = read_options(icmp + kNdBodyLen, n - kNdBodyLen, wanted, out);
      e != NdError::none) {
    return e;
  }
  return check_addresses(out);
}

}  // namespace magline::dp
