// The slow path's side of tunnels (IPIP, GUE): backends' path MTUs learned from routers' ICMP
// errors, ARP for the outer sources, and encapsulated packets split to fit.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/slow_path.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/unit/slow_path_fixture.hpp"

namespace magline::test {
namespace {

// ---- Path MTUs of tunnelled backends ----

// A router's "fragmentation needed" (MTU `mtu`) about an IPIP packet Magline sent from `outer_src`
// to `backend`.
Bytes frag_needed(const char* outer_src, const char* backend, uint16_t mtu) {
  const Packet client = Packet().ipv4("198.18.10.1", "198.18.100.1").dont_fragment()
      .tcp(40000, 80).payload(Bytes(100, 'x'));
  return Packet().eth(kOtherMac, kLbMac).ipv4("198.18.1.254", outer_src)
      .icmp_error(dp::kIcmpUnreachable, dp::kIcmpFragNeeded,
                  Packet().ipv4(outer_src, backend).protocol(4).payload(client.l3_bytes()),
                  Packet::kWhole, mtu)
      .bytes();
}

TEST_F(SlowPathTest, LearnsATunnelledBackendsPathMtuLowersItAndForgetsItAfterItsExpiry) {
  const auto error = [&](uint16_t mtu, uint64_t now) {
    return handle(frag_needed("198.18.250.9", "198.19.200.7", mtu), SlowReason::path_mtu, 0, now)
        .path_mtus;
  };
  using Strings = std::vector<std::string>;
  EXPECT_EQ(error(1400, 0), Strings{"198.19.200.7 1400"});
  EXPECT_EQ(error(1400, 1000), Strings{});   // the same: refreshed, nothing new
  EXPECT_EQ(error(1450, 2000), Strings{});   // larger: only the expiry raises it
  EXPECT_EQ(error(1300, 3000), Strings{"198.19.200.7 1300"});
  EXPECT_EQ(tick(602'999).path_mtus, Strings{});
  EXPECT_EQ(tick(603'000).path_mtus, Strings{"198.19.200.7 0"});
  EXPECT_EQ(error(1450, 604'000), Strings{"198.19.200.7 1450"});  // found again
  EXPECT_EQ(stats().path_mtus_learned, 3u);
  EXPECT_EQ(stats().path_mtus_expired, 1u);
}

TEST_F(SlowPathTest, APathMtuIsClampedAndBoundedAndOnlyOurTunnelsCount) {
  using Strings = std::vector<std::string>;
  // From a port address too; below IPv4's least path MTU: taken as 552.
  EXPECT_EQ(handle(frag_needed("198.18.1.1", "198.19.200.7", 300), SlowReason::path_mtu, 0, 0)
                .path_mtus, Strings{"198.19.200.7 552"});
  // Not from one of our addresses: someone else's tunnel.
  EXPECT_EQ(handle(frag_needed("198.18.9.9", "198.19.200.8", 1300), SlowReason::path_mtu, 0, 0)
                .path_mtus, Strings{});
  EXPECT_EQ(stats().ignored, 1u);
  EXPECT_EQ(handle(frag_needed("198.18.250.1", "198.19.200.8", 1300), SlowReason::path_mtu, 0, 0)
                .path_mtus, Strings{"198.19.200.8 1300"});
  // max_path_mtus (2 here) backends have one: a third is refused.
  EXPECT_EQ(handle(frag_needed("198.18.250.1", "198.19.200.9", 1300), SlowReason::path_mtu, 0, 0)
                .path_mtus, Strings{});
  EXPECT_EQ(stats().path_mtus_refused, 1u);
}

TEST_F(SlowPathTest, AnIpv6PacketTooBigAboutGueIsLearnedToo) {
  const Packet inner = Packet().ipv4("198.18.10.1", "198.18.100.1").udp(40000, 53);
  const Bytes ptb = Packet().eth(kOtherMac, kLbMac).ipv6("2001:db8:1::fe", "2001:db8:1::1")
      .icmp_error(dp::kIcmpv6PacketTooBig, 0,
                  Packet().ipv6("2001:db8:1::1", "2001:db8:200::7").udp(49200, 6080)
                      .payload(inner.l3_bytes()),
                  Packet::kWhole, 1000)
      .bytes();
  EXPECT_EQ(handle(ptb, SlowReason::path_mtu, 0, 0).path_mtus,
            std::vector<std::string>{"2001:db8:200::7 1280"});  // IPv6's least
}

TEST_F(SlowPathTest, AnswersArpForTheEncapsulationsOuterSources) {
  const Out o = arp(arp_request("198.18.1.254", kOtherMac, "198.18.250.77"), 0, 0);
  ASSERT_EQ(o.tx.size(), 1u);
  EXPECT_EQ(o.tx[0].frame, arp_reply("198.18.250.77", kLbMac, "198.18.1.254", kOtherMac));
}

// ---- Splitting encapsulated packets (encapsulation.fragment) ----

// What a worker hands over: an IPIP packet to 198.19.200.7 (via 198.18.1.254) whose inner IPv4
// datagram has no DF and is too big for the port's MTU once encapsulated.
Bytes too_big_ipip(size_t payload) {
  const Packet inner = Packet().ipv4("198.18.10.1", "198.18.100.1").udp(40000, 53)
      .payload(Bytes(payload, 'u'));
  return Packet().eth(kClientMac, kLbMac).ipv4("198.18.250.3", "198.19.200.7").protocol(4)
      .payload(inner.l3_bytes()).bytes();
}

TEST_F(SlowPathTest, SplitsAnEncapsulatedPacketIntoPiecesThatWaitForTheirNeighbour) {
  const Out o = handle(too_big_ipip(1472), SlowReason::split, 7, 0, {ip("198.18.1.254"), 0});
  ASSERT_EQ(o.tx.size(), 1u);  // the ARP request for the next hop; the pieces wait
  EXPECT_EQ(stats().split_packets, 1u);
  EXPECT_EQ(stats().split_pieces, 2u);
  const Out released = arp(arp_reply("198.18.1.254", kOtherMac, "198.18.1.1", kLbMac), 0, 10);
  ASSERT_EQ(released.tx.size(), 2u);
  size_t inner_bytes = 0;
  for (const Sent& s : released.tx) {
    dp::Parsed p;
    ASSERT_EQ(dp::parse(s.frame, p), dp::DropReason::none);
    EXPECT_EQ(s.port, 0u);
    EXPECT_EQ(Bytes(s.frame.begin(), s.frame.begin() + 6),
              Bytes(kOtherMac.begin(), kOtherMac.end()));
    EXPECT_LE(p.l3_end - p.l3_off, 1500);
    EXPECT_EQ(p.key.proto, 4);
    inner_bytes += p.l3_end - p.l4_off - 20u;
  }
  EXPECT_EQ(inner_bytes, 1480u);  // the UDP header and payload, all there
}

// A learned path MTU is the one pieces fit; an inner packet that may not be split is dropped.
TEST_F(SlowPathTest, SplitsToTheLearnedPathMtuAndDropsWhatCannotBeSplit) {
  handle(frag_needed("198.18.250.9", "198.19.200.7", 1000), SlowReason::path_mtu, 0, 0);
  handle(too_big_ipip(1472), SlowReason::split, 7, 0, {ip("198.18.1.254"), 0});
  EXPECT_EQ(stats().split_pieces, 2u);  // 1480 bytes in pieces of 976
  Bytes options = too_big_ipip(1472);
  options[14 + 20] = 0x46;  // the inner header claims an option: not split
  handle(options, SlowReason::split, 7, 0, {ip("198.18.1.254"), 0});
  EXPECT_EQ(stats().split_failed, 1u);
  EXPECT_EQ(stats().split_packets, 1u);
}

}  // namespace
}  // namespace magline::test
