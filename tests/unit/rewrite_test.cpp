#include "dataplane/rewrite.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::FlowKey;
using dp::Parsed;

// One side of a conversation.
struct Endpoint {
  std::string addr;
  uint16_t port;
};

const Endpoint kClient4{"198.18.0.1", 40000};
const Endpoint kVip4{"198.18.100.1", 80};
const Endpoint kBackend4{"198.18.200.7", 8080};
const Endpoint kSnat4{"198.18.50.1", 61000};
const Endpoint kClient6{"2001:db8::1", 40000};
const Endpoint kVip6{"2001:db8:100::1", 80};
const Endpoint kBackend6{"2001:db8:200::7", 8080};
const Endpoint kSnat6{"2001:db8:50::1", 61000};

// A packet shape: the same packet for any tuple and TTL, so that the expected result of a
// rewrite can be built from scratch (every checksum fully computed) and compared byte for byte.
using Shape = std::function<Packet(const Endpoint& src, const Endpoint& dst, uint8_t ttl)>;

Bytes filler(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = uint8_t(i * 13 + 5);
  return b;
}

Packet v4(const Endpoint& s, const Endpoint& d, uint8_t ttl) {
  return Packet().ipv4(s.addr, d.addr).ttl(ttl).ip_id(0x1111);
}
Packet v6(const Endpoint& s, const Endpoint& d, uint8_t ttl) {
  return Packet().ipv6(s.addr, d.addr).ttl(ttl);
}

struct NamedShape {
  std::string name;
  bool ipv6;
  Shape make;
};

std::vector<NamedShape> shapes() {
  const Packet quote4 = Packet().ipv4("198.18.100.1", "198.18.0.1").tcp(80, 40000);
  const Packet quote6 = Packet().ipv6("2001:db8:100::1", "2001:db8::1").udp(53, 40000);
  return {
      {"tcp4", false,
       [](auto& s, auto& d, uint8_t t) {
         return v4(s, d, t).tcp(s.port, d.port, dp::kTcpSyn).payload("hello");
       }},
      {"tcp4_vlan_options", false,
       [](auto& s, auto& d, uint8_t t) {
         return v4(s, d, t)
             .vlan(10)
             .ipv4_options(Bytes(8, 1))
             .tcp(s.port, d.port)
             .tcp_options({2, 4, 5, 0xb4})
             .payload(filler(33));
       }},
      {"udp4", false,
       [](auto& s, auto& d, uint8_t t) { return v4(s, d, t).udp(s.port, d.port).payload("q"); }},
      {"udp4_padded", false,
       [](auto& s, auto& d, uint8_t t) { return v4(s, d, t).udp(s.port, d.port).pad(14); }},
      {"sctp4", false,
       [](auto& s, auto& d, uint8_t t) {
         return v4(s, d, t).sctp(s.port, d.port).payload(filler(20));
       }},
      {"icmp4_echo", false,
       [](auto& s, auto& d, uint8_t t) { return v4(s, d, t).icmp_echo(77, 1).payload("ping"); }},
      {"icmp4_error", false,
       [quote4](auto& s, auto& d, uint8_t t) { return v4(s, d, t).icmp_error(3, 4, quote4); }},
      {"tcp4_first_fragment", false,
       [](auto& s, auto& d, uint8_t t) {
         return v4(s, d, t).fragment(0, true).tcp(s.port, d.port).payload(filler(64));
       }},
      {"udp4_first_fragment", false,
       [](auto& s, auto& d, uint8_t t) {
         return v4(s, d, t)
             .fragment(0, true)
             .udp(s.port, d.port)
             .udp_length(3000)
             .payload(filler(64));
       }},
      {"udp4_non_first_fragment", false,
       [](auto& s, auto& d, uint8_t t) {
         return v4(s, d, t).fragment(1480, false).protocol(dp::kProtoUdp).payload(filler(40));
       }},
      {"tcp6", true,
       [](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).tcp(s.port, d.port, dp::kTcpAck).payload("hello");
       }},
      {"udp6_ext", true,
       [](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).hop_by_hop().dest_opts(16).udp(s.port, d.port).payload(filler(9));
       }},
      {"sctp6", true,
       [](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).sctp(s.port, d.port).payload(filler(31));
       }},
      {"icmp6_echo", true,
       [](auto& s, auto& d, uint8_t t) { return v6(s, d, t).icmp_echo(5, 9).payload("ping6"); }},
      {"icmp6_error", true,
       [quote6](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).icmp_error(2, 0, quote6, Packet::kWhole, 1280);
       }},
      {"tcp6_first_fragment", true,
       [](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).fragment(0, true).tcp(s.port, d.port).payload(filler(48));
       }},
      {"tcp6_non_first_fragment", true,
       [](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).fragment(1232, true).protocol(dp::kProtoTcp).payload(filler(48));
       }},
      {"udp6_atomic_fragment", true,
       [](auto& s, auto& d, uint8_t t) {
         return v6(s, d, t).fragment(0, false).udp(s.port, d.port).payload(filler(7));
       }},
  };
}

