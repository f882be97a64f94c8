// parse()'s common frame read in one go against the general walk (parse_walk()), on frames of
// every shape cut, changed byte by byte and at random.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "dataplane/parse.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/unit/parse_subjects.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::Parsed;

// parse() reads the common frame (untagged IPv4 without options or fragmentation, TCP or UDP)
// in one go and everything else by the general walk: both must give every frame the same
// verdict and the same fields. Frames near the common one: every cut, every header byte set to
// values that flip one of the one-go checks, and random changes to the headers and the length.
void expect_same_as_walk(const Bytes& b, const std::string& what) {
  Parsed fast, walked;
  std::memset(static_cast<void*>(&fast), 0xa5, sizeof fast);
  std::memset(static_cast<void*>(&walked), 0x5a, sizeof walked);
  const DropReason r = parse_exact(b, fast);
  const Bytes copy(b);
  ASSERT_EQ(r, dp::parse_walk(copy, walked)) << what;
  if (r != DropReason::none) return;  // `out` is unspecified
  // Everything before `inner` is cleared and then written by either; `inner` and `arp` are
  // the walk's own in both.
  ASSERT_EQ(std::memcmp(&fast, &walked, offsetof(Parsed, inner)), 0) << what;
  ASSERT_EQ(fast.key, walked.key) << what;
}

TEST(Parse, CommonFramesReadInOneGoAsTheWalkReadsThem) {
  std::vector<std::pair<std::string, Bytes>> subjects = truncation_subjects();
  subjects.push_back(
      {"tcp4", Packet().ipv4(kClient4, kVip4).tcp(40000, 80).payload("get").bytes()});
  subjects.push_back({"tcp4_df_syn", Packet()
                                         .ipv4(kClient4, kVip4)
                                         .dont_fragment()
                                         .tcp(40000, 80, dp::kTcpSyn)
                                         .tcp_options({2, 4, 5, 0xb4})
                                         .bytes()});
  subjects.push_back({"udp4", Packet().ipv4(kClient4, kVip4).udp(40000, 53).payload("q").bytes()});
  subjects.push_back({"udp4_no_csum_padded", Packet()
                                                 .ipv4(kClient4, kVip4)
                                                 .udp(40000, 53)
                                                 .no_checksums()
                                                 .payload("q")
                                                 .bytes()});
  subjects.back().second.resize(80, 0);  // Ethernet padding after the IP packet
  subjects.push_back({"tcp4_fragment", Packet()
                                           .ipv4(kClient4, kVip4)
                                           .fragment(0, true)
                                           .tcp(40000, 80)
                                           .payload("x")
                                           .bytes()});
  constexpr uint8_t kValues[] = {0x00, 0x01, 0x05, 0x06, 0x08, 0x11, 0x14, 0x1c, 0x20, 0x28,
                                 0x3f, 0x40, 0x44, 0x45, 0x46, 0x4f, 0x50, 0x55, 0x60, 0x81,
                                 0x84, 0xe0, 0xf0, 0xff};
  std::mt19937 rng(19);
  size_t cases = 0;
  for (const auto& [name, full] : subjects) {
    for (size_t n = 0; n <= full.size(); ++n) {
      expect_same_as_walk(Bytes(full.begin(), full.begin() + n), name + " cut to " +
                                                                     std::to_string(n));
      ++cases;
    }
    for (size_t i = 12; i < std::min<size_t>(full.size(), 64); ++i) {
      for (const uint8_t v : kValues) {
        Bytes b = full;
        b[i] = v;
        expect_same_as_walk(b, name + " byte " + std::to_string(i) + " = " + std::to_string(v));
        ++cases;
      }
    }
    for (int k = 0; k < 3000; ++k) {
      Bytes b = full;
      const int changes = 1 + int(rng() % 3);
      for (int c = 0; c < changes; ++c) b[12 + rng() % (std::min<size_t>(b.size(), 64) - 12)] =
          uint8_t(rng());
      if (rng() % 2) b.resize(rng() % (b.size() + 24), 0);
      expect_same_as_walk(b, name + " random change " + std::to_string(k));
      ++cases;
    }
  }
  EXPECT_GT(cases, 50000u);
}

}  // namespace
}  // namespace magline::test
