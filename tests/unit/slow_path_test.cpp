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

namespace magline::test {
namespace {

using dp::SlowReason;

constexpr Mac kZeroMac{};
constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr Mac kLb2Mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x04};
constexpr Mac kOtherMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x09};

dp::IpAddr ip(const char* text) {
  return *dp::parse_ip(text);
}

// Vector-backed buffers with headroom, counted: every test ends with none outstanding.
class FakePool : public dp::PacketPool {
 public:
  static constexpr uint16_t kHeadroom = 64;

  bool alloc(dp::Packet& p, uint16_t len) override {
    if (bufs_.size() >= limit) return false;
    auto buf = std::make_unique<Bytes>(kHeadroom + len, 0xee);
    p = dp::Packet{};
    p.handle = buf.get();
    p.data = buf->data() + kHeadroom;
    p.len = len;
    p.headroom = kHeadroom;
    bufs_.emplace(buf.get(), std::move(buf));
    ++allocs;
    return true;
  }

  void free(dp::Packet& p) override {
    EXPECT_EQ(bufs_.erase(p.handle), 1u) << "freed twice, or not from this pool";
    ++frees;
  }

  // A received frame, in a buffer of exactly its size (ASan sees any read past it).
  dp::Packet received(const Bytes& frame, uint16_t port) {
    dp::Packet p;
    EXPECT_TRUE(alloc(p, uint16_t(frame.size())));
    std::copy(frame.begin(), frame.end(), p.data);
    p.port = port;
    return p;
  }

  size_t live() const { return bufs_.size(); }

  size_t limit = std::numeric_limits<size_t>::max();
  size_t allocs = 0;
  size_t frees = 0;

 private:
  std::map<void*, std::unique_ptr<Bytes>> bufs_;
};

struct Sent {
  uint16_t port;
  Bytes frame;
  friend bool operator==(const Sent&, const Sent&) = default;
};

void PrintTo(const Sent& s, std::ostream* os) {
  *os << "port " << s.port << ": " << ::testing::PrintToString(s.frame);
}

std::string str(const dp::NeighborUpdate& u) {
  return dp::to_string(u.ip) + " " + dp::to_string(u.mac) + " port " + std::to_string(u.port) +
         (u.valid ? "" : " forget");
}

std::string update(const char* addr, const Mac& mac, uint16_t port, bool valid = true) {
  return str({ip(addr), dp::MacAddr{mac}, port, valid});
}

struct Out {
  std::vector<Sent> tx;
  std::vector<std::string> updates;
  std::vector<std::string> path_mtus;  // "backend mtu"
};

class SlowPathTest : public ::testing::Test {
 protected:
  static dp::Node test_node() {
    dp::Node n;
    n.ports.push_back(
        {0, "p0", dp::MacAddr{kLbMac}, {{ip("198.18.1.1"), 24}, {ip("2001:db8:1::1"), 64}}, 1500});
    n.ports.push_back(
        {1, "p1", dp::MacAddr{kLb2Mac}, {{ip("198.18.2.1"), 24}, {ip("2001:db8:2::1"), 64}}, 1500});
    n.encap.source_v4 = *dp::parse_prefix("198.18.250.0/24", dp::HostBits::reject);
    return n;
  }

  void SetUp() override { start(); }

  void TearDown() override {
    sp_.reset();
    EXPECT_EQ(pool_.live(), 0u) << "buffers leaked";
    EXPECT_EQ(pool_.allocs, pool_.frees);
  }

  void start() {
    sp_.reset();
    const std::set<dp::IpAddr> vips = {ip("198.18.100.1"), ip("198.18.1.50"),
                                       ip("2001:db8:100::1")};
    sp_ = std::make_unique<dp::SlowPath>(
        test_node(), [vips](const dp::IpAddr& a) { return vips.count(a) == 1; }, pool_, cfg_);
  }