FlowKey key_for(const Parsed& p, const Endpoint& s, const Endpoint& d) {
  FlowKey k = p.key;
  k.src = dp::parse_ip(s.addr)->bytes;
  k.dst = dp::parse_ip(d.addr)->bytes;
  k.sport = s.port;
  k.dport = d.port;
  return k;
}

// Rewrites a copy of `in` from its tuple to `to_src -> to_dst`, checks the result against the
// same shape built from scratch and verifies every checksum by full recomputation.
void check_rewrite(const NamedShape& shape, const Endpoint& from_src, const Endpoint& from_dst,
                   const Endpoint& to_src, const Endpoint& to_dst) {
  const uint8_t ttl = 64;
  Bytes frame = shape.make(from_src, from_dst, ttl).bytes();
  ASSERT_EQ(checksum_errors(frame), "");
  Parsed p;
  ASSERT_EQ(dp::parse(frame, p), DropReason::none);
  const FlowKey to = key_for(p, to_src, to_dst);
  ASSERT_EQ(dp::rewrite_tuple(frame, p, to), DropReason::none);

  EXPECT_EQ(frame, shape.make(to_src, to_dst, ttl - 1).bytes());
  EXPECT_EQ(checksum_errors(frame), "");
  Parsed after;
  ASSERT_EQ(dp::parse(frame, after), DropReason::none);
  FlowKey want = to;
  const bool ported =
      p.key.proto == dp::kProtoTcp || p.key.proto == dp::kProtoUdp || p.key.proto == dp::kProtoSctp;
  if (!p.has_l4 || !ported) want.sport = want.dport = 0;
  EXPECT_EQ(after.key, want);
  EXPECT_EQ(after.ttl, ttl - 1);
}

struct Mode {
  const char* name;
  Endpoint from_src, from_dst, to_src, to_dst;
};

std::vector<Mode> modes(bool ipv6) {
  const Endpoint& c = ipv6 ? kClient6 : kClient4;
  const Endpoint& v = ipv6 ? kVip6 : kVip4;
  const Endpoint& b = ipv6 ? kBackend6 : kBackend4;
  const Endpoint& n = ipv6 ? kSnat6 : kSnat4;
  return {
      {"dnat", c, v, c, b},       {"dnat_reverse", b, c, v, c},
      {"full_nat", c, v, n, b},   {"full_nat_reverse", b, n, v, c},
      {"same_tuple", c, v, c, v},
  };
}

TEST(Rewrite, EveryShapeAndModeMatchesAFreshBuild) {
  for (const NamedShape& shape : shapes()) {
    for (const Mode& m : modes(shape.ipv6)) {
      SCOPED_TRACE(shape.name + " " + m.name);
      check_rewrite(shape, m.from_src, m.from_dst, m.to_src, m.to_dst);
    }
  }
}

TEST(Rewrite, HelpersBuildTheTuple) {
  Bytes frame = Packet().ipv4(kClient4.addr, kVip4.addr).tcp(kClient4.port, kVip4.port).bytes();
  Parsed p;
  ASSERT_EQ(dp::parse(frame, p), DropReason::none);
  ASSERT_EQ(dp::rewrite_dnat(frame, p, *dp::parse_ip(kBackend4.addr), kBackend4.port),
            DropReason::none);
  EXPECT_EQ(frame, Packet()
                       .ipv4(kClient4.addr, kBackend4.addr)
                       .ttl(63)
                       .tcp(kClient4.port, kBackend4.port)
                       .bytes());

  Bytes frame6 = Packet().ipv6(kClient6.addr, kVip6.addr).udp(kClient6.port, kVip6.port).bytes();
  ASSERT_EQ(dp::parse(frame6, p), DropReason::none);
  ASSERT_EQ(dp::rewrite_full_nat(frame6, p, *dp::parse_ip(kSnat6.addr), kSnat6.port,
                                 *dp::parse_ip(kBackend6.addr), kBackend6.port),
            DropReason::none);
  EXPECT_EQ(
      frame6,
      Packet().ipv6(kSnat6.addr, kBackend6.addr).ttl(63).udp(kSnat6.port, kBackend6.port).bytes());
}

