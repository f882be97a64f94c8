// Encapsulation to backends anywhere routable: direct server return across L3. The client's IP
// packet is sent to the backend unchanged inside an outer header, IPIP (RFC 2003, RFC 2473:
// IPv4 or IPv6 in IPv4 or IPv6, protocol 4 or 41) or GUE variant 1 (draft-ietf-intarea-gue,
// "direct encapsulation": the UDP payload is the IP packet itself, as Katran sends it and Linux's
// fou/gue receives it). The backend decapsulates, holds the VIP, and answers the client directly.
//
// Entropy for the backend's RSS, which hashes the outer header: IPIP's outer source is taken from
// a configured prefix, its host bits from the flow's hash (as Katran does); GUE's UDP source port
// and IPv6's flow label (RFC 6438) carry flow bits always. The outer header copies the inner
// DSCP and ECN (RFC 6040, normal mode) and sets DF: Magline does not fragment; a packet too big
// for the path MTU once encapsulated is answered with an ICMP error (forwarder.cpp). A router on
// the way whose link is smaller answers Magline's outer packet with an ICMP error of its own
// (tunnel_path_mtu()): the control thread learns that backend's path MTU from it, for a while.
//
// Contract: per-packet path, noexcept, no allocation. `p` is parse() of the frame as it is now.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "dataplane/addr.hpp"
#include "dataplane/drop_reason.hpp"
#include "dataplane/node.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/service.hpp"

namespace magline::dp {

inline constexpr uint8_t kProtoIpip = 4;    // IPv4 in IP
inline constexpr uint8_t kProtoIpv6 = 41;   // IPv6 in IP
inline constexpr uint8_t kEncapTtl = 64;    // the outer header's TTL or hop limit
inline constexpr uint16_t kDefaultGuePort = 6080;  // Katran's
// GUE source ports are 49152 + 14 bits of the flow's hash (RFC 6335's dynamic range).
inline constexpr uint16_t kGueSourcePortBase = 49152;

struct EncapHeader {
  ForwardMode mode = ForwardMode::ipip;  // ipip or gue
  IpAddr src;                            // the outer source
  IpAddr dst;                            // the backend
  uint16_t gue_port = kDefaultGuePort;
  uint32_t entropy = 0;                  // a hash of the inner flow
};

// The bytes the outer headers add: 20 (IPv4) or 40 (IPv6), and 8 more for GUE's UDP header.
constexpr uint16_t encap_overhead(ForwardMode mode, Family outer) noexcept {
  return uint16_t((outer == Family::v4 ? 20 : 40) + (mode == ForwardMode::gue ? 8 : 0));
}

// Wraps the frame's IP packet (Ethernet padding dropped) in the outer headers, between its L2
// header and the packet; the L2 header's EtherType becomes the outer family's. IPv6 outer UDP
// checksums are computed (RFC 8200 8.1: no zero checksum by default); IPv4's are zero. Returns
// no_headroom, having changed nothing, when the buffer cannot take the outer headers.
DropReason encapsulate(Packet& pkt, const Parsed& p, const EncapHeader& h) noexcept;

// An outer source address in `prefix`: its host bits from `entropy` (the prefix's address
// itself when it is a single host).
IpAddr encap_source(const IpPrefix& prefix, uint32_t entropy) noexcept;

// Splitting an encapsulated packet too big for the path whose inner packet is IPv4 without DF
// (`encapsulation.fragment`): the inner packet is fragmented (RFC 791), each fragment under a
// copy of the outer headers with their lengths and checksums made right. Inner fragmentation
// (RFC 4459 3.4): the backend reassembles the client's datagram as if a router on the client's
// side had split it, and every piece is a whole tunnel packet to its decapsulator. The control
// thread does it (slow_path.hpp), off the workers. An inner header with options is not split
// (options other than the copied ones must not be repeated; no client sends them).
struct InnerSplit {
  uint16_t inner_off = 0;  // where the inner IPv4 header starts in the frame
  uint16_t chunk = 0;      // inner payload bytes per piece (a multiple of 8, the last less)
  uint16_t count = 0;      // pieces
  uint16_t payload = 0;    // the inner packet's payload bytes, all pieces together
};

// How the encapsulated frame `frame` (parsed as `outer`: IPIP or GUE as encapsulate() writes
// them) splits so that each piece's IP packet fits `mtu`; nothing when it cannot (not IPIP or
// GUE, inner not IPv4, DF set, options, or no room for 8 bytes of payload).
std::optional<InnerSplit> plan_inner_split(std::span<const uint8_t> frame, const Parsed& outer,
                                           uint16_t mtu) noexcept;

// Writes piece `k` of `plan` (L2 header, outer headers, inner fragment) to `out`, which has
// room for the L2 header and `mtu` bytes; returns its length.
uint16_t write_inner_piece(std::span<const uint8_t> frame, const Parsed& outer,
                           const InnerSplit& plan, uint16_t k, uint8_t* out) noexcept;

// The least path MTU learned from an ICMP error (outer headers included): IPv4, 552 (Linux's
// min_pmtu); IPv6, 1280 (RFC 8200). A smaller one is taken as these.
inline constexpr uint16_t kMinPathMtuV4 = 552;
inline constexpr uint16_t kMinPathMtuV6 = 1280;

// What an ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201) says
// about a packet Magline encapsulated: the backend it was for and the path MTU to it.
struct TunnelMtu {
  IpAddr backend;
  uint16_t mtu = 0;
};

// Whether `p` (a parsed ICMP error) is such an error: it quotes an IPIP packet (protocol 4 or
// 41) or a GUE one (UDP to `es.gue_port`) from one of Magline's outer sources (a port's
// address, or inside `es.source_v4`/`source_v6`). Returns the backend and the MTU (clamped to
// the least above); nothing for anything else, or an IPv4 error without an MTU (RFC 792's
// routers: no guessing).
std::optional<TunnelMtu> tunnel_path_mtu(std::span<const uint8_t> frame, const Parsed& p,
                                         const Node& node) noexcept;

}  // namespace magline::dp
