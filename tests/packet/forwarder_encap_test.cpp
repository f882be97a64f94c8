// IPIP and GUE through the forwarding pipeline: direct return to backends behind a router,
// entropy in the outer header, the path MTU, and ICMP errors through the tunnel.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "dataplane/bytes.hpp"
#include "dataplane/encap.hpp"
#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpSyn;

constexpr const char* kVip = "198.18.100.1";
constexpr const char* kVip6 = "2001:db8:100::1";
constexpr const char* kBackend = "198.19.200.7";    // behind the gateway
constexpr const char* kBackend6 = "2001:db8:200::7";
constexpr Mac kGatewayMac{0x02, 0, 0, 0, 0, 0x0b};

class ForwarderEncap : public ::testing::Test {
 protected:
  void SetUp() override {
    h.route("198.19.200.0/24", "198.18.0.254");
    h.route("2001:db8:200::/64", "2001:db8::fe");
    h.neighbor("198.18.0.254", kGatewayMac);
    h.neighbor("2001:db8::fe", kGatewayMac);
  }

  void web(ForwardMode mode, const char* vip, const char* backend) {
    h.add(service("web", vip, 80, Protocol::tcp, mode, {{backend, 80}}));
  }

  Harness h;
};

Packet from_client(const char* vip, uint16_t sport, uint8_t flags) {
  return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, vip).dont_fragment()
      .tcp(sport, 80, flags);
}

// A TCP segment whose IP packet is `ip_len` bytes.
Packet sized(const char* vip, uint16_t ip_len, bool df = true) {
  Packet p = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, vip);
  if (df) p.dont_fragment();
  return p.tcp(40000, 80, kTcpAck).payload(Bytes(ip_len - 40, 'x'));
}

TEST_F(ForwarderEncap, IpipCarriesTheClientsPacketUnchangedToABackendBehindARouter) {
  web(ForwardMode::ipip, kVip, kBackend);
  for (const uint8_t flags : {kTcpSyn, kTcpAck, uint8_t(kTcpAck | dp::kTcpPsh)}) {
    const Packet in = from_client(kVip, 40000, flags).payload("x");
    const Outcome o = h.run(in.bytes());
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    EXPECT_EQ(o.frame, Packet()
                           .eth(kLbMac, kGatewayMac)
                           .ipv4(kLbIp, kBackend)
                           .dont_fragment()
                           .protocol(dp::kProtoIpip)
                           .payload(in.l3_bytes())
                           .bytes());
  }
  // As under L2 DSR: the SYN wrote nothing, the ACK opened the one (forward) entry.
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 1u);
  EXPECT_EQ(h.forwarder().counters().new_connections, 1u);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 1u);
}

TEST_F(ForwarderEncap, GueCarriesIpv4ToAnIpv6Backend) {
  web(ForwardMode::gue, kVip, kBackend6);
  uint16_t sport = 0;
  for (const uint8_t flags : {kTcpSyn, kTcpAck}) {
    const Packet in = from_client(kVip, 40000, flags);
    const Outcome o = h.run(in.bytes());
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    EXPECT_EQ(checksum_errors(o.frame), "");
    dp::Parsed p;
    ASSERT_EQ(dp::parse(o.frame, p), DropReason::none);
    EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(kLbIp6));
    EXPECT_EQ(p.key.dst_addr(), *dp::parse_ip(kBackend6));
    EXPECT_EQ(p.key.proto, dp::kProtoUdp);
    EXPECT_EQ(p.key.dport, dp::kDefaultGuePort);
    EXPECT_GE(p.key.sport, dp::kGueSourcePortBase);
    if (sport != 0) {
      EXPECT_EQ(p.key.sport, sport);  // one flow, one source port
    }
    sport = p.key.sport;
    const Bytes l3 = in.l3_bytes();
    EXPECT_EQ(Bytes(o.frame.begin() + p.payload_off, o.frame.end()), l3);
    EXPECT_EQ(Bytes(o.frame.begin(), o.frame.begin() + 6),
              Bytes(kGatewayMac.begin(), kGatewayMac.end()));
  }
}

