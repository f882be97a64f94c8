// Packet tables through the forwarding pipeline: {name, input, expected verdict, expected
// output}. Multi-step cases (a connection and its replies) are written out as sequences.
#include <gtest/gtest.h>

#include <set>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/forwarder_fixture.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpFin;
using dp::kTcpSyn;

struct Case {
  std::string name;
  Packet input;
  Verdict verdict;
  DropReason reason = DropReason::none;
};

TEST_F(ForwarderTest, VerdictsForFramesThatAreNotForwarded) {
  const std::vector<Case> cases = {
      {"ARP goes to the slow path",
       Packet().eth(kClientMac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
           .arp(1, kClientMac, kClient, {}, kLbIp),
       Verdict::slow},
      {"neighbour solicitation goes to the slow path",
       Packet().ipv6(kClient6, "ff02::1:ff00:1").ttl(255).icmp(135, 0), Verdict::slow},
      {"unknown destination", Packet().ipv4(kClient, "198.18.100.99").tcp(40000, 80, kTcpSyn),
       Verdict::drop, DropReason::no_service},
      {"known address, unknown port",
       Packet().ipv4(kClient, "198.18.100.1").tcp(40000, 81, kTcpSyn), Verdict::drop,
       DropReason::no_service},
      {"known port, other protocol", Packet().ipv4(kClient, "198.18.100.1").udp(40000, 80),
       Verdict::drop, DropReason::no_service},
      {"not our MAC",
       Packet().eth(kClientMac, kBackendMac).ipv4(kClient, "198.18.100.1").tcp(40000, 80),
       Verdict::drop, DropReason::l2_not_for_us},
      {"our MAC but for its last byte",
       Packet().eth(kClientMac, {0x02, 0x00, 0x00, 0x00, 0x00, 0x03}).ipv4(kClient, "198.18.100.1")
           .tcp(40000, 80),
       Verdict::drop, DropReason::l2_not_for_us},
      {"our MAC but for its first byte",
       Packet().eth(kClientMac, {0x06, 0x00, 0x00, 0x00, 0x00, 0x02}).ipv4(kClient, "198.18.100.1")
           .tcp(40000, 80),
       Verdict::drop, DropReason::l2_not_for_us},
      {"other ether type", Packet().ether_type(0x88cc).payload("lldp"), Verdict::drop,
       DropReason::not_ip},
      {"malformed: IHL below 5", Packet().ipv4(kClient, "198.18.100.1").ihl(4).tcp(1, 80),
       Verdict::drop, DropReason::ipv4_bad_ihl},
      {"malformed: frame cut inside TCP",
       Packet().ipv4(kClient, "198.18.100.1").tcp(40000, 80).truncate(40), Verdict::drop,
       DropReason::ipv4_total_len_beyond_frame},
      {"malformed: TCP data offset below 5",
       Packet().ipv4(kClient, "198.18.100.1").tcp(40000, 80).data_offset(4), Verdict::drop,
       DropReason::tcp_bad_data_offset},
      {"multicast listener report",
       Packet().eth(kClientMac, {0x33, 0x33, 0, 0, 0, 0x16}).ipv6(kClient6, "ff02::16").icmp(143, 0),
       Verdict::drop, DropReason::ip_multicast},
      {"limited broadcast", Packet().eth(kClientMac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
           .ipv4(kClient, "255.255.255.255").udp(68, 67),
       Verdict::drop, DropReason::ip_multicast},
      {"IPv4 multicast", Packet().eth(kClientMac, {0x01, 0x00, 0x5e, 0x01, 0x01, 0x01})
           .ipv4(kClient, "239.1.1.1").udp(5000, 5000),
       Verdict::drop, DropReason::ip_multicast},
      {"IPv4 multicast to our MAC", Packet().ipv4(kClient, "224.0.0.251").udp(5353, 5353),
       Verdict::drop, DropReason::ip_multicast},
      {"fragment of a ping", Packet().ipv4(kClient, "198.18.100.1").fragment(0, true)
           .icmp_echo(1, 1), Verdict::drop, DropReason::ip_fragment},
      {"later fragment whose first was not seen (held for it)",
       Packet().ipv4(kClient, "198.18.100.1").fragment(1480, false, 77)
           .protocol(dp::kProtoTcp).payload("rest"),
       Verdict::held, DropReason::none},
      {"echo request to a VIP (answered by the slow path)",
       Packet().ipv4(kClient, "198.18.100.1").icmp_echo(1, 1), Verdict::slow},
      {"echo reply", Packet().ipv4(kClient, "198.18.100.1").icmp_echo(1, 1, true),
       Verdict::drop, DropReason::icmp_unsupported},
      {"outside the source ranges",
       Packet().ipv4(kClient, "198.18.100.7").tcp(40000, 80, kTcpSyn), Verdict::drop,
       DropReason::source_range_denied},
      {"no backend, service drops",
       Packet().ipv4(kClient, "198.18.100.6").tcp(40000, 80, kTcpSyn), Verdict::drop,
       DropReason::no_backend},
      {"TTL 1 to a backend", Packet().ipv4(kClient, "198.18.100.1").ttl(1).tcp(40001, 80, kTcpSyn),
       Verdict::drop, DropReason::ttl_exceeded},
      {"backend with no route",
       Packet().ipv4(kClient, "198.18.100.8").tcp(40000, 80, kTcpSyn), Verdict::drop,
       DropReason::backend_unreachable},
      {"reply-looking frame with no connection",
       Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp).tcp(8080, 5555, kTcpAck),
       Verdict::drop, DropReason::no_service},
  };
  for (const Case& c : cases) {
    const Outcome o = h.run(c.input.bytes());
    EXPECT_EQ(o.verdict, c.verdict) << c.name << ": " << to_string(o);
    if (c.verdict == Verdict::drop) {
      EXPECT_EQ(o.reason, c.reason) << c.name << ": " << to_string(o);
    }
  }
}

TEST_F(ForwarderTest, FullNatTcpV4ForwardAndReply) {
  const Outcome syn = h.run(
      Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1").tcp(40000, 80, kTcpSyn)
          .bytes());
  ASSERT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
  const uint16_t snat = sport_of(syn.frame);
  EXPECT_GE(snat, 1024);
  EXPECT_EQ(syn.frame, Packet().eth(kLbMac, kBackendMac).ipv4(kLbIp, "198.18.1.10").ttl(63)
                           .tcp(snat, 8080, kTcpSyn).bytes());

  const Outcome synack = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                                   .tcp(8080, snat, kTcpSyn | kTcpAck).bytes());
  ASSERT_EQ(synack.verdict, Verdict::tx) << to_string(synack);
  EXPECT_EQ(synack.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.1", kClient).ttl(63)
                              .tcp(80, 40000, kTcpSyn | kTcpAck).bytes());

  // The rest of the connection keeps its source port.
  const Outcome ack = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(40000, 80, kTcpAck).payload("GET /").bytes());
  ASSERT_EQ(ack.verdict, Verdict::tx);
  EXPECT_EQ(sport_of(ack.frame), snat);
  EXPECT_EQ(h.forwarder().counters().new_connections, 1u);
  EXPECT_EQ(h.forwarder().counters().replies, 1u);
}

