// Answers Magline gives itself: rejections, as Kubernetes gives them for a Service without
// endpoints (kube-proxy's REJECT rule): a TCP reset for TCP, an ICMP "port unreachable" for
// everything else; ICMP errors; echo replies for its addresses and VIPs. Built in place:
// the packet becomes the reply, from the original destination to the original source with the
// Ethernet addresses swapped, to leave on the port it came in on.
//
// Contract: per-packet path, noexcept, no allocation. `parsed` is parse() of the packet as it is
// now. On success returns DropReason::none and `p` (data, len, headroom) holds the reply; else
// returns why no reply may or can be sent, having changed nothing.
#pragma once

#include <cstdint>

#include "dataplane/drop_reason.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

// The TTL or hop limit of the answers built here. (The ICMP types they use are in wire.hpp.)
inline constexpr uint8_t kReplyTtl = 64;

// Whether Magline may answer the packet at all: none, or why not (a non-first fragment, an ICMP
// error, a packet to or from an address that is not a single host, a link-layer broadcast).
DropReason may_answer(const Packet& p, const Parsed& parsed) noexcept;
// Swaps the frame's Ethernet destination and source.
void swap_macs(uint8_t* frame) noexcept;
// Writes a fresh IP header without options or extension headers at `ip`; returns its length.
// DF is set so that the datagram is atomic and an ID of 0 is allowed (RFC 6864 4.1); TTL or
// hop limit kReplyTtl.
size_t write_ip_header(uint8_t* ip, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                       size_t l4_len) noexcept;

// TCP: RFC 9293 3.10.7.1 (a segment reaching a closed port). Otherwise an ICMP destination
// unreachable, port unreachable: type 3 code 3 (RFC 792) or ICMPv6 type 1 code 4 (RFC 4443 3.1).
DropReason make_reject(Packet& p, const Parsed& parsed) noexcept;

// An ICMP error about the packet in its own family (`type`, `code` and `rest`, the header's
// second word, are ICMP or ICMPv6 values accordingly), quoting as much of the original IP packet
// as keeps the error within 576 bytes (IPv4, RFC 1812 4.3.2.3) or 1280 (IPv6, RFC 4443 2.4(c)).
// Prepends the new IP and ICMP headers in front of the quote, which stays where it is: needs
// 28 (IPv4) or 48 (IPv6) bytes of headroom. Never answers what RFC 1122 3.2.2 and RFC 4443
// 2.4(e) forbid: ICMP errors, non-first fragments, packets to or from an address that is not a
// single host, link-layer broadcasts (without 4443's exceptions for Packet Too Big and
// Parameter Problem code 2 to multicast destinations).
DropReason make_icmp_error(Packet& p, const Parsed& parsed, uint8_t type, uint8_t code,
                           uint32_t rest = 0) noexcept;

// An echo reply (RFC 792 type 0; RFC 4443 4.2 type 129) to an echo request, carrying its
// identifier, sequence number and data, from the address it was sent to, in a fresh IP header
// (no options or extension headers). Not for fragments (the data would be partial) nor for what
// make_reject does not answer (not unicast).
DropReason make_echo_reply(Packet& p, const Parsed& parsed) noexcept;

}  // namespace magline::dp