// With a source prefix, IPIP's outer source varies by flow (the backend's RSS hashes it) and
// stays the same within a flow.
TEST_F(ForwarderEncap, ASourcePrefixSpreadsFlowsOverOuterSources) {
  dp::EncapSettings e;
  e.source_v4 = *dp::parse_prefix("198.18.250.0/24", dp::HostBits::reject);
  h.encapsulation(e);
  web(ForwardMode::ipip, kVip, kBackend);
  std::set<Bytes> sources;
  for (uint16_t i = 0; i < 200; ++i) {
    Bytes first;
    for (const uint8_t flags : {kTcpSyn, kTcpAck}) {
      const Outcome o = h.run(from_client(kVip, uint16_t(20000 + i), flags).bytes());
      ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
      const Bytes src(o.frame.begin() + 26, o.frame.begin() + 30);
      EXPECT_EQ(Bytes(src.begin(), src.begin() + 3), (Bytes{198, 18, 250}));
      if (first.empty()) first = src;
      EXPECT_EQ(src, first);
    }
    sources.insert(first);
  }
  EXPECT_GT(sources.size(), 100u);
}

// What the client gets back instead of its packet: ICMP "fragmentation needed" from the VIP,
// with the MTU that fits before encapsulation.
void expect_frag_needed(const Outcome& o, uint16_t mtu) {
  ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(o.frame, p), DropReason::none);
  EXPECT_EQ(checksum_errors(o.frame), "");
  EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(kVip));
  EXPECT_EQ(p.key.dst_addr(), *dp::parse_ip(kClient));
  EXPECT_EQ(p.icmp_type, dp::kIcmpUnreachable);
  EXPECT_EQ(p.icmp_code, dp::kIcmpFragNeeded);
  EXPECT_EQ(dp::load_be16(&o.frame[p.l4_off + 6]), mtu);
  EXPECT_EQ(Bytes(o.frame.begin(), o.frame.begin() + 6),
            Bytes(kRouterMac.begin(), kRouterMac.end()));
}

TEST_F(ForwarderEncap, APacketTooBigOnceEncapsulatedIsAnsweredWithThePathMtu) {
  web(ForwardMode::ipip, kVip, kBackend);
  ASSERT_EQ(h.run(sized(kVip, 1480).bytes()).verdict, Verdict::tx);  // 1500 with IPIP: fits
  expect_frag_needed(h.run(sized(kVip, 1481).bytes()), 1480);
  EXPECT_EQ(h.forwarder().counters().too_big, 1u);
}

// Without DF a router would fragment: the packet is encapsulated as it is and handed to the slow
// path to be split (encapsulation.fragment, on by default), for the backend's next hop.
TEST_F(ForwarderEncap, IpipWithoutDfTooBigGoesEncapsulatedToTheSlowPathToBeSplit) {
  web(ForwardMode::ipip, kVip, kBackend);
  const Outcome o = h.run(sized(kVip, 1481, false).bytes());
  ASSERT_EQ(o.verdict, Verdict::slow) << to_string(o);
  EXPECT_EQ(o.slow, dp::SlowReason::split);
  EXPECT_EQ(dp::to_string(o.next_hop.ip), "198.18.0.254");  // the backend's gateway
  dp::Parsed outer;
  ASSERT_EQ(dp::parse(o.frame, outer), DropReason::none);
  EXPECT_EQ(outer.key.proto, dp::kProtoIpip);
  EXPECT_EQ(dp::to_string(outer.key.dst_addr()), kBackend);
  EXPECT_EQ(outer.l3_end - outer.l3_off, 1501);
  const auto split = dp::plan_inner_split(o.frame, outer, 1500);
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->count, 2u);
  // Counted as the frontend's and the backend's traffic, as a packet sent whole is.
  EXPECT_EQ(h.traffic().frontend(0).load().packets, 1u);
  EXPECT_EQ(h.traffic().backend(1).traffic.load().bytes, 1481u + 14);
}

TEST_F(ForwarderEncap, WithoutSplittingIpipWithoutDfTooBigIsDropped) {
  dp::EncapSettings e;
  e.fragment = false;
  h.encapsulation(e);
  web(ForwardMode::ipip, kVip, kBackend);
  const Outcome o = h.run(sized(kVip, 1481, false).bytes());
  EXPECT_EQ(o.verdict, Verdict::drop);
  EXPECT_EQ(o.reason, DropReason::encap_too_big);
}

