// Ports on virtual devices: net_ring (several queues, from rings and probed), net_null (the one
// vdev with RSS), and what each reports about RSS, RETA and rte_flow.
//
// What the vdevs support (DPDK 22.11, as these tests check):
// - net_ring: up to 16 RX/TX queues (one rte_ring each); no RSS (flow_type_rss_offloads 0; hash
//   configuration query -ENOTSUP; no RETA); no rte_flow (rte_flow_validate -ENOSYS). The sender
//   picks the queue by picking the ring, so ports on it run with RssMode::off.
// - net_null: up to 1024 queues; RSS configuration accepted for many types (the hash is never
//   computed: every packet is generated locally), key reported (the Microsoft verification key,
//   40 bytes, although dev_info's hash_key_size is 0), 128-entry RETA reported (all queue 0:
//   the PMD does not fill it in); no rte_flow (-ENOSYS).
// - net_pcap: one RX and one TX queue per rx_pcap/tx_pcap pair; no RSS, no RETA, no rte_flow
//   (pcap_test.cpp).
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataplane/dpdk/flow_steer.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/port.hpp"
#include "dataplane/steering.hpp"
#include "tests/integration/eal_env.hpp"
#include "tests/integration/mbuf_helpers.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::dpdk {
namespace {

using test::test_pool;

constexpr uint8_t kMsKey[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

std::vector<uint8_t> frame(uint16_t sport) {
  return test::Packet()
      .eth(test::kClientMac, test::kLbMac)
      .ipv4("198.18.0.1", "198.18.100.1")
      .udp(sport, 53)
      .payload("magline")
      .bytes();
}

// A net_ring port over rings the test holds: RX queue i reads rx_[i], TX queue i writes tx_[i].
class RingPort : public ::testing::Test {
 protected:
  static constexpr unsigned kQueues = 4;

  void SetUp() override {
    for (unsigned i = 0; i < kQueues; ++i) {
      rx_[i] = rte_ring_create(("it_rx" + std::to_string(i)).c_str(), 256, SOCKET_ID_ANY,
                               RING_F_SP_ENQ | RING_F_SC_DEQ);
      tx_[i] = rte_ring_create(("it_tx" + std::to_string(i)).c_str(), 256, SOCKET_ID_ANY,
                               RING_F_SP_ENQ | RING_F_SC_DEQ);
      ASSERT_NE(rx_[i], nullptr);
      ASSERT_NE(tx_[i], nullptr);
    }
    ASSERT_GE(rte_eth_from_rings(kRings, rx_, kQueues, tx_, kQueues, SOCKET_ID_ANY), 0);
  }

  void TearDown() override {
    port_.reset();  // closes the ethdev
    rte_eal_hotplug_remove("vdev", kName);  // rte_eth_from_rings made a vdev
    for (unsigned i = 0; i < kQueues; ++i) {
      drain(rx_[i]);
      drain(tx_[i]);
      rte_ring_free(rx_[i]);
      rte_ring_free(tx_[i]);
    }
  }

  static void drain(rte_ring* r) {
    void* m;
    while (r != nullptr && rte_ring_dequeue(r, &m) == 0) {
      rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }
  }

  Port& open(PortConfig cfg) {
    auto p = Port::open(cfg, test_pool());
    EXPECT_TRUE(p.ok()) << p.error().message;
    port_.emplace(std::move(p).value());
    return *port_;
  }

  static constexpr const char* kRings = "it";             // rte_eth_from_rings prefixes
  static constexpr const char* kName = "net_ring_it";     // "net_ring_" to the name
  rte_ring* rx_[kQueues] = {};
  rte_ring* tx_[kQueues] = {};
  std::optional<Port> port_;
};

TEST_F(RingPort, SeveralQueuesNeedRssUnlessItIsOff) {
  auto p = Port::open({.device = kName, .rx_queues = 4, .tx_queues = 4}, test_pool());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("supports no RSS hash types"), std::string::npos)
      << p.error().message;
  // Too many queues is refused with the device's limits in the message. (A failed open leaves
  // a device it did not probe in place.)
  auto q = Port::open({.device = kName, .rx_queues = 5, .rss = RssMode::off}, test_pool());
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("1 to 4 RX"), std::string::npos) << q.error().message;
}

