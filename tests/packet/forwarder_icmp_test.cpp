// Pings and ICMP errors through the forwarding pipeline: the slow path's bounded share, errors
// to the host whose packet they quote, and to the worker that holds their connection.
#include <gtest/gtest.h>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/forwarder_fixture.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpSyn;

TEST_F(ForwarderTest, PingsReachTheSlowPathAtABoundedRate) {
  const Bytes ping = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                         .icmp_echo(1, 1).bytes();
  size_t slow = 0, limited = 0;
  for (int i = 0; i < 30; ++i) {
    const Outcome o = h.run(ping, 5000);
    if (o.verdict == Verdict::slow) {
      EXPECT_EQ(o.slow, dp::SlowReason::echo);
      ++slow;
    } else if (o.verdict == Verdict::drop && o.reason == DropReason::echo_rate_limited) {
      ++limited;
    }
  }
  EXPECT_EQ(slow, dp::kEchoPerWindow);
  EXPECT_EQ(limited, 30 - dp::kEchoPerWindow);
  EXPECT_EQ(h.run(ping, 5000 + dp::kEchoWindowMs).verdict, Verdict::slow);  // the next window
}

// Path MTU discovery through Magline (reliability.md, bug class 3): an ICMP error about a
// connection reaches the host whose packet it quotes, quote and outer header translated alike.
// ICMP errors about the full-NAT connection handshake(h, 40000) opens (client port 40000 to
// 198.18.100.1:80, backend 198.18.1.10:8080, Magline's source port `snat`), as they arrive and as
// Magline passes them on.
// A router on the client's path: the SYN-ACK (VIP -> client) was too big.
Bytes synack_too_big() {
  return Packet().eth(kRouterMac, kLbMac).ipv4("198.18.30.1", "198.18.100.1")
      .icmp_error(3, 4, Packet().ipv4("198.18.100.1", kClient).ttl(63)
                            .tcp(80, 40000, kTcpSyn | kTcpAck), Packet::kWhole, 1400)
      .bytes();
}
// ...to the backend, from Magline's address, quoting the SYN-ACK as the backend sent it.
Bytes synack_too_big_to_backend(uint16_t snat) {
  return Packet().eth(kLbMac, kBackendMac).ipv4(kLbIp, "198.18.1.10").ttl(63)
      .icmp_error(3, 4, Packet().ipv4("198.18.1.10", kLbIp).ttl(63)
                            .tcp(8080, snat, kTcpSyn | kTcpAck), Packet::kWhole, 1400)
      .bytes();
}
// A router on the backend's side: a forwarded packet (Magline -> backend) was too big.
Bytes request_too_big(uint16_t snat) {
  return Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.1", kLbIp)
      .icmp_error(3, 4, Packet().ipv4(kLbIp, "198.18.1.10").ttl(63)
                            .tcp(snat, 8080, kTcpAck).payload("GET /"), 48, 1280)
      .bytes();
}
// ...to the client, from the VIP, quoting the packet as the client sent it, back the way it
// came.
Bytes request_too_big_to_client() {
  return Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.1", kClient).ttl(63)
      .icmp_error(3, 4, Packet().ipv4(kClient, "198.18.100.1").ttl(63)
                            .tcp(40000, 80, kTcpAck).payload("GET /"), 48, 1280)
      .bytes();
}