TEST_F(ForwarderTest, FullNatV6AndSctp) {
  const Outcome syn6 = h.run(Packet().eth(kRouterMac, kLbMac).ipv6(kClient6, "2001:db8:100::1")
                                 .tcp(40000, 80, kTcpSyn).bytes());
  ASSERT_EQ(syn6.verdict, Verdict::tx) << to_string(syn6);
  const uint16_t snat6 = sport_of(syn6.frame);
  EXPECT_EQ(syn6.frame, Packet().eth(kLbMac, kBackendMac).ipv6(kLbIp6, "2001:db8::10").ttl(63)
                            .tcp(snat6, 8080, kTcpSyn).bytes());
  const Outcome back6 = h.run(Packet().eth(kBackendMac, kLbMac).ipv6("2001:db8::10", kLbIp6)
                                  .tcp(8080, snat6, kTcpSyn | kTcpAck).bytes());
  ASSERT_EQ(back6.verdict, Verdict::tx);
  EXPECT_EQ(back6.frame, Packet().eth(kLbMac, kRouterMac).ipv6("2001:db8:100::1", kClient6)
                             .ttl(63).tcp(80, 40000, kTcpSyn | kTcpAck).bytes());

  const Outcome init = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.4")
                                 .sctp(5000, 3868).payload("INIT").bytes());
  ASSERT_EQ(init.verdict, Verdict::tx) << to_string(init);
  const uint16_t snat = sport_of(init.frame);
  EXPECT_EQ(init.frame, Packet().eth(kLbMac, kBackendMac).ipv4(kLbIp, "198.18.1.40").ttl(63)
                            .sctp(snat, 3868).payload("INIT").bytes());
}