TEST_F(RingPort, ReceivesOnTheQueueItsRingFeedsAndSendsOnTheChosenOne) {
  Port& port = open({.device = kName, .rx_queues = 4, .tx_queues = 4, .rss = RssMode::off});
  ASSERT_TRUE(port.start().ok());
  EXPECT_TRUE(port.link().up);

  // Three frames into ring 2: only RX queue 2 sees them.
  std::vector<rte_mbuf*> sent;
  for (uint16_t i = 0; i < 3; ++i) sent.push_back(test::mbuf_with(test_pool(), frame(1000 + i)));
  ASSERT_EQ(rte_ring_enqueue_burst(rx_[2], reinterpret_cast<void**>(sent.data()), 3, nullptr), 3u);
  dp::Packet pkts[kMaxBurst];
  EXPECT_EQ(rx_burst(port.id(), 0, pkts, kMaxBurst), 0);
  ASSERT_EQ(rx_burst(port.id(), 2, pkts, kMaxBurst), 3);
  for (uint16_t i = 0; i < 3; ++i) {
    EXPECT_EQ(pkts[i].handle, sent[i]);
    EXPECT_EQ(pkts[i].port, port.id());
    EXPECT_EQ(test::bytes_of(pkts[i]), frame(1000 + i));
  }

  // Back out through TX queue 3, after a rewrite in place.
  pkts[0].data[pkts[0].len - 1] = 'X';
  ASSERT_EQ(tx_burst(port.id(), 3, pkts, 3), 3);
  void* out[8];
  EXPECT_EQ(rte_ring_dequeue_burst(tx_[0], out, 8, nullptr), 0u);
  ASSERT_EQ(rte_ring_dequeue_burst(tx_[3], out, 8, nullptr), 3u);
  auto* m = static_cast<rte_mbuf*>(out[0]);
  EXPECT_EQ(m, sent[0]);
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*)[m->data_len - 1], 'X');
  for (int i = 0; i < 3; ++i) rte_pktmbuf_free(static_cast<rte_mbuf*>(out[i]));

  auto stats = port.stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rx_packets, 3u);
  EXPECT_EQ(stats->tx_packets, 3u);
  EXPECT_TRUE(port.xstats().ok());
}

TEST_F(RingPort, ReportsNoRssAndNoFlowSteering) {
  Port& port = open({.device = kName, .rx_queues = 4, .tx_queues = 4, .rss = RssMode::off});
  ASSERT_TRUE(port.start().ok());
  EXPECT_EQ(port.rss().supported_types, 0u);
  EXPECT_EQ(port.rss().configured_types, 0u);
  EXPECT_TRUE(port.rss().key.empty());
  EXPECT_TRUE(port.rss().reta.empty());
  EXPECT_NE(port.rss().note.find("not reported"), std::string::npos) << port.rss().note;
  auto steering = port.steering();
  ASSERT_FALSE(steering.ok());
  EXPECT_NE(steering.error().message.find("unknown"), std::string::npos);

  // rte_flow: net_ring has none. "unsupported", cleanly, and nothing installed.
  const SnatSteerConfig cfg{.addresses = {*dp::parse_ip("198.18.0.1"),
                                          *dp::parse_ip("2001:db8::1")},
                            .workers = 4};
  auto rules = FlowSteering::install(port, cfg);
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  EXPECT_FALSE(rules->active());
  EXPECT_EQ(rules->rule_count(), 0u);
  EXPECT_EQ(rules->reason().rfind("unsupported", 0), 0u) << rules->reason();
  const SteeringInEffect in_effect = steering_in_effect(port, &*rules);
  EXPECT_EQ(in_effect.kind, SteeringKind::unknown);
  EXPECT_NE(in_effect.detail.find("rte_flow"), std::string::npos) << in_effect.detail;

  // Three workers: no mask partitions the range, whatever the device.
  auto three = FlowSteering::install(port, {.addresses = cfg.addresses, .workers = 3});
  ASSERT_TRUE(three.ok());
  EXPECT_FALSE(three->active());
  EXPECT_NE(three->reason().find("power of two"), std::string::npos);
  // More workers than queues, or nothing to steer: bad arguments.
  EXPECT_FALSE(FlowSteering::install(port, {.addresses = cfg.addresses, .workers = 8}).ok());
  EXPECT_FALSE(FlowSteering::install(port, {.workers = 4}).ok());
  EXPECT_EQ(dp::RssWorkers::partition_owner(40007, 4), 3);
}

TEST(ProbedRing, LoopsEachTxQueueBackToItsRxQueueAndIsRemovedOnClose) {
  // A net_ring vdev probed without arguments: queue i's TX feeds queue i's RX.
  {
    auto p = Port::open({.device = "net_ring9", .devargs = "net_ring9", .rx_queues = 2,
                         .tx_queues = 2, .rss = RssMode::off},
                        test_pool());
    ASSERT_TRUE(p.ok()) << p.error().message;
    ASSERT_TRUE(p->start().ok());
    EXPECT_EQ(p->driver(), "net_ring");
    dp::Packet pkt = to_packet(test::mbuf_with(test_pool(), frame(7)), p->id());
    ASSERT_EQ(tx_burst(p->id(), 1, &pkt, 1), 1);
    dp::Packet back[4];
    EXPECT_EQ(rx_burst(p->id(), 0, back, 4), 0);
    ASSERT_EQ(rx_burst(p->id(), 1, back, 4), 1);
    EXPECT_EQ(test::bytes_of(back[0]), frame(7));
    free_packets(back, 1);
    EXPECT_NE(steering_in_effect(*p, nullptr).kind, SteeringKind::single_queue);
  }
  uint16_t id;
  EXPECT_NE(rte_eth_dev_get_port_by_name("net_ring9", &id), 0) << "still there after close";
  EXPECT_FALSE(Port::open({.device = "net_ring9"}, test_pool()).ok());
}

