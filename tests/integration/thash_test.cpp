// The software Toeplitz (dataplane/steering.hpp) against DPDK's own rte_softrss and
// rte_softrss_be, on random tuples of both families, with and without ports: the queue
// predictions full-NAT relies on are the hashes DPDK (and the NICs it models) compute.
#include <gtest/gtest.h>
#include <rte_ip.h>
#include <rte_thash.h>

#include <cstring>
#include <random>

#include "dataplane/bytes.hpp"
#include "dataplane/rss.hpp"

namespace magline::dp {
namespace {

constexpr int kTuples = 20000;

struct Key {
  alignas(4) uint8_t bytes[kMinRssKeyLen];
  alignas(4) uint8_t converted[kMinRssKeyLen];  // rte_convert_rss_key, for rte_softrss_be
};

Key make_key(std::mt19937_64& rng) {
  Key k;
  for (auto& b : k.bytes) b = uint8_t(rng());
  rte_convert_rss_key(reinterpret_cast<const uint32_t*>(k.bytes),
                      reinterpret_cast<uint32_t*>(k.converted), int(sizeof k.bytes));
  return k;
}

FlowKey random_tcp(std::mt19937_64& rng, Family f) {
  FlowKey k;
  k.family = f;
  k.proto = RssSteering::kTcp;
  for (size_t i = 0; i < (f == Family::v4 ? 4u : 16u); ++i) {
    k.src[i] = uint8_t(rng());
    k.dst[i] = uint8_t(rng());
  }
  k.sport = uint16_t(rng());
  k.dport = uint16_t(rng());
  return k;
}

// The tuple as rte_thash.h wants it: 32-bit words in CPU order.
uint32_t dpdk_hash(const FlowKey& k, bool with_ports, const Key& key, bool be) {
  union rte_thash_tuple t;
  std::memset(&t, 0, sizeof t);
  uint32_t words;
  if (k.family == Family::v4) {
    t.v4.src_addr = load_be32(k.src.data());
    t.v4.dst_addr = load_be32(k.dst.data());
    t.v4.sport = k.sport;
    t.v4.dport = k.dport;
    words = with_ports ? RTE_THASH_V4_L4_LEN : RTE_THASH_V4_L3_LEN;
  } else {
    rte_ipv6_hdr ip;
    std::memset(&ip, 0, sizeof ip);
    std::memcpy(ip.src_addr, k.src.data(), 16);
    std::memcpy(ip.dst_addr, k.dst.data(), 16);
    rte_thash_load_v6_addrs(&ip, &t);
    t.v6.sport = k.sport;
    t.v6.dport = k.dport;
    words = with_ports ? RTE_THASH_V6_L4_LEN : RTE_THASH_V6_L3_LEN;
  }
  auto* in = reinterpret_cast<uint32_t*>(&t);
  return be ? rte_softrss_be(in, words, key.converted) : rte_softrss(in, words, key.bytes);
}

TEST(SoftRss, ToeplitzMatchesRteSoftrssOnRandomTuples) {
  std::mt19937_64 rng(2024);
  for (int round = 0; round < 4; ++round) {
    const Key key = make_key(rng);
    const Toeplitz t = std::move(Toeplitz::create(key.bytes)).value();
    for (Family f : {Family::v4, Family::v6}) {
      for (int i = 0; i < kTuples / 4; ++i) {
        const FlowKey k = random_tcp(rng, f);
        uint8_t in[kMaxRssInputLen];
        for (bool ports : {true, false}) {
          const uint32_t ours = t.hash(in, rss_input(k, ports, in));
          ASSERT_EQ(ours, dpdk_hash(k, ports, key, false)) << "rte_softrss, v" << int(f);
          ASSERT_EQ(ours, dpdk_hash(k, ports, key, true)) << "rte_softrss_be, v" << int(f);
        }
      }
    }
  }
}

TEST(SoftRss, SteeringHashIsRteSoftrssForEachProtocolSetting) {
  std::mt19937_64 rng(99);
  const Key key = make_key(rng);
  const RssSteering udp_off =
      std::move(RssSteering::create(key.bytes, {0}, {.tcp = true, .udp = false})).value();
  for (Family f : {Family::v4, Family::v6}) {
    for (int i = 0; i < 1000; ++i) {
      FlowKey k = random_tcp(rng, f);
      ASSERT_EQ(udp_off.hash_of(k), dpdk_hash(k, true, key, false));
      k.proto = RssSteering::kUdp;
      ASSERT_EQ(udp_off.hash_of(k), dpdk_hash(k, false, key, false));
    }
  }
}

}  // namespace
}  // namespace magline::dp