TEST_F(ForwarderTest, DnatUdpKeepsTheClientAndTranslatesReplies) {
  for (const bool v6 : {false, true}) {
    const char* client = v6 ? kClient6 : kClient;
    const char* vip = v6 ? "2001:db8:100::2" : "198.18.100.2";
    const char* backend = v6 ? "2001:db8::20" : "198.18.1.20";
    const uint16_t bport = v6 ? 53 : 5353;
    auto l3 = [&](Packet p, const char* s, const char* d) {
      return v6 ? p.ipv6(s, d) : p.ipv4(s, d);
    };
    const Outcome q = h.run(l3(Packet().eth(kRouterMac, kLbMac), client, vip).udp(33000, 53)
                                .payload("query").bytes());
    ASSERT_EQ(q.verdict, Verdict::tx) << to_string(q);
    EXPECT_EQ(q.frame, l3(Packet().eth(kLbMac, kBackendMac), client, backend).ttl(63)
                           .udp(33000, bport).payload("query").bytes());
    const Outcome a = h.run(l3(Packet().eth(kBackendMac, kLbMac), backend, client)
                                .udp(bport, 33000).payload("answer").bytes());
    ASSERT_EQ(a.verdict, Verdict::tx) << to_string(a);
    EXPECT_EQ(a.frame, l3(Packet().eth(kLbMac, kRouterMac), vip, client).ttl(63)
                           .udp(53, 33000).payload("answer").bytes());
  }
}

// Idle polls reclaim expired entries within a budget per millisecond: however many polls a
// millisecond holds, they sweep one share of the table (the first poll's), and a share every
// millisecond sweeps it all (4096 entries: 512 buckets, 64 a millisecond, 8 ms).
TEST_F(ForwarderTest, IdlePollsSweepTheTableWithinABudgetPerMillisecond) {
  for (uint16_t i = 0; i < 300; ++i) {
    const Outcome q = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.2")
                                .udp(uint16_t(20000 + i), 53).payload("q").bytes());
    ASSERT_EQ(q.verdict, Verdict::tx) << to_string(q);
  }
  dp::Forwarder& f = h.forwarder();
  const dp::FlowTableStats& stats = f.flows().stats();
  const uint64_t occupied = stats.occupied;
  ASSERT_GE(occupied, 300u);
  const uint64_t later = 1000 + 10 * 60 * 1000;  // every entry long expired
  f.expire(later);
  const uint64_t first = stats.reclaimed_expired;
  EXPECT_GT(first, 0u);
  EXPECT_LT(first, occupied / 2);  // an eighth of the buckets, about
  for (int i = 0; i < 1000; ++i) f.expire(later);
  EXPECT_EQ(stats.reclaimed_expired, first);  // the millisecond's budget is spent
  for (uint64_t ms = 1; ms <= 7; ++ms) {
    for (int i = 0; i < 10; ++i) f.expire(later + ms);
  }
  EXPECT_EQ(stats.reclaimed_expired, occupied);
  EXPECT_EQ(stats.occupied, 0u);
}