// The slow path's share: kSplitPerWindow packets per window, the rest dropped and counted.
TEST_F(ForwarderEncap, SplittingIsBoundedPerWorker) {
  web(ForwardMode::ipip, kVip, kBackend);
  std::vector<Bytes> frames(dp::kSplitPerWindow + 5, sized(kVip, 1481, false).bytes());
  size_t slow = 0, dropped = 0;
  for (size_t i = 0; i < frames.size(); i += 50) {
    const std::vector<Bytes> burst(frames.begin() + long(i),
                                   frames.begin() + long(std::min(frames.size(), i + 50)));
    for (const Outcome& o : h.run_burst(burst, 1000)) {
      slow += o.verdict == Verdict::slow;
      dropped += o.verdict == Verdict::drop;
    }
  }
  EXPECT_EQ(slow, dp::kSplitPerWindow);
  EXPECT_EQ(dropped, 5u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::encap_fragment_limited)], 5u);
  EXPECT_EQ(h.run(sized(kVip, 1481, false).bytes(), 1000 + dp::kEchoWindowMs).verdict,
            Verdict::slow);  // the next window
}

TEST_F(ForwarderEncap, TheConfiguredPathMtuCountsAndGueAddsItsUdpHeader) {
  dp::EncapSettings e;
  e.mtu = 1400;
  h.encapsulation(e);
  web(ForwardMode::gue, kVip, kBackend);
  ASSERT_EQ(h.run(sized(kVip, 1372).bytes()).verdict, Verdict::tx);
  expect_frag_needed(h.run(sized(kVip, 1373).bytes()), 1372);
}

TEST_F(ForwarderEncap, AnIpv6PacketTooBigGetsPacketTooBig) {
  h.add(service("web6", kVip6, 53, Protocol::udp, ForwardMode::ipip, {{kBackend6, 53}}));
  const auto datagram = [](uint16_t ip_len) {
    return Packet().eth(kRouterMac, kLbMac).ipv6(kClient6, kVip6).udp(40000, 53)
        .payload(Bytes(ip_len - 48, 'x')).bytes();
  };
  ASSERT_EQ(h.run(datagram(1460)).verdict, Verdict::tx);
  const Outcome o = h.run(datagram(1461));
  ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(o.frame, p), DropReason::none);
  EXPECT_EQ(checksum_errors(o.frame), "");
  EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(kVip6));
  EXPECT_EQ(p.icmp_type, dp::kIcmpv6PacketTooBig);
  EXPECT_EQ(dp::load_be32(&o.frame[p.l4_off + 4]), 1460u);
  EXPECT_LE(o.frame.size() - p.l3_off, 1280u);  // RFC 4443 2.4(c)
}

// A router on the way to a backend with a smaller link answers Magline's outer packet with
// "fragmentation needed", to the outer source: the worker hands it to the control thread, which
// learns the backend's path MTU; published, it lowers what fits for that backend alone, until
// forgotten.
TEST_F(ForwarderEncap, ARoutersErrorAboutATunnelGoesToTheControlThreadAndItsMtuCounts) {
  dp::EncapSettings e;
  e.source_v4 = *dp::parse_prefix("198.18.250.0/24", dp::HostBits::reject);
  h.encapsulation(e);
  web(ForwardMode::ipip, kVip, kBackend);
  h.add(service("other", "198.18.100.2", 80, Protocol::tcp, ForwardMode::ipip,
                {{"198.19.200.8", 80}}));
  const Outcome sent = h.run(sized(kVip, 1480).bytes());
  ASSERT_EQ(sent.verdict, Verdict::tx);
  const Bytes outer(sent.frame.begin() + 14, sent.frame.end());
  const std::string outer_src = dp::to_string(dp::IpAddr::v4(dp::load_be32(&outer[12])));
  const Packet error = Packet().eth(kGatewayMac, kLbMac).ipv4("198.18.0.254", outer_src)
      .icmp_error(dp::kIcmpUnreachable, dp::kIcmpFragNeeded,
                  Packet().ipv4(outer_src, kBackend).protocol(dp::kProtoIpip)
                      .payload(Bytes(outer.begin() + 20, outer.begin() + 48)),
                  Packet::kWhole, 1300);
  const Outcome o = h.run(error.bytes());
  ASSERT_EQ(o.verdict, Verdict::slow) << to_string(o);
  EXPECT_EQ(o.slow, dp::SlowReason::path_mtu);

  h.path_mtu(kBackend, 1300);
  ASSERT_EQ(h.run(sized(kVip, 1280).bytes()).verdict, Verdict::tx);
  expect_frag_needed(h.run(sized(kVip, 1281).bytes()), 1280);
  ASSERT_EQ(h.run(sized("198.18.100.2", 1480).bytes()).verdict, Verdict::tx);  // not its path
  h.path_mtu(kBackend, 0);
  EXPECT_EQ(h.run(sized(kVip, 1480).bytes()).verdict, Verdict::tx);
}

