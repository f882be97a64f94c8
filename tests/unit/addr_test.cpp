#include "dataplane/addr.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace magline::dp {
namespace {

TEST(Addr, ParsesAndFormatsBothFamilies) {
  auto a = parse_ip("198.18.0.1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, Family::v4);
  EXPECT_EQ(*a, IpAddr::v4(198, 18, 0, 1));
  EXPECT_EQ(to_string(*a), "198.18.0.1");

  auto b = parse_ip("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, Family::v6);
  EXPECT_EQ(b->bytes[0], 0x20);
  EXPECT_EQ(b->bytes[15], 1);
  EXPECT_EQ(to_string(*b), "2001:db8::1");
}

TEST(Addr, LinkLocal) {
  for (const char* yes : {"169.254.0.0", "169.254.255.255", "fe80::1", "febf:ffff::1"}) {
    EXPECT_TRUE(is_link_local(*parse_ip(yes))) << yes;
  }
  for (const char* no : {"169.253.255.255", "169.255.0.0", "198.18.0.1", "fec0::1", "fe7f::1",
                         "2001:db8::1", "::ffff:169.254.0.1"}) {
    EXPECT_FALSE(is_link_local(*parse_ip(no))) << no;
  }
}

TEST(Addr, RefusesMalformedText) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", " 1.2.3.4", "1.2.3.4 ", "::g",
                          "2001:db8::1%eth0", "1.2.3.4/24", "abc"}) {
    EXPECT_FALSE(parse_ip(bad)) << bad;
  }
}

TEST(Addr, PrefixesParseAndContain) {
  auto p = parse_prefix("198.18.0.0/15", HostBits::reject);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->contains(IpAddr::v4(198, 19, 255, 255)));
  EXPECT_FALSE(p->contains(IpAddr::v4(198, 20, 0, 0)));
  EXPECT_FALSE(p->contains(*parse_ip("2001:db8::1")));
  EXPECT_EQ(to_string(*p), "198.18.0.0/15");

  auto all = parse_prefix("0.0.0.0/0", HostBits::reject);
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(IpAddr::v4(1, 2, 3, 4)));

  auto v6 = parse_prefix("2001:db8:0:2::/63", HostBits::reject);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*parse_ip("2001:db8:0:3:ffff::1")));
  EXPECT_FALSE(v6->contains(*parse_ip("2001:db8:0:4::1")));
  EXPECT_FALSE(parse_prefix("2001:db8:0:1::/63", HostBits::reject));  // bit 63 is a host bit
}

// Against a bit-by-bit reference, at every length and with one differing bit at every place
// (the two words' edges included).
TEST(Addr, SamePrefixAgreesWithABitByBitComparison) {
  auto bit = [](const IpAddr& a, unsigned i) { return a.bytes[i / 8] >> (7 - i % 8) & 1; };
  for (const char* base : {"198.18.77.129", "2001:db8:89ab:cdef:123:4567:89ab:cdef"}) {
    const IpAddr a = *parse_ip(base);
    const unsigned width = unsigned(a.size()) * 8;
    for (unsigned flip = 0; flip < width; ++flip) {
      IpAddr b = a;
      b.bytes[flip / 8] ^= uint8_t(0x80 >> (flip % 8));
      for (unsigned len = 0; len <= width + 8; ++len) {
        bool same = true;
        for (unsigned i = 0; i < std::min(len, width); ++i) same = same && bit(a, i) == bit(b, i);
        EXPECT_EQ(same_prefix(a, b, len), same) << base << " bit " << flip << " /" << len;
      }
    }
  }
}

TEST(Addr, PrefixHostBitsAreRefusedOrCleared) {
  EXPECT_FALSE(parse_prefix("10.1.2.3/8", HostBits::reject));
  auto cleared = parse_prefix("10.1.2.3/8", HostBits::clear);
  ASSERT_TRUE(cleared);
  EXPECT_EQ(to_string(*cleared), "10.0.0.0/8");
}

TEST(Addr, PrefixRefusesBadLengths) {
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0",
                          "2001:db8::/129", "/8"}) {
    EXPECT_FALSE(parse_prefix(bad, HostBits::clear)) << bad;
  }
}

}  // namespace
}  // namespace magline::dp