TEST_F(ForwarderTest, DsrRewritesOnlyTheMac) {
  const Packet in = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.3")
                        .tcp(40000, 80, kTcpSyn);
  const Outcome o = h.run(in.bytes());
  ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
  EXPECT_EQ(o.frame, Packet(in).eth(kLbMac, kBackendMac).bytes());
}

TEST_F(ForwarderTest, NoBackendRejectsTcpWithRstAndUdpWithIcmp) {
  const Outcome rst = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.5")
                                .tcp(40000, 80, kTcpSyn).bytes());
  ASSERT_EQ(rst.verdict, Verdict::tx) << to_string(rst);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(rst.frame, p), DropReason::none);
  EXPECT_EQ(p.tcp_flags & dp::kTcpRst, dp::kTcpRst);
  EXPECT_EQ(dp::to_string(p.key.src_addr()), "198.18.100.5");
  EXPECT_EQ(dp::to_string(p.key.dst_addr()), kClient);
  EXPECT_EQ(rst.port, 0);

  const Outcome icmp = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.5")
                                 .udp(40000, 53).payload("q").bytes());
  ASSERT_EQ(icmp.verdict, Verdict::tx) << to_string(icmp);
  ASSERT_EQ(dp::parse(icmp.frame, p), DropReason::none);
  EXPECT_EQ(p.key.proto, dp::kProtoIcmp);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(p.icmp_code, 3);
  EXPECT_EQ(h.forwarder().counters().rejected, 2u);
}

TEST_F(ForwarderTest, UnresolvedBackendWaitsInTheSlowPath) {
  h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                {{"198.18.1.11", 8080}}));
  const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                              .tcp(40002, 80, kTcpSyn).bytes());
  ASSERT_EQ(o.verdict, Verdict::slow) << to_string(o);
  EXPECT_EQ(o.slow, dp::SlowReason::needs_neighbor);
  EXPECT_EQ(dp::to_string(o.next_hop.ip), "198.18.1.11");
  // Rewritten already: only the Ethernet destination is missing.
  dp::Parsed p;
  ASSERT_EQ(dp::parse(o.frame, p), DropReason::none);
  EXPECT_EQ(dp::to_string(p.key.dst_addr()), "198.18.1.11");
}

// A connection keeps its backend when the service changes; a removed backend's TCP connection
// is reset; a UDP flow moves to a remaining backend.
TEST_F(ForwarderTest, ConnectionsSurviveUpdatesAndRemovedBackendsAreHandled) {
  h.neighbor("198.18.1.11", kBackendMac);
  h.neighbor("198.18.1.21", kBackendMac);
  auto syn = [&](uint16_t sport) {
    return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1").tcp(sport, 80, kTcpSyn)
        .bytes();
  };
  auto data = [&](uint16_t sport) {
    return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1").tcp(sport, 80, kTcpAck)
        .bytes();
  };
  auto dst_of = [](const Bytes& frame) {
    dp::Parsed p;
    dp::parse(frame, p);
    return dp::to_string(p.key.dst_addr());
  };
  ASSERT_EQ(h.run(syn(41000)).verdict, Verdict::tx);  // to 198.18.1.10, the only backend
  h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                {{"198.18.1.11", 8080}, {"198.18.1.10", 8080}}));
  EXPECT_EQ(dst_of(h.run(data(41000)).frame), "198.18.1.10");  // kept

  h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                {{"198.18.1.11", 8080}}));
  const Outcome reset = h.run(data(41000));
  ASSERT_EQ(reset.verdict, Verdict::tx);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(reset.frame, p), DropReason::none);
  EXPECT_EQ(p.tcp_flags & dp::kTcpRst, dp::kTcpRst);
  EXPECT_EQ(h.forwarder().counters().reset_removed_backend, 1u);

  auto query = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.2").udp(33001, 53)
                   .bytes();
  ASSERT_EQ(dst_of(h.run(query).frame), "198.18.1.20");
  h.add(service("dns", "198.18.100.2", 53, Protocol::udp, ForwardMode::dnat,
                {{"198.18.1.21", 5353}}));
  EXPECT_EQ(dst_of(h.run(query).frame), "198.18.1.21");
  EXPECT_EQ(h.forwarder().counters().rescheduled, 1u);
}

