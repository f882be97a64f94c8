// The packet parser: Ethernet (with up to two VLAN tags), ARP, IPv4 (options, fragments), IPv6
// (bounded extension-header chain, fragment header), TCP, UDP, SCTP, ICMP and ICMPv6 including
// the header quoted inside ICMP error messages.
//
// Contract: parse() reads only bytes inside `frame` and writes only `out`. Every length field is
// checked before it is used; a malformed packet yields a DropReason, never a read out of bounds.
// It runs on the per-packet path: noexcept, no allocation. Safe to call from any thread.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/drop_reason.hpp"
#include "dataplane/flow_key.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

// How deep the parser reads (the wire's own numbers are in wire.hpp).
inline constexpr unsigned kMaxVlanTags = 2;
inline constexpr unsigned kMaxIpv6ExtHeaders = 8;

enum class L3 : uint8_t { none, arp, ipv4, ipv6 };

// An ARP packet for IPv4 over Ethernet (RFC 826).
struct ArpInfo {
  uint16_t op = 0;  // 1 request, 2 reply
  uint8_t sender_mac[6]{};
  uint8_t target_mac[6]{};
  IpAddr sender_ip;
  IpAddr target_ip;
};

// The header an ICMP error message quotes: the packet that caused the error, as it was sent.
// Its addresses are therefore reversed with respect to the flow the error belongs to.
struct IcmpInner {
  uint16_t l3_off = 0;  // offsets are from the start of the frame
  uint16_t l4_off = 0;
  bool has_ports = false;  // the quote holds at least the 4 bytes of L4 ports
  FlowKey key;             // the quoted packet's tuple, as quoted
};

struct Parsed {
  L3 l3 = L3::none;
  bool ipv4_tcp_udp = false;  // IPv4 with a TCP or UDP header (has_l4): nearly every frame,
                              // rewrite_tuple()'s short way on one test
  uint16_t ether_type = 0;  // innermost ether type, after VLAN tags
  uint8_t vlan_count = 0;
  uint16_t vlan_tci[kMaxVlanTags]{};  // outermost first

  uint16_t l3_off = 0;    // start of the IP (or ARP) header
  uint16_t l4_off = 0;    // start of the L4 header: after IPv4 options / IPv6 extension headers
  uint16_t l3_end = 0;    // end of the IP packet (frame padding after it is ignored)
  uint16_t payload_off = 0;  // start of the L4 payload (valid when has_l4)
  bool has_l4 = false;    // an L4 header was parsed (false for non-first fragments)

  uint8_t ttl = 0;        // IPv4 TTL or IPv6 hop limit
  uint8_t tcp_flags = 0;

  // Fragment fields are set only when is_fragment, except frag_hdr_off, which also locates the
  // header of an IPv6 atomic fragment (offset 0, M clear: not a fragment, RFC 6946).
  bool is_fragment = false;     // IPv4 MF or offset, or an IPv6 fragment header (not atomic)
  bool first_fragment = false;  // offset 0 (the fragment that carries the L4 header)
  bool more_fragments = false;  // MF / M flag: another fragment follows this one
  uint16_t frag_offset = 0;     // position of this fragment in the datagram, in bytes
  uint16_t frag_hdr_off = 0;    // IPv6 fragment header offset, 0 if none
  uint32_t frag_id = 0;         // IPv4 identification or IPv6 fragment identification

  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint16_t icmp_id = 0;         // echo request/reply identifier
  bool icmp_error = false;      // destination unreachable, time exceeded, ... (with a quote)
  IcmpInner inner;              // valid when icmp_error

  FlowKey key;  // addresses, protocol and (when has_l4) ports of this packet
  ArpInfo arp;  // valid when l3 == L3::arp
};

// Parses one frame. On success returns DropReason::none and fills `out`; otherwise returns why the
// packet must be dropped (the contents of `out` are then unspecified).
// Packets that are well formed but of no interest (other ether types, unknown IP protocols) parse
// successfully: deciding what to do with them is the caller's business.
DropReason parse(std::span<const uint8_t> frame, Parsed& out) noexcept;

// The same by the general walk alone, header by header. parse() reads the common frame
// (untagged IPv4 without options or fragmentation, TCP or UDP) in one go and gives every frame
// the result this gives; the tests compare them.
DropReason parse_walk(std::span<const uint8_t> frame, Parsed& out) noexcept;

}  // namespace magline::dp
