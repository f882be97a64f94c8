// The slow path: ARP and neighbour discovery (answering, resolving, ageing), pings,
// announcements and its bounds (tunnels in slow_path_tunnel_test.cpp).
#include "dataplane/slow_path.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dataplane/arp_nd.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/unit/slow_path_fixture.hpp"

namespace magline::test {
namespace {

// ---- ARP: answering ----

TEST_F(SlowPathTest, AnswersArpForAPortAddressAndLearnsTheAsker) {
  const Out o = arp(arp_request("198.18.1.10", kClientMac, "198.18.1.1"), 0, 0);
  const std::vector<Sent> want = {{0, arp_reply("198.18.1.1", kLbMac, "198.18.1.10", kClientMac)}};
  EXPECT_EQ(o.tx, want);
  EXPECT_EQ(o.updates, std::vector{update("198.18.1.10", kClientMac, 0)});
  EXPECT_EQ(stats().arp_requests_answered, 1u);
  // Asked again: answered again, nothing new learned.
  const Out again = arp(arp_request("198.18.1.10", kClientMac, "198.18.1.1"), 0, 10);
  EXPECT_EQ(again.tx, want);
  EXPECT_TRUE(again.updates.empty());
}

TEST_F(SlowPathTest, AnswersArpForAVipOnAnyPort) {
  for (const uint16_t port : {0, 1}) {
    SCOPED_TRACE(port);
    const Mac our = port == 0 ? kLbMac : kLb2Mac;
    const Out o = arp(arp_request("198.18.2.10", kClientMac, "198.18.100.1"), port, 0);
    const std::vector<Sent> want = {
        {port, arp_reply("198.18.100.1", our, "198.18.2.10", kClientMac)}};
    EXPECT_EQ(o.tx, want);
  }
  EXPECT_EQ(stats().arp_requests_answered, 2u);
}

// ---- Echo ----

// A ping to a VIP or a port address is answered from that address, back to the asker's MAC on
// the port it came in on; IPv4 options are not echoed. Pings to anything else are ignored.
TEST_F(SlowPathTest, AnswersPingsForItsAddressesAndVips) {
  const Out v4 = handle(Packet().eth(kClientMac, kLb2Mac).ipv4("198.18.2.10", "198.18.100.1")
                            .ip_id(7).dont_fragment().ttl(64).icmp_echo(0x1234, 9)
                            .payload("ping data").bytes(),
                        SlowReason::echo, 1, 0);
  const std::vector<Sent> want4 = {
      {1, Packet().eth(kLb2Mac, kClientMac).ipv4("198.18.100.1", "198.18.2.10").ip_id(0)
              .dont_fragment().ttl(64).icmp_echo(0x1234, 9, true).payload("ping data").bytes()}};
  EXPECT_EQ(v4.tx, want4);

  const Out opts = handle(Packet().eth(kClientMac, kLbMac).ipv4("198.18.1.10", "198.18.1.1")
                              .ipv4_options({0x01, 0x01, 0x01, 0x00}).icmp_echo(1, 2).bytes(),
                          SlowReason::echo, 0, 0);
  const std::vector<Sent> want_opts = {
      {0, Packet().eth(kLbMac, kClientMac).ipv4("198.18.1.1", "198.18.1.10").ip_id(0)
              .dont_fragment().ttl(64).icmp_echo(1, 2, true).bytes()}};
  EXPECT_EQ(opts.tx, want_opts);

  const Out v6 = handle(Packet().eth(kClientMac, kLbMac).ipv6("2001:db8:1::10", "2001:db8:1::1")
                            .icmp_echo(5, 6).payload("six").bytes(),
                        SlowReason::echo, 0, 0);
  const std::vector<Sent> want6 = {
      {0, Packet().eth(kLbMac, kClientMac).ipv6("2001:db8:1::1", "2001:db8:1::10").ttl(64)
              .icmp_echo(5, 6, true).payload("six").bytes()}};
  EXPECT_EQ(v6.tx, want6);
  EXPECT_EQ(stats().echo_requests_answered, 3u);

  // Another host's address, a port address asked on the other port's link, a fragment.
  for (const Bytes& f :
       {Packet().eth(kClientMac, kLbMac).ipv4("198.18.1.10", "198.18.1.99").icmp_echo(1, 1).bytes(),
        Packet().eth(kClientMac, kLbMac).ipv4("198.18.1.10", "198.18.2.1").icmp_echo(1, 1).bytes(),
        Packet().eth(kClientMac, kLbMac).ipv4("198.18.1.10", "198.18.1.1").fragment(0, true)
            .icmp_echo(1, 1).payload("part").bytes()}) {
    EXPECT_TRUE(handle(f, SlowReason::echo, 0, 0).tx.empty());
  }
  EXPECT_EQ(stats().echo_requests_answered, 3u);
}

TEST_F(SlowPathTest, IgnoresArpForOtherAddresses) {
  struct Case {
    const char* name;
    Bytes frame;
    uint16_t port;
  };
  const std::vector<Case> cases = {
      {"another_host", arp_request("198.18.1.10", kClientMac, "198.18.1.99"), 0},
      {"another_ports_address", arp_request("198.18.2.10", kClientMac, "198.18.1.1"), 1},
      {"announcement_of_a_stranger", arp_request("198.18.1.10", kClientMac, "198.18.1.10"), 0},
      {"reply_not_for_us", arp_reply("198.18.1.10", kClientMac, "198.18.1.11", kOtherMac), 0},
      {"multicast_sender", arp_request("198.18.1.10", {0x01, 0, 0x5e, 0, 0, 1}, "198.18.1.1"), 0},
      {"unknown_port", arp_request("198.18.1.10", kClientMac, "198.18.1.1"), 5},
      {"not_arp", Packet().ipv4("198.18.1.10", "198.18.1.1").udp(1, 2).bytes(), 0},
      {"truncated", Bytes(20, 0), 0},
  };
  uint64_t ignored = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Out o = arp(c.frame, c.port, 0);
    EXPECT_TRUE(o.tx.empty());
    EXPECT_TRUE(o.updates.empty());
    EXPECT_EQ(stats().ignored, ++ignored);
  }
  EXPECT_EQ(stats().arp_requests_answered, 0u);
}

TEST_F(SlowPathTest, AnswersOnTheRequestsVlan) {
  const Bytes request = Packet()
                            .eth(kClientMac, kBroadcast)
                            .vlan(100, dp::kEtherTypeQinQ)
                            .vlan(200)
                            .arp(dp::kArpRequest, kClientMac, "198.18.1.10", kZeroMac, "198.18.1.1")
                            .bytes();
  const Bytes reply = Packet()
                          .eth(kLbMac, kClientMac)
                          .vlan(100, dp::kEtherTypeQinQ)
                          .vlan(200)
                          .arp(dp::kArpReply, kLbMac, "198.18.1.1", kClientMac, "198.18.1.10")
                          .pad(10)
                          .bytes();
  EXPECT_EQ(arp(request, 0, 0).tx, (std::vector<Sent>{{0, reply}}));

  const Bytes solicit = Packet()
                            .eth(kClientMac, solicited_mac("2001:db8:1::1"))
                            .vlan(300)
                            .ipv6("2001:db8:1::10", "ff02::1:ff00:1")
                            .ndp_ns("2001:db8:1::1", kClientMac)
                            .bytes();
  const Bytes advert = Packet()
                           .eth(kLbMac, kClientMac)
                           .vlan(300)
                           .ipv6("2001:db8:1::1", "2001:db8:1::10")
                           .ndp_na("2001:db8:1::1", dp::kNaSolicited | dp::kNaOverride, kLbMac)
                           .bytes();
  EXPECT_EQ(ndp(solicit, 0, 0).tx, (std::vector<Sent>{{0, advert}}));
}

// ---- ARP: resolving next hops ----

TEST_F(SlowPathTest, ArpReplyReleasesHeldPacketsWithTheRightMacs) {
  Out o = needs(waiting("198.18.2.20", 1).bytes(), "198.18.2.20", 1, 0);
  // RFC 826 request from port 1's address and MAC, broadcast.
  const Bytes request = arp_request("198.18.2.1", kLb2Mac, "198.18.2.20");
  EXPECT_EQ(o.tx, (std::vector<Sent>{{1, request}}));
  EXPECT_TRUE(o.updates.empty());
  EXPECT_TRUE(needs(waiting("198.18.2.20", 2).bytes(), "198.18.2.20", 1, 10).tx.empty());
  EXPECT_EQ(stats().queued, 2u);
  EXPECT_EQ(stats().requests_sent, 1u);

  o = arp(arp_reply("198.18.2.20", kBackendMac, "198.18.2.1", kLb2Mac), 1, 50);
  EXPECT_EQ(o.updates, std::vector{update("198.18.2.20", kBackendMac, 1)});
  const std::vector<Sent> released = {
      {1, waiting("198.18.2.20", 1).eth(kLb2Mac, kBackendMac).bytes()},
      {1, waiting("198.18.2.20", 2).eth(kLb2Mac, kBackendMac).bytes()}};
  EXPECT_EQ(o.tx, released);
  EXPECT_EQ(stats().released, 2u);
  EXPECT_EQ(stats().arp_replies_learned, 1u);

  // A straggler from a worker that has not applied the update yet goes straight out.
  o = needs(waiting("198.18.2.20", 3).bytes(), "198.18.2.20", 1, 60);
  EXPECT_EQ(o.tx,
            (std::vector<Sent>{{1, waiting("198.18.2.20", 3).eth(kLb2Mac, kBackendMac).bytes()}}));
  EXPECT_EQ(stats().released, 3u);
  // Nothing left to time out.
  EXPECT_TRUE(tick(10'000).tx.empty());
}

TEST_F(SlowPathTest, RetriesAtTheIntervalThenGivesUp) {
  const Bytes request = arp_request("198.18.1.1", kLbMac, "198.18.1.20");
  EXPECT_EQ(needs(waiting("198.18.1.20", 1).bytes(), "198.18.1.20", 0, 0).tx.size(), 1u);
  needs(waiting("198.18.1.20", 2).bytes(), "198.18.1.20", 0, 300);
  EXPECT_TRUE(tick(999).tx.empty());
  EXPECT_EQ(tick(1000).tx, (std::vector<Sent>{{0, request}}));
  EXPECT_TRUE(tick(1999).tx.empty());
  EXPECT_EQ(tick(2000).tx, (std::vector<Sent>{{0, request}}));
  EXPECT_EQ(stats().requests_sent, 3u);
  EXPECT_TRUE(tick(2999).tx.empty());

  // Three unanswered requests: the held packets go, counted; the workers never had it.
  const Out gave_up = tick(3000);
  EXPECT_TRUE(gave_up.tx.empty());
  EXPECT_TRUE(gave_up.updates.empty());
  EXPECT_EQ(stats().dropped_unresolved, 2u);
  EXPECT_EQ(pool_.live(), 0u);

  // Held down for a round: packets are dropped without asking again...
  EXPECT_TRUE(needs(waiting("198.18.1.20", 3).bytes(), "198.18.1.20", 0, 4000).tx.empty());
  EXPECT_EQ(stats().dropped_unresolved, 3u);
  EXPECT_TRUE(tick(5999).tx.empty());
  // ...then forgotten, and the next packet starts a new round.
  EXPECT_TRUE(tick(6000).tx.empty());
  EXPECT_EQ(needs(waiting("198.18.1.20", 4).bytes(), "198.18.1.20", 0, 6100).tx,
            (std::vector<Sent>{{0, request}}));
  EXPECT_EQ(stats().requests_sent, 4u);
}

TEST_F(SlowPathTest, QueuesAreBoundedPerNeighbourAndInTotal) {
  for (uint16_t i = 0; i < 6; ++i)
    needs(waiting("198.18.1.20", i).bytes(), "198.18.1.20", 0, 0);
  EXPECT_EQ(stats().queued, 4u);
  EXPECT_EQ(stats().dropped_queue_full, 2u);
  for (uint16_t i = 0; i < 4; ++i)
    needs(waiting("198.18.1.21", i).bytes(), "198.18.1.21", 0, 0);
  EXPECT_EQ(stats().queued, 6u);
  EXPECT_EQ(stats().dropped_queue_full, 4u);
  EXPECT_EQ(pool_.live(), 6u);

  // Releasing one neighbour makes room in the total again.
  EXPECT_EQ(arp(arp_reply("198.18.1.20", kBackendMac, "198.18.1.1", kLbMac), 0, 5).tx.size(), 4u);
  needs(waiting("198.18.1.21", 9).bytes(), "198.18.1.21", 0, 6);
  EXPECT_EQ(stats().queued, 7u);
  // Torn down with three packets still held: TearDown checks they were freed.
  EXPECT_EQ(pool_.live(), 3u);
}

TEST_F(SlowPathTest, NeighbourTableIsBounded) {
  // Strangers asking for us are learned only into half the table (max_neighbors 8).
  for (int i = 0; i < 6; ++i) {
    const std::string a = "198.18.1." + std::to_string(100 + i);
    const Out o = arp(arp_request(a.c_str(), kClientMac, "198.18.1.1"), 0, 0);
    EXPECT_EQ(o.tx.size(), 1u) << "always answered";
    EXPECT_EQ(o.updates.size(), i < 4 ? 1u : 0u) << a;
  }
  // Next hops fill the rest; beyond it their packets are dropped, counted.
  for (int i = 0; i < 5; ++i) {
    const std::string a = "198.18.1." + std::to_string(20 + i);
    needs(waiting(a.c_str(), 1).bytes(), a.c_str(), 0, 0);
  }
  EXPECT_EQ(stats().queued, 4u);
  EXPECT_EQ(stats().dropped_table_full, 1u);
}

// ---- ARP: ageing ----

TEST_F(SlowPathTest, AgesOutAndProbesUnicast) {
  needs(waiting("198.18.1.20", 1).bytes(), "198.18.1.20", 0, 0);
  arp(arp_reply("198.18.1.20", kBackendMac, "198.18.1.1", kLbMac), 0, 10);
  EXPECT_TRUE(tick(30'009).tx.empty());

  // RFC 4861 7.3.3 style probe: a request to the cached address, not broadcast.
  const Bytes probe = arp_request("198.18.1.1", kLbMac, "198.18.1.20", kBackendMac);
  Out o = tick(30'010);
  EXPECT_EQ(o.tx, (std::vector<Sent>{{0, probe}}));
  EXPECT_TRUE(o.updates.empty()) << "the workers keep using it while it is probed";

  // Still usable while probed.
  o = needs(waiting("198.18.1.20", 2).bytes(), "198.18.1.20", 0, 30'050);
  EXPECT_EQ(o.tx.size(), 1u);

  // Confirmed: no update (nothing changed), no more probes until it ages again.
  o = arp(arp_reply("198.18.1.20", kBackendMac, "198.18.1.1", kLbMac), 0, 30'100);
  EXPECT_TRUE(o.updates.empty());
  EXPECT_TRUE(tick(31'100).tx.empty());
  EXPECT_TRUE(tick(60'099).tx.empty());
  EXPECT_EQ(tick(60'100).tx, (std::vector<Sent>{{0, probe}}));
}

TEST_F(SlowPathTest, ForgetsANeighbourThatStopsAnswering) {
  arp(arp_request("198.18.1.20", kBackendMac, "198.18.1.1"), 0, 0);  // learned at 0
  const Bytes probe = arp_request("198.18.1.1", kLbMac, "198.18.1.20", kBackendMac);
  EXPECT_EQ(tick(30'000).tx, (std::vector<Sent>{{0, probe}}));
  EXPECT_EQ(tick(31'000).tx, (std::vector<Sent>{{0, probe}}));
  EXPECT_EQ(tick(32'000).tx, (std::vector<Sent>{{0, probe}}));
  const Out o = tick(33'000);
  EXPECT_TRUE(o.tx.empty());
  EXPECT_EQ(o.updates, std::vector{update("198.18.1.20", kBackendMac, 0, false)});
  EXPECT_EQ(stats().requests_sent, 3u);
  // Failed now: a packet for it is dropped at once.
  needs(waiting("198.18.1.20", 1).bytes(), "198.18.1.20", 0, 33'100);
  EXPECT_EQ(stats().dropped_unresolved, 1u);
  // An answer after all brings it back.
  const Out back = arp(arp_request("198.18.1.20", kBackendMac, "198.18.1.1"), 0, 33'200);
  EXPECT_EQ(back.updates, std::vector{update("198.18.1.20", kBackendMac, 0)});
}

TEST_F(SlowPathTest, MergesAChangedMacOnlyWhenItChanged) {
  arp(arp_request("198.18.1.20", kBackendMac, "198.18.1.1"), 0, 0);
  // RFC 826 merge: a known sender updates its entry even when the message is not for us.
  Out o = arp(arp_request("198.18.1.20", kOtherMac, "198.18.1.20"), 0, 10);  // announcement
  EXPECT_EQ(o.updates, std::vector{update("198.18.1.20", kOtherMac, 0)});
  EXPECT_TRUE(o.tx.empty());
  o = arp(arp_request("198.18.1.20", kOtherMac, "198.18.1.99"), 0, 20);
  EXPECT_TRUE(o.updates.empty());
  // Nobody may claim our own addresses (RFC 5227 2.4 conflict): nothing cached.
  o = arp(arp_reply("198.18.1.1", kOtherMac, "198.18.1.1", kLbMac), 0, 30);
  EXPECT_TRUE(o.updates.empty());
  o = arp(arp_request("198.18.100.1", kOtherMac, "198.18.1.1"), 0, 40);
  EXPECT_TRUE(o.updates.empty());
  EXPECT_EQ(o.tx.size(), 1u);
}

// ---- Neighbour discovery ----

TEST_F(SlowPathTest, AnswersSolicitationsForPortAddressesAndVips) {
  const uint8_t so = dp::kNaSolicited | dp::kNaOverride;
  Out o = ndp(ns("2001:db8:1::10", "2001:db8:1::1"), 0, 0);
  EXPECT_EQ(o.tx, (std::vector<Sent>{{0, na("2001:db8:1::1", "2001:db8:1::10", kClientMac,
                                            "2001:db8:1::1", so, kLbMac)}}));
  EXPECT_EQ(o.updates, std::vector{update("2001:db8:1::10", kClientMac, 0)});

  o = ndp(ns("2001:db8:2::10", "2001:db8:100::1"), 1, 0);
  EXPECT_EQ(o.tx, (std::vector<Sent>{{1, na("2001:db8:100::1", "2001:db8:2::10", kClientMac,
                                            "2001:db8:100::1", so, kLb2Mac)}}));

  // Duplicate address detection from ::: defended to all nodes, not solicited (RFC 4861 7.2.4).
  const Bytes dad = Packet()
                        .eth(kClientMac, solicited_mac("2001:db8:1::1"))
                        .ipv6("::", "ff02::1:ff00:1")
                        .ndp_ns("2001:db8:1::1")
                        .bytes();
  o = ndp(dad, 0, 0);
  EXPECT_EQ(o.tx, (std::vector<Sent>{{0, na("2001:db8:1::1", "ff02::1", {0x33, 0x33, 0, 0, 0, 1},
                                            "2001:db8:1::1", dp::kNaOverride, kLbMac)}}));
  EXPECT_TRUE(o.updates.empty());

  // A unicast probe without a source link-layer option is answered to the frame's sender.
  const Bytes probe = Packet()
                          .eth(kOtherMac, kLbMac)
                          .ipv6("2001:db8:1::11", "2001:db8:1::1")
                          .ndp_ns("2001:db8:1::1")
                          .bytes();
  o = ndp(probe, 0, 0);
  EXPECT_EQ(o.tx, (std::vector<Sent>{{0, na("2001:db8:1::1", "2001:db8:1::11", kOtherMac,
                                            "2001:db8:1::1", so, kLbMac)}}));
  EXPECT_TRUE(o.updates.empty());

  EXPECT_EQ(stats().nd_solicitations_answered, 4u);
  // Not ours: ignored.
  o = ndp(ns("2001:db8:1::10", "2001:db8:1::99"), 0, 0);
  EXPECT_TRUE(o.tx.empty());
  EXPECT_EQ(stats().ignored, 1u);
}

TEST_F(SlowPathTest, ResolvesIpv6NextHopsWithSolicitations) {
  Out o = needs(waiting6("2001:db8:1::20", 1).bytes(), "2001:db8:1::20", 0, 0);
  const Bytes solicit = Packet()
                            .eth(kLbMac, solicited_mac("2001:db8:1::20"))
                            .ipv6("2001:db8:1::1", "ff02::1:ff00:20")
                            .ndp_ns("2001:db8:1::20", kLbMac)
                            .bytes();
  EXPECT_EQ(o.tx, (std::vector<Sent>{{0, solicit}}));
  EXPECT_EQ(tick(1000).tx, (std::vector<Sent>{{0, solicit}}));

  // An unsolicited NA for an unknown address creates nothing (RFC 4861 7.2.5).
  o = ndp(na("2001:db8:1::30", "ff02::1", {0x33, 0x33, 0, 0, 0, 1}, "2001:db8:1::30",
             dp::kNaOverride, kOtherMac),
          0, 1100);
  EXPECT_TRUE(o.updates.empty());

  o = ndp(na("2001:db8:1::20", "2001:db8:1::1", kLbMac, "2001:db8:1::20", dp::kNaSolicited,
             kBackendMac),
          0, 1200);
  EXPECT_EQ(o.updates, std::vector{update("2001:db8:1::20", kBackendMac, 0)});
  EXPECT_EQ(
      o.tx,
      (std::vector<Sent>{{0, waiting6("2001:db8:1::20", 1).eth(kLbMac, kBackendMac).bytes()}}));
  EXPECT_EQ(stats().nd_advertisements_learned, 1u);

  // RFC 4861 7.2.5: without Override, an NA does not replace a cached address...
  o = ndp(
      na("2001:db8:1::20", "2001:db8:1::1", kLbMac, "2001:db8:1::20", dp::kNaSolicited, kOtherMac),
      0, 1300);
  EXPECT_TRUE(o.updates.empty());
  // ...with it, it does.
  o = ndp(na("2001:db8:1::20", "ff02::1", {0x33, 0x33, 0, 0, 0, 1}, "2001:db8:1::20",
             dp::kNaOverride, kOtherMac),
          0, 1400);
  EXPECT_EQ(o.updates, std::vector{update("2001:db8:1::20", kOtherMac, 0)});

  // Probed unicast when it ages: NS straight to the cached address. A solicited NA confirms
  // it; the last one (1200) did, the unsolicited one (1400) did not.
  const Bytes probe = Packet()
                          .eth(kLbMac, kOtherMac)
                          .ipv6("2001:db8:1::1", "2001:db8:1::20")
                          .ndp_ns("2001:db8:1::20", kLbMac)
                          .bytes();
  EXPECT_TRUE(tick(31'199).tx.empty());
  EXPECT_EQ(tick(31'200).tx, (std::vector<Sent>{{0, probe}}));
}

TEST_F(SlowPathTest, GivesUpOnIpv6NextHopsToo) {
  needs(waiting6("2001:db8:2::20", 1).bytes(), "2001:db8:2::20", 1, 0);
  tick(1000);
  tick(2000);
  EXPECT_EQ(stats().requests_sent, 3u);
  tick(3000);
  EXPECT_EQ(stats().dropped_unresolved, 1u);
}

TEST_F(SlowPathTest, IgnoresInvalidAndUnsupportedNdp) {
  const auto to_us = [] {
    return Packet().eth(kClientMac, kLbMac).ipv6("2001:db8:1::10", "2001:db8:1::1");
  };
  Bytes bad_checksum = ns("2001:db8:1::10", "2001:db8:1::1");
  bad_checksum[14 + 40 + 2] ^= 0x40;
  struct Case {
    const char* name;
    Bytes frame;
  };
  const std::vector<Case> cases = {
      {"hop_limit_64", to_us().ndp_ns("2001:db8:1::1", kClientMac).ttl(64).bytes()},
      {"bad_checksum", bad_checksum},
      {"router_solicitation", Packet()
                                  .eth(kClientMac, {0x33, 0x33, 0, 0, 0, 2})
                                  .ipv6("2001:db8:1::10", "ff02::2")
                                  .icmp(133, 0)
                                  .ttl(255)
                                  .bytes()},
      {"na_for_an_unknown_neighbour", na("2001:db8:1::10", "2001:db8:1::1", kLbMac,
                                         "2001:db8:1::10", dp::kNaSolicited, kClientMac)},
      {"na_without_target_option", to_us().ndp_na("2001:db8:1::10", dp::kNaSolicited).bytes()},
      {"not_icmp", to_us().udp(1, 2).bytes()},
      {"garbage", Bytes(30, 0x66)},
  };
  uint64_t ignored = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Out o = ndp(c.frame, 0, 0);
    EXPECT_TRUE(o.tx.empty());
    EXPECT_TRUE(o.updates.empty());
    EXPECT_EQ(stats().ignored, ++ignored);
  }
}

// ---- Announcements ----

TEST_F(SlowPathTest, AnnouncesPortAddressesAndVips) {
  const std::vector<dp::IpAddr> vips = {ip("198.18.1.50"), ip("198.18.100.1"),
                                        ip("2001:db8:100::1")};
  dp::SlowPathOutput o;
  sp_->announce(vips, 0, o);
  const Out got = collect(o);
  const auto garp = [](const char* a, const Mac& m) {
    return Packet().eth(m, kBroadcast).arp(dp::kArpRequest, m, a, kZeroMac, a).pad(18).bytes();
  };
  const auto una = [](const char* a, const Mac& m) {
    return na(a, "ff02::1", {0x33, 0x33, 0, 0, 0, 1}, a, dp::kNaOverride, m);
  };
  const std::vector<Sent> want = {
      {0, garp("198.18.1.1", kLbMac)},      {0, una("2001:db8:1::1", kLbMac)},
      {1, garp("198.18.2.1", kLb2Mac)},     {1, una("2001:db8:2::1", kLb2Mac)},
      {0, garp("198.18.1.50", kLbMac)},   // on the port whose subnet holds it
      {0, garp("198.18.100.1", kLbMac)},  // on no port's subnet: on every port
      {1, garp("198.18.100.1", kLb2Mac)},   {0, una("2001:db8:100::1", kLbMac)},
      {1, una("2001:db8:100::1", kLb2Mac)},
  };
  EXPECT_EQ(got.tx, want);
  EXPECT_TRUE(got.updates.empty());
}

// ---- Resources ----

TEST_F(SlowPathTest, AnExhaustedPoolIsCounted) {
  pool_.limit = 1;  // room for the received frame only
  const Out o = arp(arp_request("198.18.1.10", kClientMac, "198.18.1.1"), 0, 0);
  EXPECT_TRUE(o.tx.empty());
  EXPECT_EQ(stats().alloc_failed, 1u);
  EXPECT_EQ(stats().arp_requests_answered, 0u);
}

TEST_F(SlowPathTest, DestructionFreesEverythingHeld) {
  for (uint16_t i = 0; i < 3; ++i) {
    needs(waiting("198.18.1.20", i).bytes(), "198.18.1.20", 0, 0);
    needs(waiting6("2001:db8:1::20", i).bytes(), "2001:db8:1::20", 0, 0);
  }
  EXPECT_EQ(pool_.live(), 6u);
  sp_.reset();
  EXPECT_EQ(pool_.live(), 0u);
}

// ---- The exception path ----

// Frames for the node itself go to their port's kernel interface as they came.
TEST_F(SlowPathTest, HandsFramesForTheNodeToItsKernelInterface) {
  kernel_port0_ = true;
  start();
  const Bytes ssh = Packet().eth(kClientMac, kLbMac).ipv4("198.18.1.10", "198.18.1.1")
                        .tcp(50000, 22, dp::kTcpSyn).bytes();
  const Out o = handle(ssh, SlowReason::kernel, 0, 0);
  EXPECT_EQ(o.kernel, (std::vector<Sent>{{0, ssh}}));
  EXPECT_TRUE(o.tx.empty());
  EXPECT_EQ(stats().kernel_frames, 1u);
  // Port 1 has no kernel interface (it went away, or never was): freed, counted as ignored.
  const Out none = handle(ssh, SlowReason::kernel, 1, 0);
  EXPECT_TRUE(none.kernel.empty());
  EXPECT_EQ(stats().kernel_frames, 1u);
  EXPECT_EQ(stats().ignored, 1u);
}

// The kernel resolves its own neighbours (its BGP peer, its default gateway): the replies and
// advertisements Magline does not answer reach it too, learned by Magline on the way. Requests
// for Magline's addresses are Magline's alone to answer.
TEST_F(SlowPathTest, TheKernelHearsTheArpAndNdpMaglineDoesNotAnswer) {
  kernel_port0_ = true;
  start();
  const Bytes reply = arp_reply("198.18.1.254", kOtherMac, "198.18.1.1", kLbMac);
  const Out r = arp(reply, 0, 0);
  EXPECT_EQ(r.kernel, (std::vector<Sent>{{0, reply}}));
  EXPECT_EQ(r.updates, std::vector{update("198.18.1.254", kOtherMac, 0)});

  const Out q = arp(arp_request("198.18.1.10", kClientMac, "198.18.1.1"), 0, 0);
  EXPECT_EQ(q.tx.size(), 1u);  // answered by Magline
  EXPECT_TRUE(q.kernel.empty());

  const Bytes advert = na("2001:db8:1::fe", "2001:db8:1::1", kLbMac, "2001:db8:1::fe",
                          dp::kNaSolicited | dp::kNaOverride, kOtherMac);
  const Out a = ndp(advert, 0, 0);
  EXPECT_EQ(a.kernel, (std::vector<Sent>{{0, advert}}));

  const Out s = ndp(ns("2001:db8:1::10", "2001:db8:1::1"), 0, 0);
  EXPECT_EQ(s.tx.size(), 1u);
  EXPECT_TRUE(s.kernel.empty());
  EXPECT_EQ(stats().kernel_frames, 2u);

  // On a port without a kernel interface nothing is copied.
  const Out other = arp(arp_reply("198.18.2.254", kOtherMac, "198.18.2.1", kLb2Mac), 1, 0);
  EXPECT_TRUE(other.kernel.empty());
  EXPECT_EQ(stats().kernel_frames, 2u);
}

}  // namespace
}  // namespace magline::test
