// The flow table's key and value helpers (flow_key.hpp, flow_table.hpp): the compare every
// lookup makes, and the values a new connection's entries are made of.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/flow_table.hpp"

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