TEST_F(ForwarderTest, IcmpErrorsReachTheHostWhosePacketTheyQuote) {
  const uint16_t snat = handshake(h, 40000, false);
  ASSERT_NE(snat, 0);

  const Outcome up = h.run(synack_too_big());
  ASSERT_EQ(up.verdict, Verdict::tx) << to_string(up);
  EXPECT_EQ(up.frame, synack_too_big_to_backend(snat));
  const Outcome down = h.run(request_too_big(snat));
  ASSERT_EQ(down.verdict, Verdict::tx) << to_string(down);
  EXPECT_EQ(down.frame, request_too_big_to_client());

  // DNAT keeps the client's address: only the frontend side of the quote changes.
  const Outcome q = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.2")
                              .udp(41000, 53).payload("q").bytes());
  ASSERT_EQ(q.verdict, Verdict::tx);
  const Outcome unreach = h.run(
      Packet().eth(kRouterMac, kLbMac).ipv4("198.18.30.1", "198.18.100.2")
          .icmp_error(3, 3, Packet().ipv4("198.18.100.2", kClient).ttl(63).udp(53, 41000)
                                .payload("a"))
          .bytes());
  ASSERT_EQ(unreach.verdict, Verdict::tx) << to_string(unreach);
  EXPECT_EQ(unreach.frame,
            Packet().eth(kLbMac, kBackendMac).ipv4("198.18.30.1", "198.18.1.20").ttl(63)
                .icmp_error(3, 3, Packet().ipv4("198.18.1.20", kClient).ttl(63).udp(5353, 41000)
                                      .payload("a"))
                .bytes());

  // IPv6: packet too big about a full-NAT reply.
  const Outcome syn6 = h.run(Packet().eth(kRouterMac, kLbMac).ipv6(kClient6, "2001:db8:100::1")
                                 .tcp(40000, 80, kTcpSyn).bytes());
  ASSERT_EQ(syn6.verdict, Verdict::tx);
  const uint16_t snat6 = sport_of(syn6.frame);
  const Outcome ptb = h.run(
      Packet().eth(kRouterMac, kLbMac).ipv6("2001:db8:30::1", "2001:db8:100::1")
          .icmp_error(2, 0, Packet().ipv6("2001:db8:100::1", kClient6).ttl(63)
                                .tcp(80, 40000, kTcpAck).payload("big"), Packet::kWhole, 1280)
          .bytes());
  ASSERT_EQ(ptb.verdict, Verdict::tx) << to_string(ptb);
  EXPECT_EQ(ptb.frame, Packet().eth(kLbMac, kBackendMac).ipv6(kLbIp6, "2001:db8::10").ttl(63)
                           .icmp_error(2, 0, Packet().ipv6("2001:db8::10", kLbIp6).ttl(63)
                                                 .tcp(8080, snat6, kTcpAck).payload("big"),
                                       Packet::kWhole, 1280)
                           .bytes());

  // L2 DSR: the backend holds the VIP and sent the reply itself; the error goes on unchanged.
  ASSERT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.3")
                      .tcp(42000, 80, kTcpSyn).bytes()).verdict, Verdict::tx);
  const Packet dsr_error = Packet().ipv4("198.18.30.1", "198.18.100.3")
                               .icmp_error(3, 4, Packet().ipv4("198.18.100.3", kClient)
                                                     .tcp(80, 42000, kTcpSyn | kTcpAck));
  const Outcome dsr = h.run(Packet(dsr_error).eth(kRouterMac, kLbMac).bytes());
  ASSERT_EQ(dsr.verdict, Verdict::tx) << to_string(dsr);
  EXPECT_EQ(dsr.frame, Packet(dsr_error).eth(kLbMac, kBackendMac).bytes());

  // A DNAT flow this worker holds no entry for (RSS sent the error elsewhere, or the entry
  // expired): Maglev's choice over the quoted tuple, as for the flow's own next frame.
  const Outcome unknown_dnat = h.run(
      Packet().eth(kRouterMac, kLbMac).ipv4("198.18.30.1", "198.18.100.2")
          .icmp_error(3, 3, Packet().ipv4("198.18.100.2", kClient).udp(53, 45555)).bytes());
  ASSERT_EQ(unknown_dnat.verdict, Verdict::tx) << to_string(unknown_dnat);
  EXPECT_EQ(unknown_dnat.frame,
            Packet().eth(kLbMac, kBackendMac).ipv4("198.18.30.1", "198.18.1.20").ttl(63)
                .icmp_error(3, 3, Packet().ipv4("198.18.1.20", kClient).udp(5353, 45555))
                .bytes());

  // About no connection: dropped and counted.
  const Outcome stray = h.run(
      Packet().eth(kRouterMac, kLbMac).ipv4("198.18.30.1", "198.18.100.1")
          .icmp_error(3, 4, Packet().ipv4("198.18.100.1", kClient).tcp(80, 49999)).bytes());
  EXPECT_EQ(stray.verdict, Verdict::drop);
  EXPECT_EQ(stray.reason, DropReason::icmp_error_no_flow);
  EXPECT_EQ(h.forwarder().counters().icmp_errors, 6u);
}