// net_null0 comes from the EAL's --vdev; the other tests probe their own devices (a closed
// ethdev is released and cannot be opened again).
TEST(NullPort, RssConfigurationKeyAndRetaAreReported) {
  auto p = Port::open({.device = "net_null0", .rx_queues = 4, .tx_queues = 4}, test_pool());
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_TRUE(p->start().ok());
  const RssInfo& rss = p->rss();
  EXPECT_NE(rss.supported_types & RTE_ETH_RSS_NONFRAG_IPV4_TCP, 0u);
  EXPECT_NE(rss.configured_types & RTE_ETH_RSS_NONFRAG_IPV4_TCP, 0u);
  EXPECT_NE(rss.configured_types & RTE_ETH_RSS_NONFRAG_IPV6_UDP, 0u);
  EXPECT_EQ(rss.configured_types & RTE_ETH_RSS_NONFRAG_IPV4_SCTP, 0u);  // not asked for
  ASSERT_EQ(rss.key.size(), 40u);
  EXPECT_TRUE(std::equal(rss.key.begin(), rss.key.end(), kMsKey));
  ASSERT_EQ(rss.reta.size(), 128u);

  auto s = p->steering();
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_FALSE(s->is_single_queue());
  EXPECT_EQ(s->types(), (dp::RssTypes{.tcp = true, .udp = true, .sctp = false}));
  EXPECT_EQ(s->reta(), rss.reta);
  EXPECT_EQ(steering_in_effect(*p, nullptr).kind, SteeringKind::rss_predicted);

  auto rules = FlowSteering::install(*p, {.addresses = {*dp::parse_ip("198.18.0.1")},
                                          .workers = 4});
  ASSERT_TRUE(rules.ok());
  EXPECT_FALSE(rules->active()) << "net_null has no rte_flow";
  EXPECT_EQ(steering_in_effect(*p, &*rules).kind, SteeringKind::rss_predicted);
}

TEST(NullPort, GeneratesAndSinksPackets) {
  auto p = Port::open({.device = "net_null1", .devargs = "net_null1", .rx_queues = 1,
                       .tx_queues = 1, .promiscuous = true},
                      test_pool());
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_TRUE(p->start().ok());
  EXPECT_EQ(steering_in_effect(*p, nullptr).kind, SteeringKind::single_queue);
  EXPECT_TRUE(p->steering().ok());
  EXPECT_TRUE(p->link().up);
  EXPECT_FALSE(p->mac().is_zero());  // net_null makes up a random address
  dp::Packet pkts[32];
  const uint16_t n = rx_burst(p->id(), 0, pkts, 32);
  ASSERT_EQ(n, 32);
  EXPECT_EQ(pkts[0].len, 64);  // the PMD's default size
  EXPECT_EQ(tx_burst(p->id(), 0, pkts, n), n);  // net_null frees what it sends
  auto stats = p->stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->rx_packets, 32u);
  EXPECT_EQ(stats->tx_packets, 32u);
  auto xstats = p->xstats();
  ASSERT_TRUE(xstats.ok());
  EXPECT_FALSE(xstats->empty());
}

TEST(NullPort, ProgramsAGivenRssKey) {
  std::vector<uint8_t> key(40);
  for (size_t i = 0; i < key.size(); ++i) key[i] = uint8_t(i * 7 + 1);
  auto p = Port::open({.device = "net_null2", .devargs = "net_null2", .rx_queues = 2,
                       .tx_queues = 2, .rss_key = key},
                      test_pool());
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_TRUE(p->start().ok());
  EXPECT_EQ(p->rss().key, key);
}

TEST(Port, UnknownDeviceAndBadMtuAreClearErrors) {
  auto p = Port::open({.device = "net_nosuch0"}, test_pool());
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("net_nosuch0"), std::string::npos);
  auto probed = Port::open({.device = "net_nosuch0", .devargs = "net_nosuch0"}, test_pool());
  ASSERT_FALSE(probed.ok());
  EXPECT_NE(probed.error().message.find("probing"), std::string::npos)
      << probed.error().message;
  auto mtu = Port::open({.device = "net_null7", .devargs = "net_null7", .mtu = 20}, test_pool());
  ASSERT_FALSE(mtu.ok());
  EXPECT_NE(mtu.error().message.find("MTU 20"), std::string::npos) << mtu.error().message;
  uint16_t id;
  EXPECT_NE(rte_eth_dev_get_port_by_name("net_null7", &id), 0)
      << "a failed open removes what it probed";
}

}  // namespace
}  // namespace magline::dpdk

namespace magline::dpdk {
namespace {

TEST(Eal, InitialisesOncePerProcess) {
  auto again = EalSession::create({"--no-huge", "--no-pci"});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already"), std::string::npos);
}

}  // namespace
}  // namespace magline::dpdk
