#include "dataplane/encap.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;

constexpr const char* kClient4 = "198.18.0.1";
constexpr const char* kVip4 = "198.18.100.1";
constexpr const char* kClient6 = "2001:db8::1";
constexpr const char* kVip6 = "2001:db8:100::1";
constexpr const char* kSource4 = "198.18.50.9";
constexpr const char* kBackend4 = "198.18.200.7";
constexpr const char* kSource6 = "2001:db8:50::9";
constexpr const char* kBackend6 = "2001:db8:200::7";
constexpr uint32_t kEntropy = 0x9e3779b9;
constexpr uint16_t kGuePort = 6080;

// A frame in a buffer with `headroom` bytes in front of it, as an I/O layer hands it over.
struct Framed {
  Framed(const Bytes& frame, uint16_t headroom) : mem(headroom + frame.size()) {
    std::copy(frame.begin(), frame.end(), mem.begin() + headroom);
    pkt.data = mem.data() + headroom;
    pkt.len = uint16_t(frame.size());
    pkt.headroom = headroom;
  }
  Bytes frame() const { return Bytes(pkt.data, pkt.data + pkt.len); }

  Bytes mem;
  dp::Packet pkt;
};

dp::IpAddr ip(const char* text) { return *dp::parse_ip(text); }

dp::EncapHeader header(ForwardMode mode, const char* src, const char* dst) {
  dp::EncapHeader h;
  h.mode = mode;
  h.src = ip(src);
  h.dst = ip(dst);
  h.gue_port = kGuePort;
  h.entropy = kEntropy;
  return h;
}

// Encapsulates `frame` as `h` says; returns the result (the test fails if encapsulate does).
Bytes encapsulated(const Bytes& frame, const dp::EncapHeader& h) {
  Framed f(frame, 128);
  dp::Parsed p;
  EXPECT_EQ(dp::parse(frame, p), DropReason::none);
  EXPECT_EQ(dp::encapsulate(f.pkt, p, h), DropReason::none);
  EXPECT_EQ(f.pkt.headroom + f.pkt.len, f.mem.size() - (frame.size() - p.l3_end));
  return f.frame();
}

Packet inner_tcp4() {
  return Packet().ipv4(kClient4, kVip4).dont_fragment().tcp(40000, 80, dp::kTcpSyn);
}
Packet inner_udp6() { return Packet().ipv6(kClient6, kVip6).udp(40000, 53).payload("question"); }

// The IPv6 flow label the outer header carries.
uint32_t label(uint32_t entropy) { return (entropy ^ entropy >> 20) & 0xfffff; }

// An outer IPv6 header's flow label, cleared so that the rest compares with a builder's.
uint32_t take_label(Bytes& frame, size_t l3) {
  const uint32_t word = dp::load_be32(&frame[l3]);
  dp::store_be32(&frame[l3], word & 0xfff00000);
  return word & 0xfffff;
}

TEST(Encapsulate, IpipIpv4InIpv4) {
  const Packet inner = inner_tcp4().payload("hello");
  const Bytes out = encapsulated(inner.bytes(), header(ForwardMode::ipip, kSource4, kBackend4));
  const Bytes want = Packet()
                         .ipv4(kSource4, kBackend4)
                         .dont_fragment()
                         .protocol(dp::kProtoIpip)
                         .payload(inner.l3_bytes())
                         .bytes();
  EXPECT_EQ(out, want);
  EXPECT_EQ(checksum_errors(out), "");
}

TEST(Encapsulate, EthernetPaddingIsNotCarried) {
  const Packet inner = inner_tcp4();
  const Bytes out =
      encapsulated(Packet(inner).pad(6).bytes(), header(ForwardMode::ipip, kSource4, kBackend4));
  const Bytes l3 = inner.l3_bytes();
  EXPECT_EQ(out.size(), dp::kEthHeaderLen + 20 + l3.size());
  EXPECT_TRUE(std::equal(l3.begin(), l3.end(), out.begin() + dp::kEthHeaderLen + 20));
}

TEST(Encapsulate, IpipIpv6InIpv6CarriesEntropyInTheFlowLabel) {
  const Packet inner = inner_udp6();
  Bytes out = encapsulated(inner.bytes(), header(ForwardMode::ipip, kSource6, kBackend6));
  EXPECT_EQ(take_label(out, dp::kEthHeaderLen), label(kEntropy));
  const Bytes want = Packet()
                         .ipv6(kSource6, kBackend6)
                         .protocol(dp::kProtoIpv6)
                         .payload(inner.l3_bytes())
                         .bytes();
  EXPECT_EQ(out, want);
}