// reliability.md bug class 1 (kubernetes #48370, #139628): a UDP flow on a fixed source port
// whose Service goes to zero endpoints is rejected, not blackholed, and reaches the new backend
// as soon as endpoints come back; nothing sticky is left from the empty period.
TEST_F(ForwarderTest, UdpFlowFollowsItsServiceThroughZeroEndpointsAndBack) {
  h.neighbor("198.18.1.22", kBackendMac);
  const Bytes query = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.2")
                          .udp(33333, 53).payload("q").bytes();
  auto dst_of = [](const Bytes& frame) {
    dp::Parsed p;
    dp::parse(frame, p);
    return dp::to_string(p.key.dst_addr());
  };
  ASSERT_EQ(dst_of(h.run(query).frame), "198.18.1.20");
  h.add(service("dns", "198.18.100.2", 53, Protocol::udp, ForwardMode::dnat, {}));
  for (int i = 0; i < 3; ++i) {
    const Outcome o = h.run(query);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);  // the ICMP port unreachable
    dp::Parsed p;
    ASSERT_EQ(dp::parse(o.frame, p), DropReason::none);
    EXPECT_EQ(p.key.proto, dp::kProtoIcmp);
    EXPECT_EQ(dp::to_string(p.key.dst_addr()), kClient);
  }
  h.add(service("dns", "198.18.100.2", 53, Protocol::udp, ForwardMode::dnat,
                {{"198.18.1.22", 5353}}));
  EXPECT_EQ(dst_of(h.run(query).frame), "198.18.1.22");
  EXPECT_EQ(dst_of(h.run(query).frame), "198.18.1.22");
}

TEST_F(ForwarderTest, TerminatingBackendKeepsItsConnectionsButGetsNoNewOnes) {
  h.neighbor("198.18.1.11", kBackendMac);
  auto spec = service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                      {{"198.18.1.10", 8080}});
  ASSERT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                      .tcp(42000, 80, kTcpSyn).bytes()).verdict,
            Verdict::tx);
  spec.backends[0].state = dp::BackendState::terminating;
  spec.backends.push_back({*dp::parse_ip("198.18.1.11"), 8080, 1, dp::BackendState::ready});
  h.add(spec);
  auto dst_of = [&](uint16_t sport, uint8_t flags) {
    dp::Parsed p;
    dp::parse(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                        .tcp(sport, 80, flags).bytes()).frame, p);
    return dp::to_string(p.key.dst_addr());
  };
  EXPECT_EQ(dst_of(42000, kTcpAck), "198.18.1.10");
  for (uint16_t sport = 43000; sport < 43050; ++sport) {
    EXPECT_EQ(dst_of(sport, kTcpSyn), "198.18.1.11");
  }
}

TEST_F(ForwarderTest, ClosedTupleReusedBySynIsANewConnection) {
  auto frame = [&](uint8_t flags) {
    return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1").tcp(44000, 80, flags)
        .bytes();
  };
  ASSERT_EQ(h.run(frame(kTcpSyn)).verdict, Verdict::tx);
  ASSERT_EQ(h.run(frame(kTcpFin | kTcpAck)).verdict, Verdict::tx);
  ASSERT_EQ(h.run(frame(kTcpSyn)).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().new_connections, 2u);
}

// The state of the entry for a tuple, or free when there is none.
dp::FlowState state_of(Harness& h, const char* src, uint16_t sport, const char* dst,
                       uint16_t dport, uint8_t proto = dp::kProtoTcp) {
  dp::FlowKey k;
  k.family = dp::Family::v4;
  k.proto = proto;
  k.src = dp::parse_ip(src)->bytes;
  k.sport = sport;
  k.dst = dp::parse_ip(dst)->bytes;
  k.dport = dport;
  const dp::FlowTable& t = h.forwarder().flows();
  const dp::FlowEntry* e = t.find(k, t.hash(k), 1000);
  return e == nullptr ? dp::FlowState::free : t.state(e);
}

