#include "dataplane/rss.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace magline::dp {
namespace {

// The key of the Microsoft RSS verification suite (also Intel 82599 datasheet 7.1.2.8.3).
constexpr uint8_t kMsKey[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

struct Vector {
  const char* src;
  uint16_t sport;
  const char* dst;
  uint16_t dport;
  uint32_t hash_l3;
  uint32_t hash_l4;
};

// "Verifying the RSS Hash Calculation" (Microsoft), IPv4 and IPv6 tables.
constexpr Vector kVectors[] = {
    {"66.9.149.187", 2794, "161.142.100.80", 1766, 0x323e8fc2, 0x51ccc178},
    {"199.92.111.2", 14230, "65.69.140.83", 4739, 0xd718262a, 0xc626b0ea},
    {"24.19.198.95", 12898, "12.22.207.184", 38024, 0xd2d0a5de, 0x5c2b394a},
    {"38.27.205.30", 48228, "209.142.163.6", 2217, 0x82989176, 0xafc7327f},
    {"153.39.163.191", 44251, "202.188.127.2", 1303, 0x5d1809c5, 0x10e828a2},
    {"3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766, 0x2cc18cd5, 0x40207d3d},
    {"3ffe:501:8::260:97ff:fe40:efab", 14230, "ff02::1", 4739, 0x0f0c461c, 0xdde51bbf},
    {"3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, "fe80::200:f8ff:fe21:67cf", 38024, 0x4b61e985,
     0x02d1feef},
};

FlowKey key_of(const char* src, uint16_t sport, const char* dst, uint16_t dport,
               uint8_t proto = RssSteering::kTcp) {
  const IpAddr s = *parse_ip(src);
  const IpAddr d = *parse_ip(dst);
  FlowKey k;
  k.src = s.bytes;
  k.dst = d.bytes;
  k.family = s.family;
  k.sport = sport;
  k.dport = dport;
  k.proto = proto;
  return k;
}

Toeplitz ms_toeplitz() { return std::move(Toeplitz::create(kMsKey)).value(); }

RssSteering steering(std::vector<uint16_t> reta, RssTypes types = {}) {
  auto s = RssSteering::create(kMsKey, std::move(reta), types);
  EXPECT_TRUE(s.ok());
  return std::move(s).value();
}

std::vector<uint16_t> round_robin_reta(size_t size, uint16_t queues) {
  std::vector<uint16_t> reta(size);
  for (size_t i = 0; i < size; ++i) reta[i] = uint16_t(i % queues);
  return reta;
}

FlowKey random_key(std::mt19937_64& rng, Family f, uint8_t proto) {
  FlowKey k;
  k.family = f;
  k.proto = proto;
  const size_t n = f == Family::v4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    k.src[i] = uint8_t(rng());
    k.dst[i] = uint8_t(rng());
  }
  k.sport = uint16_t(rng());
  k.dport = uint16_t(rng());
  return k;
}

TEST(Toeplitz, MicrosoftVerificationSuite) {
  const Toeplitz t = ms_toeplitz();
  for (const Vector& v : kVectors) {
    const FlowKey k = key_of(v.src, v.sport, v.dst, v.dport);
    uint8_t in[kMaxRssInputLen];
    size_t len = rss_input(k, true, in);
    EXPECT_EQ(t.hash(in, len), v.hash_l4) << v.src;
    EXPECT_EQ(Toeplitz::hash_bitwise(kMsKey, in, len), v.hash_l4) << v.src;
    len = rss_input(k, false, in);
    EXPECT_EQ(t.hash(in, len), v.hash_l3) << v.src;
    EXPECT_EQ(Toeplitz::hash_bitwise(kMsKey, in, len), v.hash_l3) << v.src;
  }
}

TEST(Toeplitz, TablesMatchBitwiseOnRandomInputsAndKeys) {
  std::mt19937_64 rng(7);
  for (size_t key_len : {size_t(40), size_t(52)}) {
    std::vector<uint8_t> key(key_len);
    for (auto& b : key) b = uint8_t(rng());
    const Toeplitz t = std::move(Toeplitz::create(key)).value();
    for (int i = 0; i < 2000; ++i) {
      uint8_t in[kMaxRssInputLen];
      for (auto& b : in) b = uint8_t(rng());
      const size_t len = rng() % (kMaxRssInputLen + 1);
      ASSERT_EQ(t.hash(in, len), Toeplitz::hash_bitwise(key, in, len));
    }
  }
}

TEST(Toeplitz, IsLinearOverXor) {
  const Toeplitz t = ms_toeplitz();
  std::mt19937_64 rng(11);
  for (int i = 0; i < 1000; ++i) {
    uint8_t x[kMaxRssInputLen], y[kMaxRssInputLen], xy[kMaxRssInputLen];
    for (size_t j = 0; j < kMaxRssInputLen; ++j) {
      x[j] = uint8_t(rng());
      y[j] = uint8_t(rng());
      xy[j] = uint8_t(x[j] ^ y[j]);
    }
    ASSERT_EQ(t.hash(xy, kMaxRssInputLen), t.hash(x, kMaxRssInputLen) ^ t.hash(y, kMaxRssInputLen));
  }
  // Trailing zero bytes contribute nothing: an L4 input with zero ports hashes like L3.
  const FlowKey k = key_of("66.9.149.187", 0, "161.142.100.80", 0);
  uint8_t in[kMaxRssInputLen];
  EXPECT_EQ(t.hash(in, rss_input(k, true, in)), 0x323e8fc2u);
}

TEST(Toeplitz, RefusesBadKeyLengths) {
  std::vector<uint8_t> key(39);
  EXPECT_FALSE(Toeplitz::create(key).ok());
  key.resize(65);
  EXPECT_FALSE(Toeplitz::create(key).ok());
  key.resize(52);
  EXPECT_TRUE(Toeplitz::create(key).ok());
}

TEST(RssSteering, RefusesBadReta) {
  EXPECT_FALSE(RssSteering::create(kMsKey, {}, {}).ok());
  EXPECT_FALSE(RssSteering::create(kMsKey, std::vector<uint16_t>(65537), {}).ok());
}

TEST(RssSteering, PortsOnlyForEnabledProtocols) {
  const FlowKey tcp = key_of("66.9.149.187", 2794, "161.142.100.80", 1766, RssSteering::kTcp);
  FlowKey udp = tcp, sctp = tcp, icmp = tcp;
  udp.proto = RssSteering::kUdp;
  sctp.proto = RssSteering::kSctp;
  icmp.proto = 1;

  const RssSteering all = steering({0}, {.tcp = true, .udp = true, .sctp = true});
  EXPECT_EQ(all.hash_of(tcp), 0x51ccc178u);
  EXPECT_EQ(all.hash_of(udp), 0x51ccc178u);
  EXPECT_EQ(all.hash_of(sctp), 0x51ccc178u);
  EXPECT_EQ(all.hash_of(icmp), 0x323e8fc2u);

  const RssSteering tcp_only = steering({0}, {.tcp = true, .udp = false, .sctp = false});
  EXPECT_EQ(tcp_only.hash_of(tcp), 0x51ccc178u);
  EXPECT_EQ(tcp_only.hash_of(udp), 0x323e8fc2u);
  EXPECT_EQ(tcp_only.hash_of(sctp), 0x323e8fc2u);
}

TEST(RssSteering, QueueIsRetaEntryAtLowBitsOfHash) {
  // 128 entries, as the 82599 has: the index is hash bits 6:0.
  std::vector<uint16_t> reta(128);
  for (size_t i = 0; i < reta.size(); ++i) reta[i] = uint16_t(i);
  const RssSteering s = steering(reta);
  const FlowKey k = key_of("66.9.149.187", 2794, "161.142.100.80", 1766);
  EXPECT_EQ(s.queue_of(k), 0x51ccc178u & 0x7f);
  // A size that is not a power of two falls back to the modulo.
  const RssSteering odd = steering(std::vector<uint16_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  EXPECT_EQ(odd.queue_of(k), 0x51ccc178u % 12);
}

TEST(RssSteering, QueuesAreBalancedOverARoundRobinReta) {
  constexpr uint16_t kQueues = 4;
  const RssSteering s = steering(round_robin_reta(128, kQueues));
  std::mt19937_64 rng(3);
  for (Family f : {Family::v4, Family::v6}) {
    std::vector<int> counts(kQueues);
    constexpr int kFlows = 40000;
    for (int i = 0; i < kFlows; ++i) ++counts[s.queue_of(random_key(rng, f, RssSteering::kTcp))];
    for (int c : counts) {
      EXPECT_NEAR(c, kFlows / kQueues, kFlows / kQueues / 10);  // within 10%
    }
  }
}

TEST(RssSteering, SingleQueueIsTrivial) {
  const RssSteering s = RssSteering::single_queue();
  EXPECT_TRUE(s.is_single_queue());
  const FlowKey reply = key_of("198.18.1.10", 8080, "198.18.0.1", 0);
  EXPECT_EQ(s.queue_of(reply), 0);
  EXPECT_EQ(s.find_port(reply, 0, 1000, 1000, 2000, [](uint16_t) { return false; }), 1000);
  EXPECT_EQ(s.find_port(reply, 0, 1000, 1000, 2000, [](uint16_t p) { return p < 1500; }), 1500);
  EXPECT_EQ(s.find_port(reply, 1, 1000, 1000, 2000, [](uint16_t) { return false; }),
            std::nullopt);
}

// find_port against a brute-force search over the same range.
std::optional<uint16_t> brute_force(const RssSteering& s, FlowKey reply, uint16_t queue,
                                    uint16_t first, uint16_t lo, uint16_t hi,
                                    const std::set<uint16_t>& used) {
  if (lo > hi) return std::nullopt;
  if (first < lo || first > hi) first = lo;
  uint32_t p = first;
  for (uint32_t i = 0; i <= uint32_t(hi) - lo; ++i, p = p == hi ? lo : p + 1) {
    reply.dport = uint16_t(p);
    if (s.queue_of(reply) == queue && !used.contains(uint16_t(p))) return uint16_t(p);
  }
  return std::nullopt;
}

TEST(RssSteering, FindPortMatchesBruteForce) {
  std::mt19937_64 rng(5);
  for (uint16_t queues : {2, 3, 4, 8}) {
    const RssSteering s = steering(round_robin_reta(queues == 3 ? 96 : 128, queues));
    for (Family f : {Family::v4, Family::v6}) {
      for (uint8_t proto : {RssSteering::kTcp, RssSteering::kUdp}) {
        for (int i = 0; i < 50; ++i) {
          const FlowKey reply = random_key(rng, f, proto);
          uint16_t lo = uint16_t(rng()), hi = uint16_t(rng());
          if (lo > hi) std::swap(lo, hi);
          const uint16_t first = uint16_t(lo + rng() % (uint32_t(hi - lo) + 1));
          const uint16_t queue = uint16_t(rng() % queues);
          std::set<uint16_t> used;
          for (int u = 0; u < 64; ++u) used.insert(uint16_t(first + u));
          const auto in_use = [&](uint16_t p) { return used.contains(p); };
          const auto got = s.find_port(reply, queue, first, lo, hi, in_use);
          ASSERT_EQ(got, brute_force(s, reply, queue, first, lo, hi, used));
          if (got) {
            FlowKey k = reply;
            k.dport = *got;
            EXPECT_EQ(s.queue_of(k), queue);
            EXPECT_FALSE(in_use(*got));
            EXPECT_GE(*got, lo);
            EXPECT_LE(*got, hi);
          }
        }
      }
    }
  }
}

TEST(RssSteering, FindPortWrapsAroundAndStaysInRange) {
  const RssSteering s = steering(round_robin_reta(128, 4));
  FlowKey reply = key_of("198.18.1.10", 8080, "198.18.0.1", 0);
  // Only ports below `first` are free: the search must wrap to lo.
  const uint16_t lo = 20000, hi = 20999, first = 20900;
  const auto in_use = [&](uint16_t p) { return p >= first; };
  for (uint16_t q = 0; q < 4; ++q) {
    const auto p = s.find_port(reply, q, first, lo, hi, in_use);
    ASSERT_TRUE(p.has_value());
    EXPECT_GE(*p, lo);
    EXPECT_LT(*p, first);
    reply.dport = *p;
    EXPECT_EQ(s.queue_of(reply), q);
    // It is the first suitable port from lo: no port of queue q below it.
    for (uint16_t x = lo; x < *p; ++x) {
      reply.dport = x;
      EXPECT_NE(s.queue_of(reply), q);
    }
  }
  // The whole 16-bit range, starting at the top.
  EXPECT_TRUE(s.find_port(reply, 3, 65535, 0, 65535, [](uint16_t) { return false; }));
  // A first outside [lo, hi] starts at lo.
  const auto p = s.find_port(reply, 0, 5, lo, hi, [](uint16_t) { return false; });
  ASSERT_TRUE(p.has_value());
  EXPECT_GE(*p, lo);
}

TEST(RssSteering, FindPortGivesUpWhenNothingIsFree) {
  const RssSteering s = steering(round_robin_reta(128, 4));
  const FlowKey reply = key_of("198.18.1.10", 8080, "198.18.0.1", 0);
  size_t calls = 0;
  const auto all_used = [&](uint16_t) {
    ++calls;
    return true;
  };
  EXPECT_EQ(s.find_port(reply, 1, 0, 0, 65535, all_used), std::nullopt);
  EXPECT_GT(calls, 10000u);  // about a quarter of the range maps to queue 1
  EXPECT_LT(calls, 30000u);  // and in_use is asked only about those
  // With a bound on the taken ports it is told about, it stops there.
  calls = 0;
  EXPECT_EQ(s.find_port(reply, 1, 0, 0, 65535, all_used, 64), std::nullopt);
  EXPECT_EQ(calls, 64u);
  const auto taken_below = [](uint16_t p) { return p < 1000; };
  EXPECT_EQ(s.find_port(reply, 1, 0, 0, 65535, taken_below, 64), std::nullopt);
  EXPECT_TRUE(s.find_port(reply, 1, 0, 0, 65535, taken_below, 300).has_value());
  const RssSteering one = RssSteering::single_queue();
  calls = 0;
  EXPECT_EQ(one.find_port(reply, 0, 0, 0, 65535, all_used, 64), std::nullopt);
  EXPECT_EQ(calls, 64u);
  // An empty range, and a queue that no RETA entry names.
  EXPECT_EQ(s.find_port(reply, 0, 10, 20, 10, [](uint16_t) { return false; }), std::nullopt);
  EXPECT_EQ(s.find_port(reply, 7, 0, 0, 65535, [](uint16_t) { return false; }), std::nullopt);
}

TEST(RssSteering, FindPortWithoutHashedPortsIsAllOrNothing) {
  // UDP not hashed with ports: the reply's queue does not depend on the port.
  const RssSteering s = steering(round_robin_reta(128, 4), {.tcp = true, .udp = false});
  const FlowKey reply = key_of("198.18.1.10", 53, "198.18.0.1", 0, RssSteering::kUdp);
  const uint16_t q = s.queue_of(reply);
  EXPECT_EQ(s.find_port(reply, q, 100, 100, 200, [](uint16_t p) { return p < 150; }), 150);
  EXPECT_EQ(s.find_port(reply, uint16_t((q + 1) % 4), 100, 100, 200,
                        [](uint16_t) { return false; }),
            std::nullopt);
}

}  // namespace
}  // namespace magline::dp
