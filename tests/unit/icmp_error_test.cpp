// ICMP errors rewritten for the host whose packet they quote: compared byte for byte with the
// same error built from scratch (every checksum computed in full).
#include "dataplane/icmp_error.hpp"

#include <gtest/gtest.h>

#include "dataplane/checksum.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::FlowKey;

constexpr Mac kA{0x02, 0, 0, 0, 0, 0x01};
constexpr Mac kB{0x02, 0, 0, 0, 0, 0x02};

FlowKey key(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto) {
  FlowKey k;
  k.family = dp::parse_ip(src)->family;
  k.proto = proto;
  k.src = dp::parse_ip(src)->bytes;
  k.sport = sport;
  k.dst = dp::parse_ip(dst)->bytes;
  k.dport = dport;
  return k;
}

// Rewrites `in` and returns the frame, or the drop reason as a failure.
Bytes rewritten(Bytes frame, const char* outer_src, const char* outer_dst, const FlowKey& quote) {
  dp::Parsed p;
  EXPECT_EQ(dp::parse(frame, p), DropReason::none);
  EXPECT_TRUE(p.icmp_error);
  EXPECT_EQ(dp::rewrite_icmp_error(frame, p, *dp::parse_ip(outer_src), *dp::parse_ip(outer_dst),
                                   quote),
            DropReason::none);
  return frame;
}

// PMTUD through full-NAT: a router on the client's path tells the VIP that its reply was too
// big; the backend must get it from Magline's address, quoting the reply as the backend sent it.
TEST(IcmpError, FragNeededForAFullNatReplyGoesToTheBackendAsItsOwnPacket) {
  const Packet reply_as_client_saw =
      Packet().ipv4("198.18.100.1", "198.18.10.1").ttl(60).tcp(80, 40000).payload("HTTP/1.1");
  const Bytes in = Packet().eth(kA, kB).ipv4("198.18.50.1", "198.18.100.1").ttl(64)
                       .icmp_error(3, 4, reply_as_client_saw, Packet::kWhole, 1400)
                       .bytes();
  const Packet reply_as_backend_sent =
      Packet().ipv4("198.18.1.10", "198.18.0.1").ttl(60).tcp(8080, 61000).payload("HTTP/1.1");
  const Bytes want = Packet().eth(kA, kB).ipv4("198.18.0.1", "198.18.1.10").ttl(63)
                         .icmp_error(3, 4, reply_as_backend_sent, Packet::kWhole, 1400)
                         .bytes();
  EXPECT_EQ(rewritten(in, "198.18.0.1", "198.18.1.10",
                      key("198.18.1.10", 8080, "198.18.0.1", 61000, dp::kProtoTcp)),
            want);
}

// A quote cut after the ports (RFC 792's 8 bytes): the ports change, no checksum to update.
TEST(IcmpError, ShortQuoteKeepsWhatItHas) {
  const Packet inner = Packet().ipv4("198.18.100.1", "198.18.10.1").udp(53, 41000).payload("x");
  const Bytes in = Packet().eth(kA, kB).ipv4("198.18.50.1", "198.18.100.1")
                       .icmp_error(3, 3, inner, 28).bytes();
  const Packet inner_after =
      Packet().ipv4("198.18.1.20", "198.18.10.1").udp(5353, 41000).payload("x");
  const Bytes want = Packet().eth(kA, kB).ipv4("198.18.50.1", "198.18.1.20").ttl(63)
                         .icmp_error(3, 3, inner_after, 28).bytes();
  EXPECT_EQ(rewritten(in, "198.18.50.1", "198.18.1.20",
                      key("198.18.1.20", 5353, "198.18.10.1", 41000, dp::kProtoUdp)),
            want);
}

// A quoted UDP checksum of 0 (none computed) stays 0.
TEST(IcmpError, QuotedUdpWithoutChecksumStaysWithout) {
  const Packet inner = Packet().ipv4("198.18.100.1", "198.18.10.1").udp(53, 41000).payload("xy")
                           .no_checksums();
  const Bytes in = Packet().eth(kA, kB).ipv4("198.18.50.1", "198.18.100.1")
                       .icmp_error(11, 0, inner).bytes();
  const Bytes out = rewritten(in, "198.18.50.1", "198.18.1.20",
                              key("198.18.1.20", 5353, "198.18.10.1", 41000, dp::kProtoUdp));
  dp::Parsed p;
  ASSERT_EQ(dp::parse(out, p), DropReason::none);
  EXPECT_EQ(dp::load_be16(out.data() + p.inner.l4_off + 6), 0);
  // The quoted IPv4 header checksum was left zero by no_checksums(); it is now the right one.
  EXPECT_EQ(dp::ipv4_header_checksum(out.data() + p.inner.l3_off, 20),
            dp::load_be16(out.data() + p.inner.l3_off + 10));
}

TEST(IcmpError, PacketTooBigForIpv6) {
  const Packet reply_as_client_saw =
      Packet().ipv6("2001:db8:100::1", "2001:db8:10::1").tcp(80, 40000).payload("data");
  const Bytes in = Packet().eth(kA, kB).ipv6("2001:db8:50::1", "2001:db8:100::1").ttl(64)
                       .icmp_error(2, 0, reply_as_client_saw, Packet::kWhole, 1280)
                       .bytes();
  const Packet reply_as_backend_sent =
      Packet().ipv6("2001:db8::10", "2001:db8::1").tcp(8080, 61000).payload("data");
  const Bytes want = Packet().eth(kA, kB).ipv6("2001:db8::1", "2001:db8::10").ttl(63)
                         .icmp_error(2, 0, reply_as_backend_sent, Packet::kWhole, 1280)
                         .bytes();
  EXPECT_EQ(rewritten(in, "2001:db8::1", "2001:db8::10",
                      key("2001:db8::10", 8080, "2001:db8::1", 61000, dp::kProtoTcp)),
            want);
}

TEST(IcmpError, TtlOfOneIsRefusedUntouched) {
  const Packet inner = Packet().ipv4("198.18.100.1", "198.18.10.1").tcp(80, 40000);
  const Bytes in = Packet().eth(kA, kB).ipv4("198.18.50.1", "198.18.100.1").ttl(1)
                       .icmp_error(3, 4, inner).bytes();
  Bytes frame = in;
  dp::Parsed p;
  ASSERT_EQ(dp::parse(frame, p), DropReason::none);
  EXPECT_EQ(dp::rewrite_icmp_error(frame, p, *dp::parse_ip("198.18.0.1"),
                                   *dp::parse_ip("198.18.1.10"),
                                   key("198.18.1.10", 8080, "198.18.0.1", 61000, dp::kProtoTcp)),
            DropReason::ttl_exceeded);
  EXPECT_EQ(frame, in);
}

}  // namespace
}  // namespace magline::test
