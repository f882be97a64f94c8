// The flow table's key and value helpers (flow_key.hpp, flow_table.hpp): the compare every
// lookup makes, and the values a new connection's entries are made of.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

#include "dataplane/flow_table.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {
namespace {

// same_flow() is == but for the tag: a change of any other byte, in either 16-byte half of
// the addresses or in the ports, protocol and family, is another connection.
TEST(FlowKey, SameFlowSeesEveryByteButTheTag) {
  FlowKey a;
  for (size_t i = 0; i < sizeof a; ++i) reinterpret_cast<uint8_t*>(&a)[i] = uint8_t(i * 37 + 1);
  ASSERT_TRUE(a.same_flow(a));
  for (size_t i = 0; i < sizeof a; ++i) {
    for (const uint8_t bit : {0x01, 0x80}) {
      FlowKey b = a;
      reinterpret_cast<uint8_t*>(&b)[i] ^= bit;
      const bool in_tag = i >= offsetof(FlowKey, tag);
      EXPECT_EQ(a.same_flow(b), in_tag) << "byte " << i;
      EXPECT_EQ(b.same_flow(a), in_tag) << "byte " << i;
      EXPECT_FALSE(a == b) << "byte " << i;
    }
  }
}

// Maglev's flow hash is part of the wire contract (every edge node must pick the same backend
// for a flow, across versions): these values must never change. The tag is not hashed; every
// other field is.
TEST(FlowKey, FlowHashIsFixed) {
  FlowKey a;
  a.src = IpAddr::v4(198, 18, 0, 7).bytes;
  a.dst = IpAddr::v4(198, 18, 100, 1).bytes;
  a.sport = 40001;
  a.dport = 80;
  a.proto = kProtoTcp;
  a.family = Family::v4;
  FlowKey b;
  for (size_t i = 0; i < 16; ++i) {
    b.src[i] = uint8_t(0x20 + i);
    b.dst[i] = uint8_t(0x90 + 3 * i);
  }
  for (auto* addr : {&b.src, &b.dst}) std::memcpy(addr->data(), "\x20\x01\x0d\xb8", 4);
  b.sport = 5353;
  b.dport = 443;
  b.proto = kProtoUdp;
  b.family = Family::v6;
  EXPECT_EQ(hash_flow(a, kFlowHashSeed), 0xc9c4b079dc0cf3adull);
  EXPECT_EQ(hash_flow(b, kFlowHashSeed), 0xa397242dbd872800ull);
  EXPECT_EQ(hash_flow_mix(a, 12345), 0xc3ba51a46193970aull);
  FlowKey tagged = a;
  tagged.tag = 77;
  EXPECT_EQ(hash_flow(tagged, kFlowHashSeed), hash_flow(a, kFlowHashSeed));
  // Each of the fields the hash reads as one word moves it.
  for (const size_t off : {offsetof(FlowKey, sport), offsetof(FlowKey, dport) + 1,
                           offsetof(FlowKey, proto), offsetof(FlowKey, family)}) {
    FlowKey c = a;
    reinterpret_cast<uint8_t*>(&c)[off] ^= 1;
    EXPECT_NE(hash_flow(c, kFlowHashSeed), hash_flow(a, kFlowHashSeed)) << "byte " << off;
  }
}

// The flow table's two ways of reading a key's last 8 bytes (the fields one by one, or one word
// as parse() stores them) give one hash, for every field's bits, the tag left out.
TEST(FlowKey, StoredWordHashIsTheFieldsHash) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    FlowKey k;
    for (auto& b : k.src) b = uint8_t(rng());
    for (auto& b : k.dst) b = uint8_t(rng());
    k.sport = uint16_t(rng());
    k.dport = uint16_t(rng());
    k.proto = uint8_t(rng());
    k.family = rng() & 1 ? Family::v4 : Family::v6;
    k.tag = uint16_t(rng());
    const uint64_t seed = rng();
    EXPECT_EQ(hash_flow_mix_stored(k, seed), hash_flow_mix(k, seed)) << i;
  }
}

// forward_value() and reply_value() make their 8 bytes of fields as one word: every field
// reads back as given, whatever the machine's byte order, and copy_value() copies all 24 bytes.
TEST(FlowValue, ValuesMadeInRegistersReadBackFieldByField) {
  std::array<uint8_t, 16> addr{};
  for (size_t i = 0; i < addr.size(); ++i) addr[i] = uint8_t(0xa0 + i);
  const FlowValue f = forward_value(0x81, 0x7e, 0x1234, 0xfedc, 0x0bad, addr);
  EXPECT_EQ(f.fwd.flags, 0x81);
  EXPECT_EQ(f.fwd.snat_addr, 0x7e);
  EXPECT_EQ(f.fwd.backend_port, 0x1234);
  EXPECT_EQ(f.fwd.snat_port, 0xfedc);
  EXPECT_EQ(f.fwd.backend_hint, 0x0bad);
  EXPECT_EQ(f.fwd.backend_addr, addr);
  const FlowValue r = reply_value(0x03, 0x4321, 0x0abc, 0xfff0, addr);
  EXPECT_EQ(r.reply.flags, 0x03);
  EXPECT_EQ(r.reply.reserved, 0);
  EXPECT_EQ(r.reply.client_port, 0x4321);
  EXPECT_EQ(r.reply.frontend, 0x0abc);
  EXPECT_EQ(r.reply.last_hop, 0xfff0);
  EXPECT_EQ(r.reply.client_addr, addr);
  FlowValue copy;
  std::memset(&copy, 0x55, sizeof copy);
  copy_value(copy, f);
  EXPECT_EQ(std::memcmp(&copy, &f, sizeof copy), 0);
}

}  // namespace
}  // namespace magline::dp
