// The fixed numbers of the wire formats Magline reads and writes: header lengths, EtherTypes,
// IP protocol numbers, the checksum fields' offsets, TCP flags and the ICMP types it answers
// with. One place, so that the parser, the frame builders and the rewriters agree.
//
// Only what the formats define lives here; limits Magline chooses (how many VLAN tags or IPv6
// extension headers it reads, the TTL of its own replies) stay with the code that chooses them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace magline::dp {

// ---- Ethernet (IEEE 802.3, 802.1Q) ----

inline constexpr size_t kEthHeaderLen = 14;  // destination, source, EtherType
inline constexpr size_t kVlanTagLen = 4;     // 802.1Q: TPID and TCI
// The minimum frame without the FCS (IEEE 802.3 clause 4): shorter frames are padded.
inline constexpr size_t kMinFrameLen = 60;

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;  // 802.1Q
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;  // 802.1ad
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;

// ---- ARP (RFC 826) ----

inline constexpr size_t kArpFixedLen = 8;     // htype, ptype, hlen, plen, op
inline constexpr size_t kArpEthIpv4Len = 28;  // the fixed part, two MAC and IPv4 address pairs
inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;

// ---- IPv4 (RFC 791) and IPv6 (RFC 8200) ----

inline constexpr size_t kIpv4MinHeaderLen = 20;  // IHL 5: no options
inline constexpr size_t kIpv6HeaderLen = 40;
inline constexpr size_t kIpv6FragHeaderLen = 8;  // RFC 8200 4.5
// A datagram's largest size: IPv4's total length is 16 bits, and RFC 8200 4.5 bounds a
// reassembled IPv6 payload the same way.
inline constexpr size_t kMaxDatagram = 65535;

// IPv6 extension headers Magline walks (RFC 8200 4, AH: RFC 4302).
inline constexpr uint8_t kIpv6HopByHop = 0;
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kIpv6Ah = 51;
inline constexpr uint8_t kIpv6DestOpts = 60;

// IP protocol numbers (IANA).
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoSctp = 132;

// ---- Transport headers ----

// TCP, UDP and SCTP headers all open with the source and destination ports.
inline constexpr size_t kPortsLen = 4;
constexpr bool has_ports(uint8_t proto) noexcept {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp;
}

inline constexpr size_t kTcpMinHeaderLen = 20;  // RFC 9293 3.1: data offset 5, no options
inline constexpr size_t kTcpCsumOff = 16;
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

inline constexpr size_t kUdpHeaderLen = 8;  // RFC 768
inline constexpr size_t kUdpCsumOff = 6;

inline constexpr size_t kSctpCommonHeaderLen = 12;  // RFC 9260 3.1
inline constexpr size_t kSctpCsumOff = 8;           // the CRC32c, 4 bytes

// ---- ICMP (RFC 792) and ICMPv6 (RFC 4443) ----

// Type, code, checksum and the 4-byte word every message has after them.
inline constexpr size_t kIcmpHeaderLen = 8;
inline constexpr size_t kIcmpCsumOff = 2;

// ICMP types (RFC 792) and the codes Magline sends.
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpUnreachable = 3;
inline constexpr uint8_t kIcmpPortUnreachable = 3;  // a code of kIcmpUnreachable
inline constexpr uint8_t kIcmpFragNeeded = 4;       // ... with the next-hop MTU (RFC 1191)
inline constexpr uint8_t kIcmpSourceQuench = 4;
inline constexpr uint8_t kIcmpRedirect = 5;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpParameterProblem = 12;

// ICMPv6 types (RFC 4443 3.1, 3.2, 4.1, 4.2) and the codes Magline sends.
inline constexpr uint8_t kIcmpv6Unreachable = 1;
inline constexpr uint8_t kIcmpv6PortUnreachable = 4;  // a code of kIcmpv6Unreachable
inline constexpr uint8_t kIcmpv6PacketTooBig = 2;
inline constexpr uint8_t kIcmpv6EchoRequest = 128;
inline constexpr uint8_t kIcmpv6EchoReply = 129;

// ---- IPv6 neighbour discovery (RFC 4861), ICMPv6 messages ----

inline constexpr uint8_t kNdNeighborSolicit = 135;
inline constexpr uint8_t kNdNeighborAdvert = 136;
// An NS or NA without options: type, code, checksum, flags and reserved, target (4.3, 4.4).
inline constexpr size_t kNdBodyLen = 24;
// An Ethernet link-layer address option (4.6.1).
inline constexpr size_t kNdLlOptionLen = 8;

}  // namespace magline::dp