// Such errors reach the control thread at most kEchoPerWindow per window and worker: a flood of
// them cannot crowd ARP out of the slow path's ring.
TEST_F(ForwarderEncap, RoutersErrorsAboutTunnelsAreBoundedPerWorker) {
  web(ForwardMode::ipip, kVip, kBackend);
  const Bytes error = Packet().eth(kGatewayMac, kLbMac).ipv4("198.18.0.254", kLbIp)
      .icmp_error(dp::kIcmpUnreachable, dp::kIcmpFragNeeded,
                  Packet().ipv4(kLbIp, kBackend).protocol(dp::kProtoIpip)
                      .payload(sized(kVip, 100).l3_bytes()),
                  Packet::kWhole, 1300).bytes();
  size_t slow = 0;
  for (const Outcome& o : h.run_burst(std::vector<Bytes>(dp::kEchoPerWindow + 3, error))) {
    slow += o.verdict == Verdict::slow;
  }
  EXPECT_EQ(slow, dp::kEchoPerWindow);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::path_mtu_rate_limited)], 3u);
}

// The same error quoting a tunnel packet from an address that is not Magline's is about
// nothing Magline sent.
TEST_F(ForwarderEncap, AnErrorAboutSomeoneElsesTunnelIsDropped) {
  web(ForwardMode::ipip, kVip, kBackend);
  const Packet error = Packet().eth(kGatewayMac, kLbMac).ipv4("198.18.0.254", kLbIp)
      .icmp_error(dp::kIcmpUnreachable, dp::kIcmpFragNeeded,
                  Packet().ipv4("198.18.0.77", kBackend).protocol(dp::kProtoIpip)
                      .payload(sized(kVip, 100).l3_bytes()),
                  Packet::kWhole, 1300);
  const Outcome o = h.run(error.bytes());
  EXPECT_EQ(o.verdict, Verdict::drop) << to_string(o);
  EXPECT_EQ(o.reason, DropReason::icmp_error_no_flow);
}

// An ICMP error from the client's side about the backend's reply (sent directly, from the VIP)
// goes to the backend through the connection's tunnel, with the connection's outer source.
TEST_F(ForwarderEncap, AnIcmpErrorAboutAReplyGoesThroughTheTunnel) {
  dp::EncapSettings e;
  e.source_v4 = *dp::parse_prefix("198.18.250.0/24", dp::HostBits::reject);
  h.encapsulation(e);
  web(ForwardMode::ipip, kVip, kBackend);
  h.run(from_client(kVip, 40000, kTcpSyn).bytes());
  const Outcome ack = h.run(from_client(kVip, 40000, kTcpAck).bytes());
  ASSERT_EQ(ack.verdict, Verdict::tx);
  const Packet error = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kVip).icmp_error(
      dp::kIcmpUnreachable, dp::kIcmpFragNeeded,
      Packet().ipv4(kVip, kClient).tcp(80, 40000, kTcpAck).payload("reply"), Packet::kWhole,
      1400);
  const Outcome o = h.run(error.bytes());
  ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
  EXPECT_EQ(o.frame[14 + 9], dp::kProtoIpip);
  EXPECT_EQ(Bytes(o.frame.begin() + 26, o.frame.begin() + 34),
            Bytes(ack.frame.begin() + 26, ack.frame.begin() + 34));  // the same outer addresses
  EXPECT_EQ(checksum_errors(o.frame), "");
  EXPECT_EQ(Bytes(o.frame.begin() + 34, o.frame.end()), error.l3_bytes());
  EXPECT_EQ(h.forwarder().counters().icmp_errors, 1u);
}

}  // namespace
}  // namespace magline::test