  // What a call produced. Every frame must parse with correct checksums; it is copied out and
  // its buffer returned to the pool.
  Out collect(dp::SlowPathOutput& o) {
    Out out;
    for (dp::Packet& p : o.tx) {
      Bytes frame(p.data, p.data + p.len);
      EXPECT_EQ(checksum_errors(frame), "");
      out.tx.push_back({p.port, std::move(frame)});
      pool_.free(p);
    }
    for (const dp::NeighborUpdate& u : o.updates)
      out.updates.push_back(str(u));
    for (const dp::PathMtuUpdate& m : o.path_mtus)
      out.path_mtus.push_back(dp::to_string(m.backend) + " " + std::to_string(m.mtu));
    EXPECT_EQ(o.worker_updates().size(), o.updates.size() + o.path_mtus.size());
    return out;
  }

  Out handle(const Bytes& frame, SlowReason why, uint16_t port, uint64_t now,
             dp::NextHop hop = {}) {
    dp::SlowPathOutput o;
    sp_->handle({pool_.received(frame, port), why, hop}, now, o);
    return collect(o);
  }
  Out arp(const Bytes& frame, uint16_t port, uint64_t now) {
    return handle(frame, SlowReason::arp, port, now);
  }
  Out ndp(const Bytes& frame, uint16_t port, uint64_t now) {
    return handle(frame, SlowReason::ndp, port, now);
  }
  Out needs(const Bytes& frame, const char* next_hop, uint16_t port, uint64_t now) {
    // The worker hands the packet over from the port it came in on (7 here, irrelevant).
    return handle(frame, SlowReason::needs_neighbor, 7, now, {ip(next_hop), port});
  }
  Out tick(uint64_t now) {
    dp::SlowPathOutput o;
    sp_->tick(now, o);
    return collect(o);
  }
  const dp::SlowPathStats& stats() const { return sp_->stats(); }

  dp::SlowPathConfig cfg_ = [] {
    dp::SlowPathConfig c;
    c.request_interval_ms = 1000;
    c.request_attempts = 3;
    c.reachable_ms = 30'000;
    c.max_queued_per_neighbor = 4;
    c.max_queued_total = 6;
    c.max_neighbors = 8;
    c.max_path_mtus = 2;
    return c;
  }();
  FakePool pool_;
  std::unique_ptr<dp::SlowPath> sp_;
};

// ---- Frames ----

Bytes arp_request(const char* sender, const Mac& sender_mac, const char* target,
                  const Mac& dst = kBroadcast) {
  return Packet()
      .eth(sender_mac, dst)
      .arp(dp::kArpRequest, sender_mac, sender, kZeroMac, target)
      .pad(18)
      .bytes();
}

Bytes arp_reply(const char* sender, const Mac& sender_mac, const char* target,
                const Mac& target_mac) {
  return Packet()
      .eth(sender_mac, target_mac)
      .arp(dp::kArpReply, sender_mac, sender, target_mac, target)
      .pad(18)
      .bytes();
}

// A packet the workers have fully rewritten, waiting only for its Ethernet addresses.
Packet waiting(const char* dst, uint16_t sport) {
  return Packet().eth(kZeroMac, kZeroMac).ipv4("198.18.50.1", dst).udp(sport, 80).payload("data");
}
Packet waiting6(const char* dst, uint16_t sport) {
  return Packet().eth(kZeroMac, kZeroMac).ipv6("2001:db8:50::1", dst).udp(sport, 80);
}

Mac solicited_mac(const char* target) {
  return dp::ipv6_multicast_mac(dp::solicited_node(ip(target))).b;
}

Bytes ns(const char* src, const char* target, const Mac& from = kClientMac) {
  const std::string group = dp::to_string(dp::solicited_node(ip(target)));
  return Packet().eth(from, solicited_mac(target)).ipv6(src, group).ndp_ns(target, from).bytes();
}

Bytes na(const char* src, const char* dst, const Mac& to, const char* target, uint8_t flags,
         const Mac& ll) {
  return Packet().eth(ll, to).ipv6(src, dst).ndp_na(target, flags, ll).bytes();
}

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