// A FIN or RST in one direction makes both of the connection's entries closing: a backend that
// never sends its own FIN (or a client that never does) must not hold a live entry for the
// established timeout. After one FIN both are half-closed (the client's entry has seen its FIN,
// the backend's knows of it); after the second, or an RST, both are closed.
TEST_F(ForwarderTest, OneSidesFinClosesBothEntries) {
  const uint16_t snat = handshake(h, 46000);
  ASSERT_NE(snat, 0);
  EXPECT_EQ(state_of(h, kClient, 46000, "198.18.100.1", 80), dp::FlowState::tcp_established);
  EXPECT_EQ(state_of(h, "198.18.1.10", 8080, kLbIp, snat), dp::FlowState::tcp_established);
  ASSERT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                      .tcp(46000, 80, kTcpFin | kTcpAck).bytes()).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, kClient, 46000, "198.18.100.1", 80), dp::FlowState::tcp_closing);
  EXPECT_EQ(state_of(h, "198.18.1.10", 8080, kLbIp, snat), dp::FlowState::tcp_peer_closing);
  // The backend may still send (a half-close): its frames are translated.
  ASSERT_EQ(h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                      .tcp(8080, snat, kTcpAck).payload("more").bytes()).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, "198.18.1.10", 8080, kLbIp, snat), dp::FlowState::tcp_peer_closing);
  // Its own FIN closes both; the client's last ACK still passes.
  ASSERT_EQ(h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                      .tcp(8080, snat, kTcpFin | kTcpAck).bytes()).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, "198.18.1.10", 8080, kLbIp, snat), dp::FlowState::tcp_closed);
  EXPECT_EQ(state_of(h, kClient, 46000, "198.18.100.1", 80), dp::FlowState::tcp_closed);
  const Outcome last = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(46000, 80, kTcpAck).bytes());
  ASSERT_EQ(last.verdict, Verdict::tx) << to_string(last);
  EXPECT_EQ(sport_of(last.frame), snat);

  // DNAT, the other way: the backend resets.
  const auto dnat = [&](uint8_t flags) {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.9")
                     .tcp(47000, 80, flags).bytes());
  };
  h.add(service("dnat", "198.18.100.9", 80, Protocol::tcp, ForwardMode::dnat,
                {{"198.18.1.10", 8080}}));
  ASSERT_EQ(dnat(kTcpSyn).verdict, Verdict::tx);
  ASSERT_EQ(h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kClient)
                      .tcp(8080, 47000, kTcpSyn | kTcpAck).bytes()).verdict, Verdict::tx);
  ASSERT_EQ(dnat(kTcpAck).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, kClient, 47000, "198.18.100.9", 80), dp::FlowState::tcp_established);
  ASSERT_EQ(h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kClient)
                      .tcp(8080, 47000, dp::kTcpRst).bytes()).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, "198.18.1.10", 8080, kClient, 47000), dp::FlowState::tcp_closed);
  EXPECT_EQ(state_of(h, kClient, 47000, "198.18.100.9", 80), dp::FlowState::tcp_closed);

  // L2 DSR sees the client's side alone: the SYN opens nothing, the ACK opens the one entry
  // (unconfirmed, as nothing of the backend's is ever seen), and the client's FIN counts as the
  // close of it.
  const auto dsr = [&](uint8_t flags) {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.3")
                     .tcp(48000, 80, flags).bytes());
  };
  ASSERT_EQ(dsr(kTcpSyn).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, kClient, 48000, "198.18.100.3", 80), dp::FlowState::free);
  ASSERT_EQ(dsr(kTcpAck).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, kClient, 48000, "198.18.100.3", 80), dp::FlowState::tcp_midstream);
  ASSERT_EQ(dsr(kTcpFin | kTcpAck).verdict, Verdict::tx);
  EXPECT_EQ(state_of(h, kClient, 48000, "198.18.100.3", 80), dp::FlowState::tcp_closed);
  ASSERT_EQ(dsr(kTcpAck).verdict, Verdict::tx);  // the last ACK
  EXPECT_EQ(state_of(h, kClient, 48000, "198.18.100.3", 80), dp::FlowState::tcp_closed);
}