TEST(ForwarderHandoff, IcmpErrorsReachTheWorkerHoldingTheirConnection) {
  // Two workers where the NIC gives every connection's frames to worker 0 (its RSS over ports);
  // ICMP errors, hashed by their outer addresses alone, may land on worker 1 all the same.
  const dp::SingleWorker rss(0);
  dp::ForwarderConfig c0, c1;
  c0.workers = c1.workers = 2;
  c1.worker = 1;
  Harness w0(c0, &rss), w1(c1, &rss);
  for (Harness* h : {&w0, &w1}) {
    h->add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                   {{"198.18.1.10", 8080}}));
    h->add(service("dns", "198.18.100.2", 53, Protocol::udp, ForwardMode::dnat,
                   {{"198.18.1.20", 5353}}));
    h->neighbor("198.18.1.10", kBackendMac);
    h->neighbor("198.18.1.20", kBackendMac);
  }
  const uint16_t snat = handshake(w0, 40000, false);
  ASSERT_NE(snat, 0);

  // Backend side: a forwarded packet was too big. Worker 1 has no entry and hands the error,
  // unchanged, to worker 0, which sends it to the client as in the one-worker case.
  const Bytes down = request_too_big(snat);
  const Outcome at1 = w1.run(down);
  ASSERT_EQ(at1.verdict, Verdict::handoff) << to_string(at1);
  EXPECT_EQ(at1.worker, 0);
  EXPECT_EQ(at1.frame, down);
  const Outcome at0 = w0.take_handed_off(at1.frame);
  ASSERT_EQ(at0.verdict, Verdict::tx) << to_string(at0);
  EXPECT_EQ(at0.frame, request_too_big_to_client());

  // Client side: the SYN-ACK was too big; to the backend, from Magline's address.
  const Outcome up1 = w1.run(synack_too_big());
  ASSERT_EQ(up1.verdict, Verdict::handoff) << to_string(up1);
  const Outcome up0 = w0.take_handed_off(up1.frame);
  ASSERT_EQ(up0.verdict, Verdict::tx) << to_string(up0);
  EXPECT_EQ(up0.frame, synack_too_big_to_backend(snat));

  // About no connection: worker 1 cannot know that and hands it over; worker 0 drops it rather
  // than hand it back.
  const Outcome stray1 = w1.run(
      Packet().eth(kRouterMac, kLbMac).ipv4("198.18.30.1", "198.18.100.1")
          .icmp_error(3, 4, Packet().ipv4("198.18.100.1", kClient).tcp(80, 49999)).bytes());
  ASSERT_EQ(stray1.verdict, Verdict::handoff);
  const Outcome stray0 = w0.take_handed_off(stray1.frame);
  EXPECT_EQ(stray0.verdict, Verdict::drop);
  EXPECT_EQ(stray0.reason, DropReason::icmp_error_no_flow);

  // A DNAT connection's entry lost by its owner: the owner makes Maglev's choice over the tuple.
  const Outcome dnat1 = w1.run(
      Packet().eth(kRouterMac, kLbMac).ipv4("198.18.30.1", "198.18.100.2")
          .icmp_error(3, 3, Packet().ipv4("198.18.100.2", kClient).udp(53, 45555)).bytes());
  ASSERT_EQ(dnat1.verdict, Verdict::handoff);
  const Outcome dnat0 = w0.take_handed_off(dnat1.frame);
  ASSERT_EQ(dnat0.verdict, Verdict::tx) << to_string(dnat0);
  EXPECT_EQ(dnat0.frame, Packet().eth(kLbMac, kBackendMac).ipv4("198.18.30.1", "198.18.1.20")
                             .ttl(63)
                             .icmp_error(3, 3, Packet().ipv4("198.18.1.20", kClient)
                                                   .udp(5353, 45555))
                             .bytes());

  const dp::ForwarderCounters& c0n = w0.forwarder().counters();
  const dp::ForwarderCounters& c1n = w1.forwarder().counters();
  EXPECT_EQ(c1n.handoffs_sent, 4u);
  EXPECT_EQ(c1n.rx_packets, 4u);
  EXPECT_EQ(c1n.icmp_errors, 0u);
  EXPECT_EQ(c0n.handoffs_received, 4u);
  EXPECT_EQ(c0n.handoffs_sent, 0u);
  EXPECT_EQ(c0n.icmp_errors, 3u);
  EXPECT_EQ(c0n.rx_packets, 2u);  // the handshake's SYN and SYN-ACK; handed-off frames apart
}

// The hit path remembers each backend's neighbour (NeighborHint); a change of MAC, or a
// neighbour gone, must reach established connections at their next frame.

}  // namespace
}  // namespace magline::test
