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
  X(ipv6_routing_pending, "IPv6 routing header with segments left: the address is a waypoint")  \
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
  X(sctp_fragment_rewrite, "SCTP ports to rewrite in a fragment: the CRC32c spans the datagram") \
  X(l2_not_for_us, "Ethernet destination is not a port's MAC, broadcast or multicast")        \
  X(not_ip, "ether type other than IPv4, IPv6 and ARP")                                       \
  X(ip_multicast, "multicast or broadcast IP destination (other than neighbour discovery)")   \
  X(ip_fragment, "IP fragment of ICMP or a protocol without ports: not forwarded")             \
  X(fragment_unmatched, "a later fragment whose first one never came (held, then displaced)") \
  X(icmp_unsupported, "ICMP that is not an error, an echo request or neighbour discovery") \
  X(icmp_error_no_flow, "an ICMP error quoting no connection this worker holds") \
  X(echo_rate_limited, "an echo request beyond the slow path's share (1000 a second per worker)") \
  X(path_mtu_rate_limited, "a router's ICMP error about a tunnel beyond the slow path's share") \
  X(kernel_rate_limited, "a frame for the node's kernel beyond the exception path's rate")     \
  X(no_service, "no frontend and no connection for this destination")                         \
  X(reply_ambiguous, "a reply without a connection from a backend of several DNAT frontends")  \
  X(no_route_to_client, "a DNAT reply without a connection: no subnet or route to its client") \
  X(source_range_denied, "source outside the service's source ranges")                        \
  X(new_connection_limited, "a new connection beyond its frontend's rate limit")             \
  X(no_backend, "no usable backend, and the service drops rather than rejects")               \
  X(backend_unreachable, "no on-link subnet or route covers the backend")                     \
  X(dsr_backend_not_on_link, "L2 DSR to a backend that is not on a port's subnet")            \
  X(no_snat_address, "full-NAT with no address of the family on the egress port")             \
  X(snat_ports_exhausted, "full-NAT found no free source port for this backend")              \
  X(flow_table_full, "full-NAT connection could not be recorded: flow table full")            \
  X(last_hop_table_full, "too many distinct last hops to remember where replies go")          \
  X(neighbor_queue_full, "the slow path could not take a packet waiting for a neighbour")     \
  X(no_encap_source, "IPIP/GUE: no source prefix and no port address of the outer family")   \
  X(encap_too_big, "too big once encapsulated, DF clear, and encapsulation.fragment off") \
  X(encap_fragment_limited, "too big once encapsulated, DF clear, beyond the slow path's share") \
  X(no_headroom, "too little headroom in the buffer for a header to prepend")                 \
  X(syn_cookie_invalid, "SYN proxy engaged: an ACK for no connection without a valid cookie")   \
  X(syn_proxy_pending, "a backend's segment before its proxied handshake completed") \
  X(syn_proxy_hold_lost, "a held client segment displaced before its backend answered")          \
  X(syn_proxy_unexpected, "a backend's SYN-ACK that answers no SYN the proxy sent")              \
  X(syn_proxy_record_lost, "a SYN-proxied connection whose translation record is gone")          \
  X(reject_about_icmp_error, "no ICMP error about an ICMP error (RFC 1122 3.2.2, RFC 4443)")  \
  X(reject_about_fragment, "fragment: no ICMP error unless first, no reset unless it has ACK") \
  X(reject_about_reset, "no reset sent in answer to a reset (RFC 9293 3.10.7.1)")             \
  X(reject_not_unicast, "no rejection of a packet to or from a non-unicast address")

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