// Pings go to the slow path (which answers those for Magline's addresses and VIPs), at most
// kEchoPerWindow per window: a ping flood must not crowd ARP and NDP out of the slow-path ring.
TEST_F(ForwarderTest, SessionAffinityHoldsAcrossConnectionsAndIsSharedWithPeers) {
  dp::ForwarderConfig config;
  config.workers = 2;
  Harness two(config);
  auto spec = service("sticky", "198.18.100.9", 80, Protocol::tcp, ForwardMode::dnat,
                      {{"198.18.1.10", 80}, {"198.18.1.11", 80}, {"198.18.1.12", 80}});
  spec.affinity = {true, 60};
  two.add(spec);
  for (const char* b : {"198.18.1.10", "198.18.1.11", "198.18.1.12"}) two.neighbor(b, kBackendMac);
  auto dst_for = [&](const char* client, uint16_t sport) {
    dp::Parsed p;
    dp::parse(two.run(Packet().eth(kRouterMac, kLbMac).ipv4(client, "198.18.100.9")
                          .tcp(sport, 80, kTcpSyn).bytes()).frame, p);
    return dp::to_string(p.key.dst_addr());
  };
  const std::string first = dst_for("198.18.30.1", 1000);
  for (uint16_t sport = 1001; sport < 1100; ++sport) {
    EXPECT_EQ(dst_for("198.18.30.1", sport), first);
  }
  // The record went to the other worker once.
  size_t affinity_messages = 0;
  for (const auto& [worker, m] : two.peers.sent) {
    affinity_messages += m.kind == dp::PeerMessage::Kind::affinity;
    EXPECT_EQ(worker, 1);
  }
  EXPECT_EQ(affinity_messages, 1u);
  // Different clients spread over the backends.
  std::set<std::string> seen;
  for (int c = 0; c < 60; ++c) {
    seen.insert(dst_for(("198.18.31." + std::to_string(c + 1)).c_str(), 2000));
  }
  EXPECT_EQ(seen.size(), 3u);
}

// An ICMP error about a connection another worker holds is handed to that worker, which
// translates it as if it had received it; a frame handed over is never handed on again.
TEST_F(ForwarderTest, EstablishedConnectionsFollowTheirBackendsNeighbourChanges) {
  ASSERT_NE(handshake(h, 41000), 0);
  const Bytes ack =
      Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1").tcp(41000, 80, kTcpAck)
          .bytes();
  auto dst_mac = [](const Outcome& o) { return Mac{o.frame[0], o.frame[1], o.frame[2],
                                                   o.frame[3], o.frame[4], o.frame[5]}; };
  Outcome o = h.run(ack);
  ASSERT_EQ(o.verdict, Verdict::tx);
  EXPECT_EQ(dst_mac(o), kBackendMac);
  const Mac moved{0x02, 0, 0, 0, 0, 0x33};
  h.neighbor("198.18.1.10", moved);
  o = h.run(ack);
  ASSERT_EQ(o.verdict, Verdict::tx);
  EXPECT_EQ(dst_mac(o), moved);
  h.forget_neighbor("198.18.1.10");
  o = h.run(ack);
  EXPECT_EQ(o.verdict, Verdict::slow);
  EXPECT_EQ(o.slow, dp::SlowReason::needs_neighbor);
  h.neighbor("198.18.1.10", kBackendMac);
  o = h.run(ack);
  ASSERT_EQ(o.verdict, Verdict::tx);
  EXPECT_EQ(dst_mac(o), kBackendMac);
}

TEST_F(ForwarderTest, EveryFrameOfABurstGetsOneVerdict) {
  std::vector<Bytes> burst;
  for (uint16_t i = 0; i < 40; ++i) {
    burst.push_back(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, i % 2 ? "198.18.100.1"
                                                                          : "198.18.100.99")
                        .tcp(uint16_t(45000 + i / 4), 80, kTcpSyn).bytes());
  }
  const auto outcomes = h.run_burst(burst);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].verdict, i % 2 ? Verdict::tx : Verdict::drop) << i;
  }
  // Frames of one connection within a burst share its entry.
  EXPECT_EQ(h.forwarder().counters().new_connections, 10u);
}

