// mbuf <-> dp::Packet: the view, and what to_mbuf() writes back after the forwarding code moved
// `data` or changed `len`, on single- and multi-segment mbufs and through a real port.
#include "dataplane/dpdk/mbuf_io.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "dataplane/dpdk/port.hpp"
#include "tests/integration/eal_env.hpp"
#include "tests/integration/mbuf_helpers.hpp"

namespace magline::dpdk {
namespace {

using test::test_pool;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i);
  return v;
}

TEST(MbufIo, PacketViewsTheFirstSegment) {
  rte_mbuf* m = test::mbuf_with(test_pool(), pattern(100, 1));
  ASSERT_NE(m, nullptr);
  const dp::Packet p = to_packet(m, 3);
  EXPECT_EQ(p.handle, m);
  EXPECT_EQ(p.data, rte_pktmbuf_mtod(m, uint8_t*));
  EXPECT_EQ(p.len, 100);
  EXPECT_EQ(p.headroom, RTE_PKTMBUF_HEADROOM);
  EXPECT_EQ(p.port, 3);
  EXPECT_EQ(p.chained, 0);
  EXPECT_EQ(test::bytes_of(p), pattern(100, 1));
  EXPECT_EQ(to_mbuf(p), m);  // unchanged packet: nothing moves
  EXPECT_EQ(m->data_off, RTE_PKTMBUF_HEADROOM);
  EXPECT_EQ(m->data_len, 100);
  EXPECT_EQ(m->pkt_len, 100u);
  free_packet(p);
}

TEST(MbufIo, PrependTrimAndStripAreWrittenBack) {
  rte_mbuf* m = test::mbuf_with(test_pool(), pattern(100, 1));
  ASSERT_NE(m, nullptr);
  dp::Packet p = to_packet(m, 0);

  // An encapsulation header in front (IPIP: 20 bytes).
  ASSERT_TRUE(dp::prepend(p, 20));
  std::fill(p.data, p.data + 20, uint8_t(0xee));
  to_mbuf(p);
  EXPECT_EQ(m->data_off, RTE_PKTMBUF_HEADROOM - 20);
  EXPECT_EQ(m->data_len, 120);
  EXPECT_EQ(m->pkt_len, 120u);
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*), p.data);
  EXPECT_EQ(rte_pktmbuf_headroom(m), p.headroom);
  EXPECT_EQ(rte_pktmbuf_mtod(m, uint8_t*)[20], 1);

  // Trim 10 bytes of tail (Ethernet padding, say).
  p.len = uint16_t(p.len - 10);
  to_mbuf(p);
  EXPECT_EQ(m->data_len, 110);
  EXPECT_EQ(m->pkt_len, 110u);

  // Strip a 14-byte header from the front.
  p.data += 14;
  p.headroom = uint16_t(p.headroom + 14);
  p.len = uint16_t(p.len - 14);
  to_mbuf(p);
  EXPECT_EQ(m->data_off, RTE_PKTMBUF_HEADROOM - 20 + 14);
  EXPECT_EQ(m->data_len, 96);
  EXPECT_EQ(m->pkt_len, 96u);
  to_mbuf(p);  // idempotent
  EXPECT_EQ(m->data_len, 96);
  EXPECT_EQ(m->pkt_len, 96u);

  // More headroom than there is: refused, nothing changes.
  dp::Packet q = to_packet(m, 0);
  EXPECT_FALSE(dp::prepend(q, uint16_t(q.headroom + 1)));
  EXPECT_EQ(to_mbuf(q)->data_len, 96);
  free_packet(p);
}

TEST(MbufIo, MultiSegmentOnlyTheFirstSegmentChanges) {
  rte_mbuf* head = test::mbuf_with(test_pool(), pattern(60, 1));
  rte_mbuf* tail = test::mbuf_with(test_pool(), pattern(1000, 100));
  ASSERT_NE(head, nullptr);
  ASSERT_NE(tail, nullptr);
  ASSERT_EQ(rte_pktmbuf_chain(head, tail), 0);
  EXPECT_EQ(head->pkt_len, 1060u);

  dp::Packet p = to_packet(head, 0);
  EXPECT_EQ(p.len, 60);  // the view covers the first segment only
  EXPECT_NE(p.chained, 0);
  ASSERT_TRUE(dp::prepend(p, 8));
  to_mbuf(p);
  EXPECT_EQ(head->data_len, 68);
  EXPECT_EQ(head->pkt_len, 1068u);
  EXPECT_EQ(head->nb_segs, 2);
  EXPECT_EQ(tail->data_len, 1000);
  EXPECT_EQ(rte_pktmbuf_mtod(tail, uint8_t*)[0], 100);
  free_packet(p);  // both segments
}

TEST(MbufIo, BurstHelpersRoundTripThroughALoopbackPort) {
  // net_ring probed bare: TX queue 0 feeds RX queue 0.
  auto port = Port::open({.device = "net_ring8", .devargs = "net_ring8", .rss = RssMode::off},
                         test_pool());
  ASSERT_TRUE(port.ok()) << port.error().message;
  ASSERT_TRUE(port->start().ok());
  const uint16_t id = port->id();

  constexpr uint16_t kCount = kMaxBurst + 6;  // more than one burst: helpers cap at kMaxBurst
  std::vector<dp::Packet> pkts;
  for (uint16_t i = 0; i < kCount; ++i) {
    pkts.push_back(to_packet(test::mbuf_with(test_pool(), pattern(64 + i, uint8_t(i))), id));
    ASSERT_TRUE(dp::prepend(pkts.back(), 4));  // grow by 4
    std::fill(pkts.back().data, pkts.back().data + 4, uint8_t(0xab));
    pkts.back().len = uint16_t(pkts.back().len - 2);  // and trim 2 of tail
  }
  uint16_t sent = tx_burst(id, 0, pkts.data(), kCount);
  EXPECT_EQ(sent, kMaxBurst);
  sent = uint16_t(sent + tx_burst(id, 0, pkts.data() + sent, uint16_t(kCount - sent)));
  ASSERT_EQ(sent, kCount);

  std::vector<dp::Packet> back(kCount);
  uint16_t got = rx_burst(id, 0, back.data(), kCount);
  EXPECT_EQ(got, kMaxBurst);
  got = uint16_t(got + rx_burst(id, 0, back.data() + got, kCount));
  ASSERT_EQ(got, kCount);
  for (uint16_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(back[i].len, 64 + i + 4 - 2);
    EXPECT_EQ(back[i].headroom, RTE_PKTMBUF_HEADROOM - 4);
    EXPECT_EQ(back[i].data[0], 0xab);
    EXPECT_EQ(back[i].data[4], uint8_t(i));
    EXPECT_EQ(back[i].data[back[i].len - 1], uint8_t(i + 64 + i - 3));
  }
  free_packets(back.data(), kCount);
}

}  // namespace
}  // namespace magline::dpdk