TEST(Encapsulate, IpipIpv4InIpv6AndIpv6InIpv4) {
  const Packet v4 = inner_tcp4();
  Bytes out = encapsulated(v4.bytes(), header(ForwardMode::ipip, kSource6, kBackend6));
  take_label(out, dp::kEthHeaderLen);
  EXPECT_EQ(out, Packet()
                     .ipv6(kSource6, kBackend6)
                     .protocol(dp::kProtoIpip)
                     .payload(v4.l3_bytes())
                     .bytes());
  const Packet v6 = inner_udp6();
  EXPECT_EQ(encapsulated(v6.bytes(), header(ForwardMode::ipip, kSource4, kBackend4)),
            Packet()
                .ipv4(kSource4, kBackend4)
                .dont_fragment()
                .protocol(dp::kProtoIpv6)
                .payload(v6.l3_bytes())
                .bytes());
}

TEST(Encapsulate, GueOverIpv4HasAZeroUdpChecksumAndAnEntropySourcePort) {
  const Packet inner = inner_tcp4().payload("hello");
  const Bytes out = encapsulated(inner.bytes(), header(ForwardMode::gue, kSource4, kBackend4));
  const uint16_t sport = uint16_t(dp::kGueSourcePortBase | (kEntropy & 0x3fff));
  Bytes want = Packet()
                   .ipv4(kSource4, kBackend4)
                   .dont_fragment()
                   .udp(sport, kGuePort)
                   .payload(inner.l3_bytes())
                   .bytes();
  want[dp::kEthHeaderLen + 20 + dp::kUdpCsumOff] = 0;
  want[dp::kEthHeaderLen + 20 + dp::kUdpCsumOff + 1] = 0;
  EXPECT_EQ(out, want);
  EXPECT_GE(sport, 49152);
}

TEST(Encapsulate, GueOverIpv6HasAFullUdpChecksum) {
  for (const Packet& inner : {inner_tcp4().payload("hello"), inner_udp6()}) {
    Bytes out = encapsulated(inner.bytes(), header(ForwardMode::gue, kSource6, kBackend6));
    EXPECT_EQ(checksum_errors(out), "");
    take_label(out, dp::kEthHeaderLen);
    const uint16_t sport = uint16_t(dp::kGueSourcePortBase | (kEntropy & 0x3fff));
    EXPECT_EQ(out, Packet()
                       .ipv6(kSource6, kBackend6)
                       .udp(sport, kGuePort)
                       .payload(inner.l3_bytes())
                       .bytes());
  }
}

TEST(Encapsulate, KeepsVlanTagsAndSetsTheOuterEtherType) {
  const Packet inner = Packet(inner_udp6()).vlan(100).vlan(200);
  Bytes out = encapsulated(inner.bytes(), header(ForwardMode::ipip, kSource4, kBackend4));
  const size_t l2 = dp::kEthHeaderLen + 2 * dp::kVlanTagLen;
  EXPECT_EQ(dp::load_be16(&out[l2 - 2]), dp::kEtherTypeIpv4);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(out, p), DropReason::none);
  EXPECT_EQ(p.vlan_count, 2);
  EXPECT_EQ(p.vlan_tci[0], 100);
  EXPECT_EQ(p.vlan_tci[1], 200);
  EXPECT_EQ(p.key.proto, dp::kProtoIpv6);
  EXPECT_EQ(p.key.src_addr(), ip(kSource4));
  EXPECT_EQ(p.key.dst_addr(), ip(kBackend4));
}

TEST(Encapsulate, CopiesDscpAndEcn) {
  Bytes frame = inner_tcp4().bytes();
  frame[dp::kEthHeaderLen + 1] = 0xb9;  // EF, ECT(1)
  dp::store_be16(&frame[dp::kEthHeaderLen + 10], 0);
  dp::store_be16(&frame[dp::kEthHeaderLen + 10],
                 dp::ipv4_header_checksum(&frame[dp::kEthHeaderLen], 20));
  const Bytes v4 = encapsulated(frame, header(ForwardMode::ipip, kSource4, kBackend4));
  EXPECT_EQ(v4[dp::kEthHeaderLen + 1], 0xb9);
  EXPECT_EQ(checksum_errors(v4), "");
  const Bytes v6 = encapsulated(frame, header(ForwardMode::gue, kSource6, kBackend6));
  const uint32_t word = dp::load_be32(&v6[dp::kEthHeaderLen]);
  EXPECT_EQ((word >> 20) & 0xff, 0xb9u);
}

