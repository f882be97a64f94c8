#include "dataplane/reject.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"

namespace magline::dp {

namespace {

constexpr size_t kIpv4ErrorMax = 576;   // RFC 1812 4.3.2.3
constexpr size_t kIpv6ErrorMax = 1280;  // RFC 4443 2.4(c): the minimum IPv6 MTU

// RFC 792 / RFC 1122 3.2.2: unreachable, source quench, redirect, time exceeded, parameter
// problem. RFC 4443 2.1: every ICMPv6 type below 128 is an error.
bool is_icmp_error(const Parsed& in) noexcept {
  if (!in.has_l4) return false;
  if (in.l3 == L3::ipv4) {
    const uint8_t t = in.icmp_type;
    return in.key.proto == kProtoIcmp &&
           (t == kIcmpUnreachable || t == kIcmpSourceQuench || t == kIcmpRedirect ||
            t == kIcmpTimeExceeded || t == kIcmpParameterProblem);
  }
  return in.key.proto == kProtoIcmpv6 && in.icmp_type < 128;
}

// RFC 1122 3.2.2 (and 3.2.1.3): not "this network" (0/8), loopback, multicast, class E or the
// limited broadcast. RFC 4443 2.4(e): not the unspecified address, loopback or multicast.
bool is_single_host(const IpAddr& a) noexcept {
  if (a.family == Family::v4) return a.bytes[0] != 0 && a.bytes[0] != 127 && a.bytes[0] < 224;
  if (a.bytes[0] == 0xff) return false;
  static constexpr std::array<uint8_t, 15> kZero{};
  const bool upper_zero = std::memcmp(a.bytes.data(), kZero.data(), 15) == 0;
  return !(upper_zero && a.bytes[15] <= 1);
}

// RFC 9293 3.10.7.1, a segment for a connection that does not exist: if it has ACK,
// <SEQ=SEG.ACK><CTL=RST>, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; never for a RST.
DropReason make_tcp_reset(Packet& p, const Parsed& in) noexcept {
  if (in.tcp_flags & kTcpRst) return DropReason::reject_about_reset;
  const bool has_ack = in.tcp_flags & kTcpAck;
  // SEG.LEN counts the whole segment, which a first fragment does not hold.
  if (in.is_fragment && !has_ack) return DropReason::reject_about_fragment;
  const uint8_t* seg = p.data + in.l4_off;
  const uint32_t seg_seq = load_be32(seg + 4);
  const uint32_t seg_ack = load_be32(seg + 8);
  const uint32_t seg_len = uint32_t(in.l3_end - in.payload_off) +
                           ((in.tcp_flags & kTcpSyn) ? 1 : 0) + ((in.tcp_flags & kTcpFin) ? 1 : 0);
  const IpAddr src = in.key.dst_addr();
  const IpAddr dst = in.key.src_addr();

  swap_macs(p.data);
  uint8_t* ip = p.data + in.l3_off;
  uint8_t* tcp = ip + write_ip_header(ip, src, dst, kProtoTcp, kTcpMinHeaderLen);
  std::memset(tcp, 0, kTcpMinHeaderLen);
  store_be16(tcp, in.key.dport);
  store_be16(tcp + 2, in.key.sport);
  store_be32(tcp + 4, has_ack ? seg_ack : 0);
  store_be32(tcp + 8, has_ack ? 0 : seg_seq + seg_len);
  tcp[12] = uint8_t((kTcpMinHeaderLen / 4) << 4);
  tcp[13] = has_ack ? kTcpRst : uint8_t(kTcpRst | kTcpAck);
  store_be16(tcp + kTcpCsumOff,
             l4_checksum(src, dst, kProtoTcp, tcp, kTcpMinHeaderLen, kTcpCsumOff));
  p.len = uint16_t(tcp + kTcpMinHeaderLen - p.data);
  return DropReason::none;
}

// The quote is the original IP packet where it lies; the L2 header moves to the new front and
// the new IP and ICMP headers fill the gap between them.
DropReason write_icmp_error(Packet& p, const Parsed& in, uint8_t type, uint8_t code,
                            uint32_t rest) noexcept {
  const bool v4 = in.l3 == L3::ipv4;
  const size_t grow = (v4 ? kIpv4MinHeaderLen : kIpv6HeaderLen) + kIcmpHeaderLen;
  const size_t quote =
      std::min(size_t(in.l3_end - in.l3_off), (v4 ? kIpv4ErrorMax : kIpv6ErrorMax) - grow);
  if (!prepend(p, uint16_t(grow))) return DropReason::no_headroom;
  std::memmove(p.data, p.data + grow, in.l3_off);
  swap_macs(p.data);
  const IpAddr src = in.key.dst_addr();
  const IpAddr dst = in.key.src_addr();
  const size_t icmp_len = kIcmpHeaderLen + quote;
  uint8_t* ip = p.data + in.l3_off;
  uint8_t* icmp = ip + write_ip_header(ip, src, dst, v4 ? kProtoIcmp : kProtoIcmpv6, icmp_len);
  icmp[0] = type;
  icmp[1] = code;
  store_be16(icmp + kIcmpCsumOff, 0);
  store_be32(icmp + 4, rest);
  // ICMP for IPv4 has no pseudo-header (RFC 792); ICMPv6 does (RFC 4443 2.3).
  store_be16(icmp + kIcmpCsumOff,
             v4 ? csum_fold(csum_add(0, icmp, icmp_len))
                : l4_checksum(src, dst, kProtoIcmpv6, icmp, icmp_len, kIcmpCsumOff));
  p.len = uint16_t(in.l3_off + grow + quote);
  return DropReason::none;
}

}  // namespace

DropReason may_answer(const Packet& p, const Parsed& in) noexcept {
  assert(in.l3 == L3::ipv4 || in.l3 == L3::ipv6);
  assert(p.len >= in.l3_end);
  if (in.is_fragment && !in.first_fragment) return DropReason::reject_about_fragment;
  if (is_icmp_error(in)) return DropReason::reject_about_icmp_error;
  if (MacAddr::from(p.data).is_multicast() || !is_single_host(in.key.src_addr()) ||
      !is_single_host(in.key.dst_addr())) {
    return DropReason::reject_not_unicast;
  }
  return DropReason::none;
}

void swap_macs(uint8_t* frame) noexcept {
  uint8_t tmp[6];
  std::memcpy(tmp, frame, 6);
  std::memmove(frame, frame + 6, 6);
  std::memcpy(frame + 6, tmp, 6);
}

size_t write_ip_header(uint8_t* ip, const IpAddr& src, const IpAddr& dst, uint8_t proto,
                       size_t l4_len) noexcept {
  if (src.family == Family::v4) {
    const uint16_t total = uint16_t(kIpv4MinHeaderLen + l4_len);
    std::memset(ip, 0, kIpv4MinHeaderLen);
    ip[0] = 0x45;
    store_be16(ip + 2, total);
    store_be16(ip + 6, 0x4000);
    ip[8] = kReplyTtl;
    ip[9] = proto;
    std::memcpy(ip + 12, src.data(), 4);
    std::memcpy(ip + 16, dst.data(), 4);
    // Summed from the values written, not read back (a load of bytes just stored stalls).
    const uint64_t sum = uint64_t(0x4500) + total + 0x4000 + (uint32_t(kReplyTtl) << 8 | proto) +
                         load_be32(src.data()) + load_be32(dst.data());
    store_be16(ip + 10, uint16_t(~detail::fold16(sum)));
    return kIpv4MinHeaderLen;
  }
  store_be32(ip, 6u << 28);
  store_be16(ip + 4, uint16_t(l4_len));
  ip[6] = proto;
  ip[7] = kReplyTtl;
  std::memcpy(ip + 8, src.data(), 16);
  std::memcpy(ip + 24, dst.data(), 16);
  return kIpv6HeaderLen;
}

DropReason make_icmp_error(Packet& p, const Parsed& parsed, uint8_t type, uint8_t code,
                           uint32_t rest) noexcept {
  if (const DropReason r = may_answer(p, parsed); r != DropReason::none) return r;
  return write_icmp_error(p, parsed, type, code, rest);
}

DropReason make_reject(Packet& p, const Parsed& parsed) noexcept {
  if (const DropReason r = may_answer(p, parsed); r != DropReason::none) return r;
  if (parsed.key.proto == kProtoTcp && parsed.has_l4) return make_tcp_reset(p, parsed);
  if (parsed.l3 == L3::ipv4) {
    return write_icmp_error(p, parsed, kIcmpUnreachable, kIcmpPortUnreachable, 0);
  }
  return write_icmp_error(p, parsed, kIcmpv6Unreachable, kIcmpv6PortUnreachable, 0);
}

DropReason make_echo_reply(Packet& p, const Parsed& in) noexcept {
  if (in.is_fragment) return DropReason::reject_about_fragment;
  if (const DropReason r = may_answer(p, in); r != DropReason::none) return r;
  const bool v4 = in.l3 == L3::ipv4;
  const IpAddr src = in.key.dst_addr();
  const IpAddr dst = in.key.src_addr();
  const size_t len = size_t(in.l3_end - in.l4_off);  // the whole echo message
  uint8_t* ip = p.data + in.l3_off;
  const size_t hlen = v4 ? kIpv4MinHeaderLen : kIpv6HeaderLen;
  std::memmove(ip + hlen, p.data + in.l4_off, len);  // options or extension headers dropped
  write_ip_header(ip, src, dst, v4 ? kProtoIcmp : kProtoIcmpv6, len);
  uint8_t* icmp = ip + hlen;
  icmp[0] = v4 ? kIcmpEchoReply : kIcmpv6EchoReply;
  icmp[1] = 0;
  std::memset(icmp + kIcmpCsumOff, 0, 2);
  store_be16(icmp + kIcmpCsumOff,
             v4 ? csum_fold(csum_add(0, icmp, len))
                : l4_checksum(src, dst, kProtoIcmpv6, icmp, len, kIcmpCsumOff));
  swap_macs(p.data);
  p.len = uint16_t(icmp + len - p.data);
  return DropReason::none;
}

}  // namespace magline::dp