// A new connection goes to the backend Maglev gives its tuple (hash_flow() with the fixed seed,
// the same on every worker and every node), whether it comes alone or in a burst, where the
// choice is made a pass ahead of the set-up (aim_pick(), prefetch_reply()).
TEST_F(ForwarderTest, ANewConnectionGoesToMaglevsBackendForItsTuple) {
  const ForwardMode modes[] = {ForwardMode::full_nat, ForwardMode::dnat, ForwardMode::dsr_l2};
  std::vector<std::pair<const char*, uint16_t>> backends;
  const char* addrs[] = {"198.18.1.51", "198.18.1.52", "198.18.1.53", "198.18.1.54",
                         "198.18.1.55", "198.18.1.56", "198.18.1.57", "198.18.1.58"};
  for (uint8_t b = 0; b < 8; ++b) {
    backends.push_back({addrs[b], 80});
    h.neighbor(addrs[b], Mac{0x02, 0, 0, 0, 0x51, b});
  }
  for (size_t m = 0; m < 3; ++m) {
    const std::string vip = "198.18.100." + std::to_string(90 + m);
    const dp::ServiceState& s =
        h.add(service("maglev" + std::to_string(m), vip.c_str(), 80, Protocol::tcp, modes[m],
                      backends));
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 96; ++i) {
      const std::string client = "198.18.40." + std::to_string(1 + i % 7);
      frames.push_back(Packet().eth(kRouterMac, kLbMac).ipv4(client.c_str(), vip.c_str())
                           .tcp(uint16_t(30000 + i), 80, kTcpSyn).bytes());
    }
    std::vector<Outcome> out;
    for (size_t i = 0; i < 32; ++i) out.push_back(h.run(frames[i]));  // one at a time
    for (size_t at = 32; at < frames.size(); at += 32) {  // in bursts of 32
      const std::vector<Bytes> burst(frames.begin() + long(at), frames.begin() + long(at + 32));
      for (Outcome& o : h.run_burst(burst)) out.push_back(std::move(o));
    }
    ASSERT_EQ(out.size(), frames.size());
    std::set<uint8_t> used;
    for (size_t i = 0; i < frames.size(); ++i) {
      dp::Parsed p;
      ASSERT_EQ(dp::parse({frames[i].data(), frames[i].size()}, p), DropReason::none);
      const uint16_t want = s.pick(dp::hash_flow(p.key, dp::kFlowHashSeed));
      ASSERT_EQ(out[i].verdict, Verdict::tx) << m << " " << i << ": " << to_string(out[i]);
      EXPECT_EQ(out[i].frame[4], 0x51);
      EXPECT_EQ(out[i].frame[5], want) << "mode " << m << ", frame " << i;
      used.insert(out[i].frame[5]);
    }
    EXPECT_GE(used.size(), 6u) << m;  // spread: a check that could not tell backends apart
    if (modes[m] == ForwardMode::dsr_l2) continue;  // its SYNs keep no entry to reopen
    // A tuple reused after its connection was reset: its entry is erased and the connection
    // opened afresh (Forwarder::forward()), Maglev's choice made there, not a pass ahead.
    for (size_t i = 0; i < 16; ++i) {
      Bytes rst = frames[i];
      rst[47] = dp::kTcpRst | kTcpAck;
      ASSERT_EQ(h.run(rst, 2000).verdict, Verdict::tx) << i;
      const Outcome again = h.run(frames[i], 3000);
      ASSERT_EQ(again.verdict, Verdict::tx) << i << ": " << to_string(again);
      EXPECT_EQ(again.frame[5], out[i].frame[5]) << "mode " << m << ", reopened frame " << i;
    }
  }
}

}  // namespace
}  // namespace magline::test
