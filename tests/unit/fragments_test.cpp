#include "dataplane/fragments.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/support/packet_builder.hpp"

namespace magline::test {
namespace {

using dp::DropReason;

dp::Parsed fragment(const std::string& src, uint32_t id, uint16_t offset, uint16_t sport = 40000) {
  Packet p = Packet().ipv4(src, "198.18.100.2").fragment(offset, true, id);
  if (offset == 0) {
    p.udp(sport, 53).payload("first");
  } else {
    p.protocol(dp::kProtoUdp).payload("later");
  }
  dp::Parsed parsed;
  EXPECT_EQ(dp::parse(p.bytes(), parsed), DropReason::none);
  return parsed;
}

TEST(FragmentTable, LaterFragmentsFindTheirFirstsPortsUntilTheTimeout) {
  dp::FragmentTable t(64);
  EXPECT_FALSE(t.find(fragment("198.18.10.1", 7, 1480), 1000));
  t.remember(fragment("198.18.10.1", 7, 0, 41000), 1000);
  const auto ports = t.find(fragment("198.18.10.1", 7, 1480), 1500);
  ASSERT_TRUE(ports);
  EXPECT_EQ(ports->sport, 41000);
  EXPECT_EQ(ports->dport, 53);
  EXPECT_FALSE(t.find(fragment("198.18.10.1", 8, 1480), 1500));  // another datagram
  EXPECT_FALSE(t.find(fragment("198.18.10.2", 7, 1480), 1500));  // another source
  EXPECT_FALSE(t.find(fragment("198.18.10.1", 7, 1480), 1000 + dp::kFragmentTimeoutMs));
}

// Bounded: far more datagrams than slots leave at most `capacity` remembered, the newest ones
// (in each set, the entry nearest its deadline makes room).
TEST(FragmentTable, MoreDatagramsThanSlotsKeepTheNewest) {
  dp::FragmentTable t(64);
  EXPECT_EQ(t.capacity(), 64u);
  for (uint32_t id = 0; id < 1000; ++id) t.remember(fragment("198.18.10.1", id, 0), 1000 + id);
  size_t old = 0, recent = 0;
  for (uint32_t id = 0; id < 1000; ++id) {
    if (!t.find(fragment("198.18.10.1", id, 1480), 1999)) continue;
    (id < 900 ? old : recent) += 1;
  }
  EXPECT_LE(old + recent, 64u);
  EXPECT_GT(recent, 40u);
  EXPECT_LT(old, 10u);
}

TEST(FragmentTable, TheFirstFragmentAgainRefreshesItsEntry) {
  dp::FragmentTable t(4);
  t.remember(fragment("198.18.10.1", 7, 0, 41000), 1000);
  t.remember(fragment("198.18.10.1", 7, 0, 41000), 1900);
  EXPECT_TRUE(t.find(fragment("198.18.10.1", 7, 1480), 2500));
  for (uint32_t id = 100; id < 103; ++id) t.remember(fragment("198.18.10.1", id, 0), 1950);
  EXPECT_TRUE(t.find(fragment("198.18.10.1", 7, 1480), 2500));  // one slot each: no eviction
}

}  // namespace
}  // namespace magline::test