TEST(Encapsulate, WithoutHeadroomChangesNothing) {
  const Bytes frame = Packet(inner_tcp4()).pad(6).bytes();
  for (ForwardMode mode : {ForwardMode::ipip, ForwardMode::gue}) {
    const uint16_t need = dp::encap_overhead(mode, dp::Family::v4);
    Framed f(frame, uint16_t(need - 1));
    dp::Parsed p;
    ASSERT_EQ(dp::parse(frame, p), DropReason::none);
    EXPECT_EQ(dp::encapsulate(f.pkt, p, header(mode, kSource4, kBackend4)),
              DropReason::no_headroom);
    EXPECT_EQ(f.frame(), frame);
    EXPECT_EQ(f.pkt.headroom, need - 1);
  }
}

TEST(Encapsulate, Overheads) {
  EXPECT_EQ(dp::encap_overhead(ForwardMode::ipip, dp::Family::v4), 20);
  EXPECT_EQ(dp::encap_overhead(ForwardMode::ipip, dp::Family::v6), 40);
  EXPECT_EQ(dp::encap_overhead(ForwardMode::gue, dp::Family::v4), 28);
  EXPECT_EQ(dp::encap_overhead(ForwardMode::gue, dp::Family::v6), 48);
}

dp::IpPrefix prefix(const char* text) { return *dp::parse_prefix(text, dp::HostBits::reject); }

TEST(EncapSource, HostBitsComeFromTheEntropy) {
  EXPECT_EQ(dp::encap_source(prefix("198.18.50.9/32"), kEntropy), ip("198.18.50.9"));
  EXPECT_EQ(dp::encap_source(prefix("198.18.50.0/24"), 0x12345678), ip("198.18.50.120"));
  EXPECT_EQ(dp::encap_source(prefix("198.18.48.0/20"), 0x12345678), ip("198.18.54.120"));
  EXPECT_EQ(dp::encap_source(prefix("0.0.0.0/0"), 0xc6120001), ip("198.18.0.1"));
  EXPECT_EQ(dp::encap_source(prefix("2001:db8:50::/64"), 0x12345678), ip("2001:db8:50::1234:5678"));
  EXPECT_EQ(dp::encap_source(prefix("2001:db8:50::/120"), 0x12345678), ip("2001:db8:50::78"));
  EXPECT_EQ(dp::encap_source(prefix("2001:db8:50::/126"), 0x12345678), ip("2001:db8:50::"));
  EXPECT_EQ(dp::encap_source(prefix("2001:db8:50::/125"), 0x12345677), ip("2001:db8:50::7"));
}

TEST(EncapSource, SpreadsFlowsOverThePrefix) {
  std::set<dp::IpAddr> seen;
  for (uint32_t i = 0; i < 4096; ++i) {
    const dp::IpAddr a = dp::encap_source(prefix("198.18.50.0/24"), i * 2654435761u);
    EXPECT_TRUE(prefix("198.18.50.0/24").contains(a));
    seen.insert(a);
  }
  EXPECT_EQ(seen.size(), 256u);
}

// ---- Splitting (encapsulation.fragment) ----

// Splits `frame` (encapsulated) at `mtu` and checks every piece: it parses, its checksums
// (outer and inner) are right, its IP packet fits, and its outer header is the frame's but for
// the lengths. Returns the inner fragments' payloads by offset, and the last piece's MF.
struct Pieces {
  std::map<size_t, Bytes> by_offset;
  bool last_more = false;
  size_t count = 0;
};
Pieces split(const Bytes& frame, uint16_t mtu) {
  Pieces out;
  dp::Parsed outer;
  EXPECT_EQ(dp::parse(frame, outer), DropReason::none);
  const auto plan = dp::plan_inner_split(frame, outer, mtu);
  EXPECT_TRUE(plan.has_value());
  if (!plan) return out;
  out.count = plan->count;
  for (uint16_t k = 0; k < plan->count; ++k) {
    Bytes piece(frame.size() + 64, 0xee);
    piece.resize(dp::write_inner_piece(frame, outer, *plan, k, piece.data()));
    dp::Parsed p;
    EXPECT_EQ(dp::parse(piece, p), DropReason::none);
    EXPECT_EQ(checksum_errors(piece), "") << k;
    EXPECT_LE(p.l3_end - p.l3_off, mtu) << k;
    EXPECT_EQ(p.key, outer.key) << k;
    const uint8_t* in = piece.data() + plan->inner_off;
    EXPECT_EQ(dp::ipv4_header_checksum(in, 20), dp::load_be16(in + 10)) << k;
    const uint16_t frag = dp::load_be16(in + 6);
    EXPECT_EQ(frag & 0x4000, 0) << k;
    const size_t len = dp::load_be16(in + 2) - 20u;
    EXPECT_EQ(plan->inner_off + 20 + len, piece.size()) << k;
    out.by_offset[size_t(frag & 0x1fff) * 8] = Bytes(in + 20, in + 20 + len);
    if (k + 1 == plan->count) {
      out.last_more = frag & 0x2000;
    } else {
      EXPECT_TRUE(frag & 0x2000) << k;
      EXPECT_EQ(len % 8, 0u) << k;
    }
  }
  return out;
}