TEST(Rewrite, RandomTuplesMatchFullRecomputation) {
  std::mt19937 rng(1624);
  const std::vector<NamedShape> all = shapes();
  auto random_endpoint = [&rng](bool ipv6) {
    uint8_t b[16];
    for (auto& x : b)
      x = uint8_t(rng());
    const dp::IpAddr a = ipv6 ? dp::IpAddr::v6(b) : dp::IpAddr::v4(b[0], b[1], b[2], b[3]);
    return Endpoint{dp::to_string(a), uint16_t(rng())};
  };
  for (int i = 0; i < 3000; ++i) {
    const NamedShape& shape = all[rng() % all.size()];
    SCOPED_TRACE(shape.name + " #" + std::to_string(i));
    const Endpoint s = random_endpoint(shape.ipv6);
    const Endpoint d = random_endpoint(shape.ipv6);
    // Change a random subset of the four fields.
    const unsigned which = rng();
    Endpoint ts = s, td = d;
    if (which & 1) ts.addr = random_endpoint(shape.ipv6).addr;
    if (which & 2) ts.port = uint16_t(rng());
    if (which & 4) td.addr = random_endpoint(shape.ipv6).addr;
    if (which & 8) td.port = uint16_t(rng());
    check_rewrite(shape, s, d, ts, td);
    if (HasFatalFailure()) return;
  }
}

TEST(Rewrite, TtlOfOneOrZeroIsRefusedUntouched) {
  for (const NamedShape& shape : shapes()) {
    for (const uint8_t ttl : {0, 1}) {
      SCOPED_TRACE(shape.name + " ttl " + std::to_string(ttl));
      const Endpoint& c = shape.ipv6 ? kClient6 : kClient4;
      const Endpoint& v = shape.ipv6 ? kVip6 : kVip4;
      const Endpoint& b = shape.ipv6 ? kBackend6 : kBackend4;
      const Bytes original = shape.make(c, v, ttl).bytes();
      Bytes frame = original;
      Parsed p;
      ASSERT_EQ(dp::parse(frame, p), DropReason::none);
      EXPECT_EQ(dp::rewrite_tuple(frame, p, key_for(p, c, b)), DropReason::ttl_exceeded);
      EXPECT_EQ(frame, original);
    }
  }
  // TTL 2 leaves with 1.
  Bytes frame = Packet().ipv4(kClient4.addr, kVip4.addr).ttl(2).udp(1, 2).bytes();
  Parsed p;
  ASSERT_EQ(dp::parse(frame, p), DropReason::none);
  ASSERT_EQ(dp::rewrite_tuple(frame, p, p.key), DropReason::none);
  EXPECT_EQ(frame, Packet().ipv4(kClient4.addr, kVip4.addr).ttl(1).udp(1, 2).bytes());
}

// Sets the UDP checksum field of a built frame to 0 ("no checksum").
Bytes without_udp_checksum(Bytes frame) {
  Parsed p;
  EXPECT_EQ(dp::parse(frame, p), DropReason::none);
  dp::store_be16(frame.data() + p.l4_off + 6, 0);
  return frame;
}

TEST(Rewrite, UdpZeroChecksumStaysZero) {
  for (const bool ipv6 : {false, true}) {
    const Endpoint& c = ipv6 ? kClient6 : kClient4;
    const Endpoint& v = ipv6 ? kVip6 : kVip4;
    const Endpoint& b = ipv6 ? kBackend6 : kBackend4;
    auto make = [ipv6](const Endpoint& s, const Endpoint& d, uint8_t ttl) {
      return (ipv6 ? v6(s, d, ttl) : v4(s, d, ttl)).udp(s.port, d.port).payload("no sum");
    };
    Bytes frame = without_udp_checksum(make(c, v, 64).bytes());
    Parsed p;
    ASSERT_EQ(dp::parse(frame, p), DropReason::none);
    ASSERT_EQ(dp::rewrite_tuple(frame, p, key_for(p, c, b)), DropReason::none);
    EXPECT_EQ(frame, without_udp_checksum(make(c, b, 63).bytes())) << ipv6;
  }
}

