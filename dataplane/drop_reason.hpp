// Why a packet was dropped. Every drop on the data plane has exactly one reason, and every
// reason has a counter; the names are the `reason` label values of magline_drops_total.
#pragma once

#include <cstdint>
#include <string_view>

namespace magline::dp {

// X(name, help): one line per reason. Order is ABI only within a process.
#define MAGLINE_DROP_REASONS(X)                                                              \
  X(frame_too_long, "frame longer than 65535 bytes (parser offsets are 16-bit)")             \
  X(eth_truncated, "frame shorter than an Ethernet header")                                  \
  X(vlan_truncated, "802.1Q/802.1ad tag cut short")                                           \
  X(vlan_too_deep, "more VLAN tags than the parser accepts (2)")                              \
  X(arp_truncated, "ARP packet shorter than an Ethernet/IPv4 ARP body")                       \
  X(arp_unsupported, "ARP for a hardware or protocol type other than Ethernet/IPv4")          \
  X(ipv4_truncated, "fewer than 20 bytes after the L2 header")                                \
  X(ipv4_bad_version, "IPv4 ethertype but version field is not 4")                            \
  X(ipv4_bad_ihl, "IPv4 IHL below 5")                                                         \
  X(ipv4_ihl_beyond_packet, "IPv4 header length runs past the frame or the total length")     \
  X(ipv4_total_len_beyond_frame, "IPv4 total length longer than the frame")                   \
  X(ipv4_fragment_overflow, "IPv4 fragment ends beyond 65535 bytes")                          \
  X(ipv6_truncated, "fewer than 40 bytes after the L2 header")                                \
  X(ipv6_bad_version, "IPv6 ethertype but version field is not 6")                            \
  X(ipv6_payload_len_beyond_frame, "IPv6 payload length longer than the frame")               \
  X(ipv6_ext_truncated, "IPv6 extension header runs past the packet")                         \
  X(ipv6_ext_chain_too_long, "more IPv6 extension headers than the parser accepts")           \
  X(ipv6_hop_by_hop_misplaced, "IPv6 hop-by-hop options header not first (RFC 8200 4.1)")     \
  X(ipv6_fragment_overflow, "IPv6 fragment ends beyond 65535 bytes")                          \
  X(tcp_truncated, "TCP header cut short")                                                    \
  X(tcp_bad_data_offset, "TCP data offset below 5 or past the packet")                        \
  X(udp_truncated, "UDP header cut short")                                                    \
  X(udp_bad_length, "UDP length below 8 or past the packet")                                  \
  X(sctp_truncated, "SCTP common header cut short")                                           \
  X(icmp_truncated, "ICMP or ICMPv6 header cut short")                                        \
  X(icmp_inner_truncated, "ICMP error quotes a header that is cut short or malformed")       \
  X(ttl_exceeded, "TTL or hop limit would reach zero when forwarded")                         \
  X(sctp_fragment_rewrite, "SCTP ports to rewrite in a fragment: the CRC32c spans the datagram")

enum class DropReason : uint8_t {
  none = 0,
#define MAGLINE_X(name, help) name,
  MAGLINE_DROP_REASONS(MAGLINE_X)
#undef MAGLINE_X
      count_
};

inline constexpr size_t kDropReasonCount = size_t(DropReason::count_);

constexpr std::string_view drop_reason_name(DropReason r) noexcept {
  switch (r) {
    case DropReason::none: return "none";
#define MAGLINE_X(name, help) \
  case DropReason::name: return #name;
    MAGLINE_DROP_REASONS(MAGLINE_X)
#undef MAGLINE_X
    case DropReason::count_: break;
  }
  return "unknown";
}

constexpr std::string_view drop_reason_help(DropReason r) noexcept {
  switch (r) {
    case DropReason::none: return "not dropped";
#define MAGLINE_X(name, help) \
  case DropReason::name: return help;
    MAGLINE_DROP_REASONS(MAGLINE_X)
#undef MAGLINE_X
    case DropReason::count_: break;
  }
  return "unknown";
}

}  // namespace magline::dp