Bytes joined(const Pieces& p, size_t first = 0) {
  Bytes all;
  for (const auto& [off, data] : p.by_offset) {
    EXPECT_EQ(off, first + all.size());
    all.insert(all.end(), data.begin(), data.end());
  }
  return all;
}

TEST(EncapSplit, AnIpipDatagramSplitsIntoPiecesThatFitAndRejoin) {
  const Bytes payload = [] {
    Bytes b(3000);
    for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(i * 7);
    return b;
  }();
  const Packet inner = Packet().ipv4(kClient4, kVip4).udp(40000, 53).payload(payload);
  const Bytes frame = encapsulated(Packet().eth(kClientMac, kLbMac).ipv4(kClient4, kVip4)
                                       .udp(40000, 53).payload(payload).bytes(),
                                   header(ForwardMode::ipip, kSource4, kBackend4));
  const Pieces p = split(frame, 1400);
  EXPECT_EQ(p.count, 3u);  // 3008 bytes of UDP in 1360-byte pieces
  EXPECT_FALSE(p.last_more);
  const Bytes l3 = inner.l3_bytes();
  EXPECT_EQ(joined(p), Bytes(l3.begin() + 20, l3.end()));
}

TEST(EncapSplit, GueOverIpv6PiecesCarryTheirOwnUdpChecksums) {
  const Bytes frame = encapsulated(Packet().eth(kClientMac, kLbMac).ipv4(kClient4, kVip4)
                                       .udp(40000, 53).payload(Bytes(2000, 'q')).bytes(),
                                   header(ForwardMode::gue, kSource6, kBackend6));
  const Pieces p = split(frame, 1280);  // checksum_errors() checks each piece's outer UDP
  EXPECT_EQ(p.count, 2u);
  EXPECT_EQ(joined(p).size(), 2008u);
}

// A fragment already (offset 1480, more to come): its pieces' offsets follow on, and the last
// keeps MF.
TEST(EncapSplit, AFragmentSplitsIntoFragmentsOfTheSameDatagram) {
  const Bytes frame = encapsulated(Packet().eth(kClientMac, kLbMac).ipv4(kClient4, kVip4)
                                       .fragment(1480, true).protocol(dp::kProtoUdp)
                                       .payload(Bytes(1480, 'f')).bytes(),
                                   header(ForwardMode::ipip, kSource4, kBackend4));
  const Pieces p = split(frame, 1000);
  EXPECT_EQ(p.count, 2u);
  EXPECT_TRUE(p.last_more);
  EXPECT_EQ(joined(p, 1480), Bytes(1480, 'f'));
}

TEST(EncapSplit, DfOptionsAndIpv6StayWhole) {
  dp::Parsed outer;
  const auto plan = [&](const Packet& inner, ForwardMode mode, const char* src,
                        const char* dst) {
    const Bytes f = encapsulated(inner.bytes(), header(mode, src, dst));
    EXPECT_EQ(dp::parse(f, outer), DropReason::none);
    return dp::plan_inner_split(f, outer, 1280);
  };
  const Bytes big(1500, 'x');
  EXPECT_FALSE(plan(Packet().eth(kClientMac, kLbMac).ipv4(kClient4, kVip4).dont_fragment()
                        .udp(1, 53).payload(big), ForwardMode::ipip, kSource4, kBackend4));
  EXPECT_FALSE(plan(Packet().eth(kClientMac, kLbMac).ipv4(kClient4, kVip4)
                        .ipv4_options({1, 1, 1, 1}).udp(1, 53).payload(big),
                    ForwardMode::ipip, kSource4, kBackend4));
  EXPECT_FALSE(plan(Packet().eth(kClientMac, kLbMac).ipv6(kClient6, kVip6).udp(1, 53)
                        .payload(big), ForwardMode::ipip, kSource6, kBackend6));
  // And an MTU that leaves no room for 8 bytes of payload.
  const Bytes f = encapsulated(Packet().eth(kClientMac, kLbMac).ipv4(kClient4, kVip4)
                                   .udp(1, 53).payload(big).bytes(),
                               header(ForwardMode::ipip, kSource4, kBackend4));
  ASSERT_EQ(dp::parse(f, outer), DropReason::none);
  EXPECT_FALSE(dp::plan_inner_split(f, outer, 47));
  EXPECT_TRUE(dp::plan_inner_split(f, outer, 48));
}

}  // namespace
}  // namespace magline::test
