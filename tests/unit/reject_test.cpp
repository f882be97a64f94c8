#include "dataplane/reject.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataplane/bytes.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {
namespace {

using dp::DropReason;

constexpr const char* kClient4 = "198.18.0.1";
constexpr const char* kVip4 = "198.18.100.1";
constexpr const char* kClient6 = "2001:db8::1";
constexpr const char* kVip6 = "2001:db8:100::1";
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// A frame in a buffer of exactly `headroom` + its length, as an I/O layer would hand it over.
class Framed {
 public:
  Framed(const Bytes& frame, uint16_t headroom) : mem_(headroom + frame.size()) {
    std::copy(frame.begin(), frame.end(), mem_.begin() + headroom);
    pkt.data = mem_.data() + headroom;
    pkt.len = uint16_t(frame.size());
    pkt.headroom = headroom;
    pkt.port = 3;
  }
  Framed(const Framed&) = delete;
  Framed& operator=(const Framed&) = delete;

  Bytes frame() const { return Bytes(pkt.data, pkt.data + pkt.len); }
  dp::Parsed parsed() const {
    dp::Parsed p;
    EXPECT_EQ(dp::parse(frame(), p), DropReason::none);
    return p;
  }

  dp::Packet pkt;

 private:
  Bytes mem_;
};

Bytes filler(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = uint8_t(i * 11 + 3);
  return b;
}

// What every reply holds to: it parses, every checksum is right, it goes back the way the
// request came (addresses swapped at L2 and L3, same VLAN tags, same port), TTL 64.
void expect_reply_to(const Bytes& request, const Framed& f) {
  const Bytes reply = f.frame();
  EXPECT_EQ(checksum_errors(reply), "");
  dp::Parsed in;
  dp::Parsed out;
  ASSERT_EQ(dp::parse(request, in), DropReason::none);
  ASSERT_EQ(dp::parse(reply, out), DropReason::none);
  EXPECT_TRUE(std::equal(reply.begin(), reply.begin() + 6, request.begin() + 6));
  EXPECT_TRUE(std::equal(reply.begin() + 6, reply.begin() + 12, request.begin()));
  EXPECT_TRUE(std::equal(reply.begin() + 12, reply.begin() + in.l3_off, request.begin() + 12));
  EXPECT_EQ(out.l3_off, in.l3_off);
  EXPECT_EQ(out.key.src, in.key.dst);
  EXPECT_EQ(out.key.dst, in.key.src);
  EXPECT_EQ(out.ttl, dp::kReplyTtl);
  EXPECT_EQ(out.l3_end, reply.size()) << "no padding or leftovers after the reply";
  EXPECT_EQ(f.pkt.port, 3);
}

// ---- TCP resets ----

struct ResetCase {
  std::string name;
  Packet request;
  uint32_t seq;
  uint32_t ack;
  uint8_t flags;
};

// The builder's segments carry SEQ 1000 and, with ACK, ACK 2000.
std::vector<ResetCase> reset_cases() {
  constexpr uint8_t kRst = dp::kTcpRst;
  constexpr uint8_t kRstAck = dp::kTcpRst | dp::kTcpAck;
  const auto v4 = [] { return Packet().ipv4(kClient4, kVip4); };
  const auto v6 = [] { return Packet().ipv6(kClient6, kVip6); };
  return {
      {"syn", v4().tcp(40000, 80, dp::kTcpSyn), 0, 1001, kRstAck},
      {"syn_with_data", v4().tcp(40000, 80, dp::kTcpSyn).payload("hello"), 0, 1006, kRstAck},
      {"syn_fin", v4().tcp(40000, 80, dp::kTcpSyn | dp::kTcpFin), 0, 1002, kRstAck},
      {"fin_with_data", v4().tcp(40000, 80, dp::kTcpFin).payload("abc"), 0, 1004, kRstAck},
      {"bare_data", v4().tcp(40000, 80, dp::kTcpPsh).payload("abc"), 0, 1003, kRstAck},
      {"ack", v4().tcp(40000, 80, dp::kTcpAck).payload("hello"), 2000, 0, kRst},
      {"fin_ack", v4().tcp(40000, 80, dp::kTcpAck | dp::kTcpFin), 2000, 0, kRst},
      {"options_dropped",
       v4().ipv4_options(Bytes(8, 1)).tcp(40000, 80, dp::kTcpSyn).tcp_options({2, 4, 5, 0xb4}), 0,
       1001, kRstAck},
      {"qinq", v4().vlan(10, dp::kEtherTypeQinQ).vlan(20).tcp(40000, 80, dp::kTcpSyn), 0, 1001,
       kRstAck},
      {"padded", v4().tcp(40000, 80, dp::kTcpSyn).pad(6), 0, 1001, kRstAck},
      {"first_fragment_with_ack", v4().fragment(0, true).tcp(40000, 80).payload(filler(64)), 2000,
       0, kRst},
      {"syn6", v6().tcp(40000, 443, dp::kTcpSyn), 0, 1001, kRstAck},
      {"ack6_ext_headers_dropped", v6().hop_by_hop().dest_opts(16).tcp(40000, 443).payload("x"),
       2000, 0, kRst},
  };
}

TEST(Reject, TcpResetPerRfc9293) {
  for (const ResetCase& c : reset_cases()) {
    SCOPED_TRACE(c.name);
    const Bytes request = c.request.bytes();
    Framed f(request, 0);  // a reset needs no headroom
    ASSERT_EQ(dp::make_reject(f.pkt, f.parsed()), DropReason::none);
    expect_reply_to(request, f);
    const dp::Parsed in = Framed(request, 0).parsed();
    const dp::Parsed out = f.parsed();
    EXPECT_EQ(out.key.proto, dp::kProtoTcp);
    EXPECT_EQ(out.key.sport, in.key.dport);
    EXPECT_EQ(out.key.dport, in.key.sport);
    EXPECT_FALSE(out.is_fragment);
    EXPECT_EQ(out.l4_off - out.l3_off, in.l3 == dp::L3::ipv4 ? 20 : 40);
    EXPECT_EQ(out.l3_end - out.l4_off, 20) << "no options, no payload";
    const uint8_t* tcp = f.pkt.data + out.l4_off;
    EXPECT_EQ(dp::load_be32(tcp + 4), c.seq);
    EXPECT_EQ(dp::load_be32(tcp + 8), c.ack);
    EXPECT_EQ(tcp[13], c.flags);
  }
}

// ---- ICMP port unreachable ----

struct UnreachableCase {
  std::string name;
  Packet request;
  uint16_t headroom = 64;
  size_t quote_len;  // how much of the original IP packet the error holds
};

std::vector<UnreachableCase> unreachable_cases() {
  const auto v4 = [] { return Packet().ipv4(kClient4, kVip4); };
  const auto v6 = [] { return Packet().ipv6(kClient6, kVip6); };
  return {
      {"udp4", v4().udp(40000, 53).payload("query"), 64, 20 + 8 + 5},
      {"udp4_exact_headroom", v4().udp(40000, 53), 28, 28},
      {"udp4_padded", v4().udp(40000, 53).pad(18), 64, 28},
      {"udp4_vlan", v4().vlan(7).udp(40000, 53).payload("q"), 64, 29},
      {"udp4_qinq", v4().vlan(7, dp::kEtherTypeQinQ).vlan(8).udp(40000, 53), 64, 28},
      {"udp4_first_fragment",
       v4().fragment(0, true).udp(40000, 53).udp_length(3000).payload(filler(100)), 64, 128},
      {"udp4_cut_to_576", v4().udp(40000, 53).payload(filler(1400)), 64, 576 - 28},
      {"sctp4", v4().sctp(40000, 3868).payload(filler(16)), 64, 20 + 12 + 16},
      {"icmp4_echo", v4().icmp_echo(7, 1).payload("ping"), 64, 20 + 8 + 4},
      {"other_protocol4", v4().protocol(253).payload("x"), 64, 21},
      {"udp6", v6().udp(40000, 53).payload("query"), 64, 40 + 8 + 5},
      {"udp6_exact_headroom", v6().udp(40000, 53), 48, 48},
      {"udp6_ext_headers", v6().hop_by_hop().udp(40000, 53), 64, 40 + 8 + 8},
      {"udp6_cut_to_1280", v6().udp(40000, 53).payload(filler(3000)), 64, 1280 - 48},
      {"sctp6_vlan", v6().vlan(9).sctp(40000, 3868), 64, 40 + 12},
  };
}

TEST(Reject, IcmpPortUnreachableQuotesTheRequest) {
  for (const UnreachableCase& c : unreachable_cases()) {
    SCOPED_TRACE(c.name);
    const Bytes request = c.request.bytes();
    Framed f(request, c.headroom);
    const dp::Parsed in = f.parsed();
    ASSERT_EQ(dp::make_reject(f.pkt, in), DropReason::none);
    expect_reply_to(request, f);
    const bool v4 = in.l3 == dp::L3::ipv4;
    const size_t grow = v4 ? 28 : 48;
    EXPECT_EQ(f.pkt.headroom, c.headroom - grow);
    EXPECT_EQ(f.pkt.len, in.l3_off + grow + c.quote_len);
    const dp::Parsed out = f.parsed();
    EXPECT_EQ(out.key.proto, v4 ? dp::kProtoIcmp : dp::kProtoIcmpv6);
    EXPECT_EQ(out.icmp_type, v4 ? dp::kIcmpUnreachable : dp::kIcmpv6Unreachable);
    EXPECT_EQ(out.icmp_code, v4 ? dp::kIcmpPortUnreachable : dp::kIcmpv6PortUnreachable);
    EXPECT_TRUE(out.icmp_error);
    EXPECT_LE(out.l3_end - out.l3_off, v4 ? 576 : 1280);
    // The quote is the request's IP packet, byte for byte, cut where it had to be.
    const Bytes reply = f.frame();
    ASSERT_EQ(out.inner.l3_off, in.l3_off + grow);
    EXPECT_TRUE(
        std::equal(reply.begin() + out.inner.l3_off, reply.end(), request.begin() + in.l3_off));
    EXPECT_EQ(dp::load_be32(reply.data() + out.l4_off + 4), 0u);  // unused word
  }
}

TEST(Reject, IcmpErrorCarriesTypeCodeAndRest) {
  const Bytes request = Packet().ipv4(kClient4, kVip4).udp(1, 2).payload(filler(40)).bytes();
  Framed f(request, 28);
  ASSERT_EQ(dp::make_icmp_error(f.pkt, f.parsed(), 3, 4, 1400), DropReason::none);  // frag needed
  expect_reply_to(request, f);
  dp::Parsed out = f.parsed();
  EXPECT_EQ(out.icmp_type, 3);
  EXPECT_EQ(out.icmp_code, 4);
  EXPECT_EQ(dp::load_be32(f.pkt.data + out.l4_off + 4), 1400u);

  const Bytes request6 = Packet().ipv6(kClient6, kVip6).tcp(1, 2).payload(filler(40)).bytes();
  Framed f6(request6, 48);
  ASSERT_EQ(dp::make_icmp_error(f6.pkt, f6.parsed(), 2, 0, 1280), DropReason::none);  // too big
  expect_reply_to(request6, f6);
  out = f6.parsed();
  EXPECT_EQ(out.icmp_type, 2);
  EXPECT_EQ(dp::load_be32(f6.pkt.data + out.l4_off + 4), 1280u);
}

// ---- Never answered ----

struct SuppressCase {
  std::string name;
  Packet request;
  DropReason want;
};

std::vector<SuppressCase> suppress_cases() {
  const auto v4 = [](const char* src, const char* dst) { return Packet().ipv4(src, dst); };
  const auto v6 = [](const char* src, const char* dst) { return Packet().ipv6(src, dst); };
  const Packet quoted4 = v4(kVip4, kClient4).udp(53, 40000);
  const Packet quoted6 = v6(kVip6, kClient6).udp(53, 40000);
  return {
      {"tcp_rst", v4(kClient4, kVip4).tcp(1, 80, dp::kTcpRst), DropReason::reject_about_reset},
      {"tcp_rst_ack", v4(kClient4, kVip4).tcp(1, 80, dp::kTcpRst | dp::kTcpAck),
       DropReason::reject_about_reset},
      {"tcp6_rst", v6(kClient6, kVip6).tcp(1, 80, dp::kTcpRst), DropReason::reject_about_reset},
      {"non_first_fragment4", v4(kClient4, kVip4).fragment(8, false).protocol(17).payload("x"),
       DropReason::reject_about_fragment},
      {"non_first_fragment6", v6(kClient6, kVip6).fragment(8, true).protocol(6).payload("x"),
       DropReason::reject_about_fragment},
      {"tcp_first_fragment_without_ack",
       v4(kClient4, kVip4).fragment(0, true).tcp(1, 80, dp::kTcpSyn).payload(filler(64)),
       DropReason::reject_about_fragment},
      {"icmp4_unreachable", v4(kClient4, kVip4).icmp_error(3, 3, quoted4),
       DropReason::reject_about_icmp_error},
      {"icmp4_redirect", v4(kClient4, kVip4).icmp_error(5, 1, quoted4),
       DropReason::reject_about_icmp_error},
      {"icmp4_time_exceeded", v4(kClient4, kVip4).icmp_error(11, 0, quoted4),
       DropReason::reject_about_icmp_error},
      {"icmp6_unreachable", v6(kClient6, kVip6).icmp_error(1, 4, quoted6),
       DropReason::reject_about_icmp_error},
      {"icmp6_packet_too_big", v6(kClient6, kVip6).icmp_error(2, 0, quoted6, Packet::kWhole, 1280),
       DropReason::reject_about_icmp_error},
      {"to_limited_broadcast", v4(kClient4, "255.255.255.255").udp(1, 2),
       DropReason::reject_not_unicast},
      {"to_multicast4", v4(kClient4, "224.0.0.251").udp(5353, 5353),
       DropReason::reject_not_unicast},
      {"from_zero", v4("0.0.0.0", kVip4).udp(68, 67), DropReason::reject_not_unicast},
      {"from_loopback", v4("127.0.0.1", kVip4).tcp(1, 80, dp::kTcpSyn),
       DropReason::reject_not_unicast},
      {"from_class_e", v4("240.0.0.1", kVip4).udp(1, 2), DropReason::reject_not_unicast},
      {"from_multicast4", v4("224.0.0.1", kVip4).udp(1, 2), DropReason::reject_not_unicast},
      {"l2_broadcast", v4(kClient4, kVip4).eth(kClientMac, kBroadcast).udp(1, 2),
       DropReason::reject_not_unicast},
      {"l2_multicast", v4(kClient4, kVip4).eth(kClientMac, {0x01, 0, 0x5e, 0, 0, 1}).udp(1, 2),
       DropReason::reject_not_unicast},
      {"to_multicast6", v6(kClient6, "ff02::1").udp(1, 2), DropReason::reject_not_unicast},
      {"from_unspecified6", v6("::", kVip6).udp(1, 2), DropReason::reject_not_unicast},
      {"from_loopback6", v6("::1", kVip6).udp(1, 2), DropReason::reject_not_unicast},
      {"from_multicast6", v6("ff05::2", kVip6).tcp(1, 80, dp::kTcpSyn),
       DropReason::reject_not_unicast},
  };
}

TEST(Reject, SuppressedCasesLeaveThePacketAlone) {
  for (const SuppressCase& c : suppress_cases()) {
    SCOPED_TRACE(c.name);
    const Bytes request = c.request.bytes();
    Framed f(request, 64);
    const dp::Packet before = f.pkt;
    EXPECT_EQ(drop_reason_name(dp::make_reject(f.pkt, f.parsed())), drop_reason_name(c.want));
    EXPECT_EQ(f.pkt.data, before.data);
    EXPECT_EQ(f.pkt.len, before.len);
    EXPECT_EQ(f.pkt.headroom, before.headroom);
    EXPECT_EQ(f.frame(), request);
  }
}

TEST(Reject, TooLittleHeadroomChangesNothing) {
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "v6" : "v4");
    const Bytes request = v6 ? Packet().ipv6(kClient6, kVip6).udp(1, 2).bytes()
                             : Packet().vlan(5).ipv4(kClient4, kVip4).udp(1, 2).bytes();
    Framed f(request, v6 ? 47 : 27);
    const dp::Packet before = f.pkt;
    EXPECT_EQ(dp::make_reject(f.pkt, f.parsed()), DropReason::no_headroom);
    EXPECT_EQ(f.pkt.data, before.data);
    EXPECT_EQ(f.pkt.len, before.len);
    EXPECT_EQ(f.pkt.headroom, before.headroom);
    EXPECT_EQ(f.frame(), request);
  }
}

}  // namespace
}  // namespace magline::test