TEST(Rewrite, UdpComputedZeroIsSentAsAllOnes) {
  // Sweeping the backend port moves the checksum through every value, so exactly one port makes
  // the one's-complement sum come out as zero (RFC 768).
  const Bytes original =
      v4(kClient4, kVip4, 64).udp(kClient4.port, kVip4.port).payload("x").bytes();
  Parsed p;
  ASSERT_EQ(dp::parse(original, p), DropReason::none);
  int all_ones = 0;
  for (uint32_t port = 1; port <= 0xffff; ++port) {
    Bytes frame = original;
    FlowKey to = p.key;
    to.dport = uint16_t(port);
    ASSERT_EQ(dp::rewrite_tuple(frame, p, to), DropReason::none);
    const uint16_t csum = dp::load_be16(frame.data() + p.l4_off + 6);
    ASSERT_NE(csum, 0) << port;
    if (csum == 0xffff) {
      ++all_ones;
      EXPECT_EQ(checksum_errors(frame), "");
      EXPECT_EQ(frame,
                v4(kClient4, kVip4, 63).udp(kClient4.port, uint16_t(port)).payload("x").bytes());
    }
  }
  EXPECT_GE(all_ones, 1);
}

TEST(Rewrite, SctpFragmentWithNewPortsIsRefusedUntouched) {
  const Bytes v4frag = Packet()
                           .ipv4(kClient4.addr, kVip4.addr)
                           .fragment(0, true)
                           .sctp(5000, 5000)
                           .payload(filler(40))
                           .bytes();
  const Bytes v6frag = Packet()
                           .ipv6(kClient6.addr, kVip6.addr)
                           .fragment(0, true)
                           .sctp(5000, 5000)
                           .payload(filler(40))
                           .bytes();
  for (const Bytes& original : {v4frag, v6frag}) {
    Bytes frame = original;
    Parsed p;
    ASSERT_EQ(dp::parse(frame, p), DropReason::none);
    FlowKey to = p.key;
    to.dport = 5001;
    EXPECT_EQ(dp::rewrite_tuple(frame, p, to), DropReason::sctp_fragment_rewrite);
    EXPECT_EQ(frame, original);
    // Addresses alone are not under the CRC32c: that rewrite is fine.
    to = p.key;
    to.dst[1] ^= 0x40;
    const uint32_t crc = dp::load_crc32c(frame.data() + p.l4_off + 8);
    EXPECT_EQ(dp::rewrite_tuple(frame, p, to), DropReason::none);
    EXPECT_EQ(dp::load_crc32c(frame.data() + p.l4_off + 8), crc);
  }
}

TEST(Rewrite, SctpCrcIsRecomputedOnlyWhenPortsChange) {
  Bytes frame =
      Packet().ipv4(kClient4.addr, kVip4.addr).sctp(5000, 5001).payload(filler(20)).bytes();
  Parsed p;
  ASSERT_EQ(dp::parse(frame, p), DropReason::none);
  // Corrupt the CRC: an address-only rewrite must leave it alone (not recompute it).
  frame[p.l4_off + 8] ^= 1;
  FlowKey to = p.key;
  to.dst = dp::parse_ip(kBackend4.addr)->bytes;
  ASSERT_EQ(dp::rewrite_tuple(frame, p, to), DropReason::none);
  EXPECT_NE(checksum_errors(frame), "");
  to.dport = 9000;
  ASSERT_EQ(dp::parse(frame, p), DropReason::none);
  ASSERT_EQ(dp::rewrite_tuple(frame, p, to), DropReason::none);
  EXPECT_EQ(checksum_errors(frame), "");
}

TEST(Rewrite, MacsOnly) {
  Bytes frame = Packet().eth(kClientMac, kLbMac).ipv4(kClient4.addr, kVip4.addr).tcp(1, 2).bytes();
  dp::rewrite_macs(frame, kLbMac.data(), kBackendMac.data());
  EXPECT_EQ(frame,
            Packet().eth(kLbMac, kBackendMac).ipv4(kClient4.addr, kVip4.addr).tcp(1, 2).bytes());
}

}  // namespace
}  // namespace magline::test
