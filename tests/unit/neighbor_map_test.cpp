#include "dataplane/neighbor_map.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "dataplane/last_hops.hpp"

namespace magline::dp {
namespace {

IpAddr v4(uint32_t i) {
  return IpAddr::v4(0xc6120000u | i);  // 198.18.x.x
}

Neighbor nb(uint8_t last, uint16_t port = 0) {
  return Neighbor{MacAddr{{0x02, 0, 0, 0, 0, last}}, port};
}

bool same(const Neighbor* a, const Neighbor& b) {
  return a != nullptr && a->mac == b.mac && a->port == b.port;
}

TEST(NeighborMap, SetFindEraseAndUpdateInPlace) {
  NeighborMap m(8);
  EXPECT_EQ(m.capacity(), 8u);
  EXPECT_EQ(m.find(v4(1)), nullptr);
  EXPECT_TRUE(m.set(v4(1), nb(1)));
  EXPECT_TRUE(same(m.find(v4(1)), nb(1)));
  EXPECT_TRUE(m.set(v4(1), nb(9, 3)));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_TRUE(same(m.find(v4(1)), nb(9, 3)));
  EXPECT_TRUE(m.erase(v4(1)));
  EXPECT_FALSE(m.erase(v4(1)));
  EXPECT_EQ(m.find(v4(1)), nullptr);
  EXPECT_EQ(m.size(), 0u);
}

TEST(NeighborMap, FamiliesAreDistinctKeys) {
  NeighborMap m(4);
  uint8_t bytes[16] = {198, 18, 0, 1};
  const IpAddr six = IpAddr::v6(bytes);
  const IpAddr four = IpAddr::v4(198, 18, 0, 1);
  ASSERT_EQ(six.bytes, four.bytes);
  EXPECT_TRUE(m.set(four, nb(4)));
  EXPECT_EQ(m.find(six), nullptr);
  EXPECT_TRUE(m.set(six, nb(6)));
  EXPECT_TRUE(same(m.find(four), nb(4)));
  EXPECT_TRUE(same(m.find(six), nb(6)));
}

TEST(NeighborMap, FullRefusesNewKeysButUpdatesOld) {
  NeighborMap m(3);
  for (uint32_t i = 0; i < 3; ++i)
    EXPECT_TRUE(m.set(v4(i), nb(uint8_t(i))));
  EXPECT_FALSE(m.set(v4(3), nb(3)));
  EXPECT_EQ(m.find(v4(3)), nullptr);
  EXPECT_TRUE(m.set(v4(2), nb(22)));
  EXPECT_TRUE(same(m.find(v4(2)), nb(22)));
  EXPECT_TRUE(m.erase(v4(0)));
  EXPECT_TRUE(m.set(v4(3), nb(3)));
  EXPECT_EQ(m.size(), 3u);

  NeighborMap none(0);
  EXPECT_FALSE(none.set(v4(1), nb(1)));
  EXPECT_EQ(none.find(v4(1)), nullptr);
}

// Random sets and erases against std::map: a small table keeps clusters long and wrapping, so
// backward-shift deletion is exercised in every configuration.
TEST(NeighborMap, MatchesAnOrderedMapUnderChurn) {
  for (const size_t capacity : {1u, 2u, 5u, 16u, 100u}) {
    SCOPED_TRACE(capacity);
    NeighborMap m(capacity);
    std::map<IpAddr, Neighbor> oracle;
    std::mt19937 rng{uint32_t(capacity)};
    for (int step = 0; step < 20000; ++step) {
      const IpAddr key = v4(rng() % (capacity * 3 + 1));
      if (rng() % 3 == 0) {
        EXPECT_EQ(m.erase(key), oracle.erase(key) == 1);
      } else {
        const Neighbor n = nb(uint8_t(rng()), uint16_t(rng() % 4));
        const bool fits = oracle.count(key) == 1 || oracle.size() < capacity;
        EXPECT_EQ(m.set(key, n), fits);
        if (fits) oracle[key] = n;
      }
      ASSERT_EQ(m.size(), oracle.size());
      if (step % 64 == 0) {
        for (uint32_t i = 0; i <= capacity * 3; ++i) {
          const auto it = oracle.find(v4(i));
          if (it == oracle.end()) {
            ASSERT_EQ(m.find(v4(i)), nullptr);
          } else {
            ASSERT_TRUE(same(m.find(v4(i)), it->second));
          }
        }
      }
    }
  }
}

// A worker's last hops (last_hops.hpp): one id per (port, MAC), never reused; the last answer
// is kept for the next connection (most come through one router) and never mistaken for
// another pair's.
TEST(LastHops, EachPortAndMacKeepsItsIdAndAFullTableAnswersTheKnownOnes) {
  LastHops hops(3);
  const MacAddr a{{0x02, 0, 0, 0, 0, 0x0a}}, b{{0x02, 0, 0, 0, 0, 0x0b}};
  const uint16_t a0 = hops.intern(0, a);
  EXPECT_EQ(hops.intern(0, a), a0);
  const uint16_t b0 = hops.intern(0, b);
  const uint16_t a1 = hops.intern(1, a);  // the same MAC on another port
  EXPECT_NE(b0, a0);
  EXPECT_NE(a1, a0);
  EXPECT_NE(a1, b0);
  EXPECT_EQ(hops.intern(0, a), a0);
  EXPECT_EQ(hops.intern(0, b), b0);
  EXPECT_EQ(hops.intern(0, b), b0);
  EXPECT_EQ(hops.at(a1).port, 1);
  EXPECT_EQ(hops.at(a1).mac, a);
  EXPECT_EQ(hops.at(b0).mac, b);
  EXPECT_EQ(hops.intern(2, a), LastHops::kNone);  // full
  EXPECT_EQ(hops.intern(1, a), a1);
  EXPECT_EQ(hops.size(), 3u);
}

}  // namespace
}  // namespace magline::dp
