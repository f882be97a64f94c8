#include "dataplane/arp_nd.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/bytes.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {
namespace {

using dp::NdError;

constexpr Mac kZeroMac{};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

dp::IpAddr ip(const char* text) {
  return *dp::parse_ip(text);
}

dp::MacAddr mac(const Mac& m) {
  return dp::MacAddr{m};
}

dp::EthHeader eth(const Mac& src, const Mac& dst) {
  dp::EthHeader e;
  e.src = mac(src);
  e.dst = mac(dst);
  return e;
}

dp::Parsed parsed(const Bytes& frame) {
  dp::Parsed p;
  EXPECT_EQ(dp::parse(frame, p), dp::DropReason::none);
  return p;
}

// Builds into a buffer larger than needed and returns exactly the frame.
template <class Build>
Bytes build(Build&& b) {
  Bytes buf(dp::kMaxArpNdFrameLen + 16, 0xee);
  const size_t len = b(std::span<uint8_t>(buf));
  EXPECT_GT(len, 0u);
  buf.resize(len);
  return buf;
}

// ---- ARP ----

TEST(Arp, RequestIsBroadcastPaddedAndParses) {
  const Bytes got = build([](auto buf) {
    return dp::build_arp_request(buf, eth(kLbMac, kBroadcast), ip("198.18.1.1"), ip("198.18.1.20"));
  });
  const Bytes want = Packet()
                         .eth(kLbMac, kBroadcast)
                         .arp(dp::kArpRequest, kLbMac, "198.18.1.1", kZeroMac, "198.18.1.20")
                         .pad(18)
                         .bytes();
  EXPECT_EQ(got, want);
  ASSERT_EQ(got.size(), dp::kMinFrameLen);
  const dp::Parsed p = parsed(got);
  EXPECT_EQ(p.l3, dp::L3::arp);
  EXPECT_EQ(p.arp.op, dp::kArpRequest);
  EXPECT_EQ(p.arp.sender_ip, ip("198.18.1.1"));
  EXPECT_EQ(p.arp.target_ip, ip("198.18.1.20"));
}

TEST(Arp, ReplyKeepsTheRequestsVlanTags) {
  const Bytes request = Packet()
                            .eth(kClientMac, kBroadcast)
                            .vlan(0x2064, dp::kEtherTypeQinQ)
                            .vlan(200)
                            .arp(dp::kArpRequest, kClientMac, "198.18.1.10", kZeroMac, "198.18.1.1")
                            .pad(10)
                            .bytes();
  const dp::Parsed req = parsed(request);
  const dp::EthHeader e = dp::answer_header(request, req, mac(kLbMac), mac(kClientMac));
  const Bytes got = build([&](auto buf) {
    return dp::build_arp_reply(buf, e, ip("198.18.1.1"), mac(kClientMac), ip("198.18.1.10"));
  });
  const Bytes want = Packet()
                         .eth(kLbMac, kClientMac)
                         .vlan(0x2064, dp::kEtherTypeQinQ)
                         .vlan(200)
                         .arp(dp::kArpReply, kLbMac, "198.18.1.1", kClientMac, "198.18.1.10")
                         .pad(10)
                         .bytes();
  EXPECT_EQ(got, want);
}

TEST(Arp, GratuitousIsAnAnnouncement) {
  // RFC 5227 3: a request, sender IP = target IP, target hardware address zero.
  const Bytes got = build([](auto buf) {
    return dp::build_gratuitous_arp(buf, eth(kLbMac, kBroadcast), ip("198.18.100.1"));
  });
  const Bytes want = Packet()
                         .eth(kLbMac, kBroadcast)
                         .arp(dp::kArpRequest, kLbMac, "198.18.100.1", kZeroMac, "198.18.100.1")
                         .pad(18)
                         .bytes();
  EXPECT_EQ(got, want);
}

TEST(Arp, TooSmallABufferWritesNothing) {
  Bytes buf(59, 0xee);
  EXPECT_EQ(dp::build_arp_request(buf, eth(kLbMac, kBroadcast), ip("198.18.1.1"), ip("198.18.1.2")),
            0u);
  EXPECT_EQ(buf, Bytes(59, 0xee));
}

// ---- Neighbour discovery: addresses ----

TEST(Nd, SolicitedNodeAddressAndMulticastMac) {
  struct Case {
    const char* target;
    const char* group;
    Mac mac;
  };
  const std::vector<Case> cases = {
      {"2001:db8::abcd:ef12:3456", "ff02::1:ff12:3456", {0x33, 0x33, 0xff, 0x12, 0x34, 0x56}},
      {"fe80::1", "ff02::1:ff00:1", {0x33, 0x33, 0xff, 0x00, 0x00, 0x01}},
      {"2001:db8:1::20", "ff02::1:ff00:20", {0x33, 0x33, 0xff, 0x00, 0x00, 0x20}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    const dp::IpAddr g = dp::solicited_node(ip(c.target));
    EXPECT_EQ(g, ip(c.group));
    EXPECT_EQ(dp::ipv6_multicast_mac(g), mac(c.mac));
    EXPECT_TRUE(dp::is_ipv6_multicast(g));
  }
  EXPECT_EQ(dp::all_nodes(), ip("ff02::1"));
  EXPECT_EQ(dp::ipv6_multicast_mac(dp::all_nodes()), mac({0x33, 0x33, 0, 0, 0, 1}));
  EXPECT_FALSE(dp::is_ipv6_multicast(ip("2001:db8::1")));
}

// ---- Neighbour discovery: builders ----

TEST(Nd, SolicitationToTheSolicitedNodeGroup) {
  const Mac group_mac{0x33, 0x33, 0xff, 0x00, 0x00, 0x20};
  dp::EthHeader e = eth(kLbMac, group_mac);
  const Bytes got = build([&](auto buf) {
    return dp::build_ns(buf, e, ip("2001:db8:1::1"), ip("ff02::1:ff00:20"), ip("2001:db8:1::20"));
  });
  const Bytes want = Packet()
                         .eth(kLbMac, group_mac)
                         .ipv6("2001:db8:1::1", "ff02::1:ff00:20")
                         .ndp_ns("2001:db8:1::20", kLbMac)
                         .bytes();
  EXPECT_EQ(got, want);
  EXPECT_EQ(checksum_errors(got), "");
  dp::NdMessage m;
  ASSERT_EQ(dp::parse_nd(got, parsed(got), m), NdError::none);
  EXPECT_EQ(m.type, dp::kNdNeighborSolicit);
  EXPECT_EQ(m.target, ip("2001:db8:1::20"));
  EXPECT_TRUE(m.has_ll);
  EXPECT_EQ(m.ll, mac(kLbMac));
}

TEST(Nd, AdvertisementWithFlagsAndVlan) {
  dp::EthHeader e = eth(kLbMac, kClientMac);
  e.vlan_count = 1;
  e.vlan_tpid[0] = dp::kEtherTypeVlan;
  e.vlan_tci[0] = 42;
  const uint8_t flags = dp::kNaSolicited | dp::kNaOverride;
  const Bytes got = build([&](auto buf) {
    return dp::build_na(buf, e, ip("2001:db8:1::1"), ip("2001:db8:1::10"), ip("2001:db8:1::1"),
                        flags);
  });
  const Bytes want = Packet()
                         .eth(kLbMac, kClientMac)
                         .vlan(42)
                         .ipv6("2001:db8:1::1", "2001:db8:1::10")
                         .ndp_na("2001:db8:1::1", flags, kLbMac)
                         .bytes();
  EXPECT_EQ(got, want);
  EXPECT_EQ(checksum_errors(got), "");
  dp::NdMessage m;
  ASSERT_EQ(dp::parse_nd(got, parsed(got), m), NdError::none);
  EXPECT_EQ(m.flags, flags);
  EXPECT_EQ(m.ll, mac(kLbMac));
}

TEST(Nd, UnsolicitedAdvertisementGoesToAllNodesWithOverride) {
  const Bytes got = build([](auto buf) {
    return dp::build_unsolicited_na(buf, eth(kLbMac, kBroadcast), ip("2001:db8:100::1"));
  });
  const Bytes want = Packet()
                         .eth(kLbMac, {0x33, 0x33, 0, 0, 0, 1})
                         .ipv6("2001:db8:100::1", "ff02::1")
                         .ndp_na("2001:db8:100::1", dp::kNaOverride, kLbMac)
                         .bytes();
  EXPECT_EQ(got, want);
  dp::NdMessage m;
  EXPECT_EQ(dp::parse_nd(got, parsed(got), m), NdError::none);
}

TEST(Nd, BuildersRefuseASmallBuffer) {
  dp::EthHeader e = eth(kLbMac, kClientMac);
  e.vlan_count = 2;
  Bytes buf(dp::kMaxArpNdFrameLen - 1, 0xee);
  EXPECT_EQ(dp::build_na(buf, e, ip("2001:db8::1"), ip("2001:db8::2"), ip("2001:db8::1"), 0), 0u);
  EXPECT_EQ(buf, Bytes(dp::kMaxArpNdFrameLen - 1, 0xee));
  buf.resize(dp::kMaxArpNdFrameLen);
  EXPECT_EQ(dp::build_na(buf, e, ip("2001:db8::1"), ip("2001:db8::2"), ip("2001:db8::1"), 0),
            dp::kMaxArpNdFrameLen);
}

// ---- Neighbour discovery: validation (RFC 4861 7.1.1, 7.1.2) ----

Bytes option(uint8_t type, uint8_t len8, uint8_t fill = 0x5a) {
  Bytes o(size_t(len8 == 0 ? 8 : len8 * 8), fill);
  o[0] = type;
  o[1] = len8;
  return o;
}

Bytes target_and(const char* target, const std::vector<Bytes>& options) {
  const dp::IpAddr t = ip(target);
  Bytes b(t.bytes.begin(), t.bytes.end());
  for (const Bytes& o : options)
    b.insert(b.end(), o.begin(), o.end());
  return b;
}

Packet from_client(const char* src, const char* dst = "ff02::1:ff00:1") {
  return Packet().eth(kClientMac, kLbMac).ipv6(src, dst);
}

struct NdCase {
  std::string name;
  Bytes frame;
  NdError want;
};

std::vector<NdCase> nd_cases() {
  const char* kTarget = "2001:db8:1::1";
  return {
      {"ns", from_client("2001:db8:1::10").ndp_ns(kTarget, kClientMac).bytes(), NdError::none},
      {"ns_without_sllao", from_client("2001:db8:1::10").ndp_ns(kTarget).bytes(), NdError::none},
      {"ns_dad", from_client("::").ndp_ns(kTarget).bytes(), NdError::none},
      {"ns_unknown_option_skipped",
       from_client("2001:db8:1::10")
           .icmp(135, 0, 0)
           .ttl(255)
           .payload(target_and(kTarget, {option(14, 1), option(1, 1)}))
           .bytes(),
       NdError::none},
      {"na",
       from_client("2001:db8:1::10", "2001:db8:1::1")
           .ndp_na(kTarget, dp::kNaSolicited, kClientMac)
           .bytes(),
       NdError::none},
      {"na_unsolicited_to_all_nodes",
       from_client("2001:db8:1::10", "ff02::1")
           .ndp_na(kTarget, dp::kNaOverride, kClientMac)
           .bytes(),
       NdError::none},
      {"echo_request", from_client("2001:db8:1::10").icmp_echo(1, 1).bytes(), NdError::not_nd},
      {"router_solicitation",
       from_client("2001:db8:1::10", "ff02::2").icmp(133, 0).ttl(255).bytes(), NdError::not_nd},
      {"arp", Packet().arp(1, kClientMac, "198.18.1.10", kZeroMac, "198.18.1.1").bytes(),
       NdError::not_nd},
      {"fragmented",
       from_client("2001:db8:1::10").fragment(0, true).ndp_ns(kTarget, kClientMac).bytes(),
       NdError::fragmented},
      {"hop_limit_64", from_client("2001:db8:1::10").ndp_ns(kTarget, kClientMac).ttl(64).bytes(),
       NdError::hop_limit},
      {"code_1",
       from_client("2001:db8:1::10")
           .icmp(135, 1, 0)
           .ttl(255)
           .payload(target_and(kTarget, {}))
           .bytes(),
       NdError::code},
      {"too_short",
       from_client("2001:db8:1::10").icmp(135, 0, 0).ttl(255).payload(Bytes(15, 0)).bytes(),
       NdError::too_short},
      {"multicast_target", from_client("2001:db8:1::10").ndp_ns("ff02::1", kClientMac).bytes(),
       NdError::multicast_target},
      {"option_length_zero",
       from_client("2001:db8:1::10")
           .icmp(135, 0, 0)
           .ttl(255)
           .payload(target_and(kTarget, {option(1, 0)}))
           .bytes(),
       NdError::bad_option},
      {"option_past_the_packet",
       from_client("2001:db8:1::10")
           .icmp(135, 0, 0)
           .ttl(255)
           .payload(target_and(kTarget, {Bytes{1, 2, 0, 0, 0, 0, 0, 0}}))
           .bytes(),
       NdError::bad_option},
      {"option_header_cut",
       from_client("2001:db8:1::10")
           .icmp(135, 0, 0)
           .ttl(255)
           .payload(target_and(kTarget, {Bytes{1}}))
           .bytes(),
       NdError::bad_option},
      {"dad_with_sllao", from_client("::").ndp_ns(kTarget, kClientMac).bytes(),
       NdError::unspecified_source},
      {"dad_not_to_solicited_node", from_client("::", "ff02::1").ndp_ns(kTarget).bytes(),
       NdError::unspecified_source},
      {"na_solicited_to_multicast",
       from_client("2001:db8:1::10", "ff02::1")
           .ndp_na(kTarget, dp::kNaSolicited, kClientMac)
           .bytes(),
       NdError::solicited_to_multicast},
  };
}

TEST(Nd, ParseValidatesPerRfc4861) {
  for (const NdCase& c : nd_cases()) {
    SCOPED_TRACE(c.name);
    const Bytes exact(c.frame);  // ASan: nothing read past the frame
    dp::NdMessage m;
    EXPECT_EQ(dp::nd_error_name(dp::parse_nd(exact, parsed(exact), m)), dp::nd_error_name(c.want));
  }
}

TEST(Nd, ParseRefusesABadChecksum) {
  Bytes f = from_client("2001:db8:1::10").ndp_ns("2001:db8:1::1", kClientMac).bytes();
  f[14 + 40 + 2] ^= 0x01;
  dp::NdMessage m;
  EXPECT_EQ(dp::parse_nd(f, parsed(f), m), NdError::checksum);
}

TEST(Nd, ParseFillsTheMessage) {
  const Bytes f = from_client("2001:db8:1::10", "2001:db8:1::1")
                      .ndp_na("2001:db8:1::1", 0xff, kClientMac)
                      .bytes();
  dp::NdMessage m;
  ASSERT_EQ(dp::parse_nd(f, parsed(f), m), NdError::none);
  EXPECT_EQ(m.type, dp::kNdNeighborAdvert);
  EXPECT_EQ(m.src, ip("2001:db8:1::10"));
  EXPECT_EQ(m.dst, ip("2001:db8:1::1"));
  EXPECT_EQ(m.target, ip("2001:db8:1::1"));
  EXPECT_EQ(m.flags, dp::kNaRouter | dp::kNaSolicited | dp::kNaOverride);  // reserved bits off
  EXPECT_TRUE(m.has_ll);
  EXPECT_EQ(m.ll, mac(kClientMac));

  // An NA's source link-layer option is not the target's address; a 16-byte option is read.
  const Bytes other = from_client("2001:db8:1::10", "2001:db8:1::1")
                          .icmp(136, 0, 0)
                          .ttl(255)
                          .payload(target_and("2001:db8:1::1", {option(1, 1), option(2, 2, 0x07)}))
                          .bytes();
  ASSERT_EQ(dp::parse_nd(other, parsed(other), m), NdError::none);
  EXPECT_TRUE(m.has_ll);
  EXPECT_EQ(m.ll, mac({0x07, 0x07, 0x07, 0x07, 0x07, 0x07}));
}

// A valid NS cut at every length, its IPv6 payload length made to agree, is refused and never
// read past (run under ASan).
TEST(Nd, TruncatedMessagesAreRefusedSafely) {
  const Bytes full = from_client("2001:db8:1::10").ndp_ns("2001:db8:1::1", kClientMac).bytes();
  const size_t icmp_off = 14 + 40;
  for (size_t n = icmp_off; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + long(n));
    dp::store_be16(cut.data() + 18, uint16_t(n - icmp_off));
    dp::Parsed p;
    if (dp::parse(cut, p) != dp::DropReason::none) continue;  // shorter than an ICMP header
    dp::NdMessage m;
    EXPECT_NE(dp::parse_nd(cut, p, m), NdError::none) << n;
  }
}

}  // namespace
}  // namespace magline::test
