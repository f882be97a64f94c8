#include "dataplane/parse.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "dataplane/bytes.hpp"
#include "tests/support/packet_builder.hpp"
#include "tests/unit/parse_subjects.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::L3;
using dp::Parsed;

Bytes filler(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i)
    b[i] = uint8_t(i * 7 + 1);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Packets that parse: exact offsets and tuple, one row per protocol and encapsulation.

struct Summary {
  L3 l3 = L3::none;
  uint16_t ether_type = 0;
  uint16_t l3_off = 0;
  uint16_t l4_off = 0;
  uint16_t l3_end = 0;
  uint16_t payload_off = 0;
  bool has_l4 = false;
  uint8_t proto = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool is_fragment = false;
  bool first_fragment = false;

  friend bool operator==(const Summary&, const Summary&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Summary& s) {
    return os << "{l3=" << int(s.l3) << " type=0x" << std::hex << s.ether_type << std::dec
              << " l3_off=" << s.l3_off << " l4_off=" << s.l4_off << " l3_end=" << s.l3_end
              << " payload_off=" << s.payload_off << " has_l4=" << s.has_l4
              << " proto=" << int(s.proto) << " ports=" << s.sport << "->" << s.dport
              << " frag=" << s.is_fragment << "/" << s.first_fragment << "}";
  }
};

Summary summarize(const Parsed& p) {
  return {p.l3,     p.ether_type, p.l3_off,    p.l4_off,    p.l3_end,      p.payload_off,
          p.has_l4, p.key.proto,  p.key.sport, p.key.dport, p.is_fragment, p.first_fragment};
}

struct ParseCase {
  std::string name;
  Bytes packet;
  Summary want;
};

void PrintTo(const ParseCase& c, std::ostream* os) {
  *os << c.name;
}

constexpr uint16_t kV4 = dp::kEtherTypeIpv4;
constexpr uint16_t kV6 = dp::kEtherTypeIpv6;
constexpr uint8_t kTcp = dp::kProtoTcp;
constexpr uint8_t kUdp = dp::kProtoUdp;
constexpr uint8_t kSctp = dp::kProtoSctp;

std::vector<ParseCase> valid_cases() {
  const Bytes p100 = filler(100);
  return {
      {"tcp4",
       Packet().ipv4(kClient4, kVip4).tcp(40000, 80, dp::kTcpSyn).payload("hello").bytes(),
       {L3::ipv4, kV4, 14, 34, 59, 54, true, kTcp, 40000, 80}},
      {"tcp4_vlan",
       Packet().vlan(100).ipv4(kClient4, kVip4).tcp(40000, 80).payload("hello").bytes(),
       {L3::ipv4, kV4, 18, 38, 63, 58, true, kTcp, 40000, 80}},
      {"tcp4_qinq",
       Packet().vlan(100, dp::kEtherTypeQinQ).vlan(200).ipv4(kClient4, kVip4).tcp(1, 2).bytes(),
       {L3::ipv4, kV4, 22, 42, 62, 62, true, kTcp, 1, 2}},
      {"tcp4_two_ctags",
       Packet().vlan(1).vlan(2).ipv4(kClient4, kVip4).tcp(1, 2).bytes(),
       {L3::ipv4, kV4, 22, 42, 62, 62, true, kTcp, 1, 2}},
      {"tcp4_options",
       Packet()
           .ipv4(kClient4, kVip4)
           .tcp(1, 2)
           .tcp_options({2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2})
           .payload("hello")
           .bytes(),
       {L3::ipv4, kV4, 14, 34, 71, 66, true, kTcp, 1, 2}},
      {"tcp4_max_data_offset",
       Packet().ipv4(kClient4, kVip4).tcp(1, 2).tcp_options(Bytes(40, 1)).bytes(),
       {L3::ipv4, kV4, 14, 34, 94, 94, true, kTcp, 1, 2}},
      {"ipv4_options",
       Packet()
           .ipv4(kClient4, kVip4)
           .ipv4_options({0x94, 0x04, 0, 0, 1, 1, 1, 0})
           .tcp(1, 2)
           .bytes(),
       {L3::ipv4, kV4, 14, 42, 62, 62, true, kTcp, 1, 2}},
      {"ipv4_max_ihl",
       Packet().ipv4(kClient4, kVip4).ipv4_options(Bytes(40, 1)).udp(1, 2).bytes(),
       {L3::ipv4, kV4, 14, 74, 82, 82, true, kUdp, 1, 2}},
      {"udp4",
       Packet().ipv4(kClient4, kVip4).udp(5353, 53).payload("query").bytes(),
       {L3::ipv4, kV4, 14, 34, 47, 42, true, kUdp, 5353, 53}},
      {"udp4_ethernet_padding",
       Packet().ipv4(kClient4, kVip4).udp(1, 2).payload("x").pad(17).bytes(),
       {L3::ipv4, kV4, 14, 34, 43, 42, true, kUdp, 1, 2}},
      {"udp4_shorter_than_ip_payload",
       Packet().ipv4(kClient4, kVip4).udp(1, 2).payload("abcd").udp_length(10).bytes(),
       {L3::ipv4, kV4, 14, 34, 46, 42, true, kUdp, 1, 2}},
      {"sctp4",
       Packet().ipv4(kClient4, kVip4).sctp(5000, 5001).bytes(),
       {L3::ipv4, kV4, 14, 34, 46, 46, true, kSctp, 5000, 5001}},
      {"icmp4_echo",
       Packet().ipv4(kClient4, kVip4).icmp_echo(7, 1).payload("ping").bytes(),
       {L3::ipv4, kV4, 14, 34, 46, 42, true, dp::kProtoIcmp, 0, 0}},
      {"gre4_unknown_protocol",
       Packet().ipv4(kClient4, kVip4).protocol(47).payload(p100).bytes(),
       {L3::ipv4, kV4, 14, 34, 134, 34, false, 47, 0, 0}},
      {"tcp6",
       Packet().ipv6(kClient6, kVip6).tcp(40000, 443).payload("hello").bytes(),
       {L3::ipv6, kV6, 14, 54, 79, 74, true, kTcp, 40000, 443}},
      {"tcp6_vlan",
       Packet().vlan(7).ipv6(kClient6, kVip6).tcp(40000, 443).bytes(),
       {L3::ipv6, kV6, 18, 58, 78, 78, true, kTcp, 40000, 443}},
      {"udp6",
       Packet().ipv6(kClient6, kVip6).udp(1, 53).payload("q").bytes(),
       {L3::ipv6, kV6, 14, 54, 63, 62, true, kUdp, 1, 53}},
      {"udp6_ethernet_padding",
       Packet().ipv6(kClient6, kVip6).udp(1, 53).pad(30).bytes(),
       {L3::ipv6, kV6, 14, 54, 62, 62, true, kUdp, 1, 53}},
      {"sctp6",
       Packet().ipv6(kClient6, kVip6).sctp(9, 10).payload(Bytes(16, 0)).bytes(),
       {L3::ipv6, kV6, 14, 54, 82, 66, true, kSctp, 9, 10}},
      {"icmp6_echo",
       Packet().ipv6(kClient6, kVip6).icmp_echo(9, 2).bytes(),
       {L3::ipv6, kV6, 14, 54, 62, 62, true, dp::kProtoIcmpv6, 0, 0}},
      {"icmp6_neighbor_solicitation",
       Packet().ipv6(kClient6, kVip6).icmp(135, 0).payload(Bytes(16, 0)).bytes(),
       {L3::ipv6, kV6, 14, 54, 78, 62, true, dp::kProtoIcmpv6, 0, 0}},
      {"ipv6_ext_chain",
       Packet().ipv6(kClient6, kVip6).hop_by_hop().routing(16).dest_opts().ah(24).tcp(1, 2).bytes(),
       {L3::ipv6, kV6, 14, 110, 130, 130, true, kTcp, 1, 2}},
      {"ipv6_eight_ext_headers",
       Packet()
           .ipv6(kClient6, kVip6)
           .hop_by_hop()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .udp(1, 2)
           .bytes(),
       {L3::ipv6, kV6, 14, 118, 126, 126, true, kUdp, 1, 2}},
      {"ipv6_no_next_header",
       Packet().ipv6(kClient6, kVip6).dest_opts().payload("abc").bytes(),
       {L3::ipv6, kV6, 14, 62, 65, 62, false, 59, 0, 0}},
      {"ipv6_esp",
       Packet().ipv6(kClient6, kVip6).protocol(kProtoEsp).payload(p100).bytes(),
       {L3::ipv6, kV6, 14, 54, 154, 54, false, kProtoEsp, 0, 0}},
      {"ipv6_icmpv4_is_unknown",
       Packet().ipv6(kClient6, kVip6).protocol(dp::kProtoIcmp).payload("ab").bytes(),
       {L3::ipv6, kV6, 14, 54, 56, 54, false, dp::kProtoIcmp, 0, 0}},
      {"arp",
       Packet().arp(1, kClientMac, "198.18.0.1", Mac{}, "198.18.100.1").pad(18).bytes(),
       {L3::arp, dp::kEtherTypeArp, 14, 42, 42, 42, false, 0, 0, 0}},
      {"lldp_other_ether_type",
       Packet().ether_type(0x88cc).payload(p100).bytes(),
       {L3::none, 0x88cc, 14, 14, 114, 14, false, 0, 0, 0}},
      {"ipv4_first_fragment",
       Packet()
           .ipv4(kClient4, kVip4)
           .fragment(0, true)
           .udp(1000, 53)
           .udp_length(3000)
           .payload(p100)
           .bytes(),
       {L3::ipv4, kV4, 14, 34, 142, 42, true, kUdp, 1000, 53, true, true}},
      {"ipv4_middle_fragment",
       Packet().ipv4(kClient4, kVip4).fragment(1480, true).protocol(kUdp).payload(p100).bytes(),
       {L3::ipv4, kV4, 14, 34, 134, 34, false, kUdp, 0, 0, true, false}},
      {"ipv4_last_fragment",
       Packet().ipv4(kClient4, kVip4).fragment(2960, false).protocol(kTcp).payload(p100).bytes(),
       {L3::ipv4, kV4, 14, 34, 134, 34, false, kTcp, 0, 0, true, false}},
      {"ipv4_fragment_ending_at_65535",
       Packet()
           .ipv4(kClient4, kVip4)
           .fragment(65520, false)
           .protocol(kUdp)
           .payload(Bytes(15, 0))
           .bytes(),
       {L3::ipv4, kV4, 14, 34, 49, 34, false, kUdp, 0, 0, true, false}},
      {"ipv4_dont_fragment_is_not_a_fragment",
       Packet().ipv4(kClient4, kVip4).dont_fragment().tcp(1, 2).bytes(),
       {L3::ipv4, kV4, 14, 34, 54, 54, true, kTcp, 1, 2}},
      {"ipv6_first_fragment",
       Packet().ipv6(kClient6, kVip6).fragment(0, true).tcp(1, 2).payload(p100).bytes(),
       {L3::ipv6, kV6, 14, 62, 182, 82, true, kTcp, 1, 2, true, true}},
      {"ipv6_first_fragment_udp_length_of_datagram",
       Packet()
           .ipv6(kClient6, kVip6)
           .fragment(0, true)
           .udp(1, 2)
           .udp_length(4000)
           .payload(p100)
           .bytes(),
       {L3::ipv6, kV6, 14, 62, 170, 70, true, kUdp, 1, 2, true, true}},
      {"ipv6_non_first_fragment",
       Packet().ipv6(kClient6, kVip6).fragment(1232, true).protocol(kTcp).payload(p100).bytes(),
       {L3::ipv6, kV6, 14, 62, 162, 62, false, kTcp, 0, 0, true, false}},
      {"ipv6_non_first_fragment_after_ext",
       Packet()
           .ipv6(kClient6, kVip6)
           .hop_by_hop()
           .fragment(8, false)
           .protocol(kUdp)
           .payload(p100)
           .bytes(),
       {L3::ipv6, kV6, 14, 70, 170, 70, false, kUdp, 0, 0, true, false}},
      {"ipv6_atomic_fragment",
       Packet().ipv6(kClient6, kVip6).fragment(0, false).tcp(1, 2).bytes(),
       {L3::ipv6, kV6, 14, 62, 82, 82, true, kTcp, 1, 2, false, false}},
  };
}

class ParseValid : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseValid, OffsetsAndTuple) {
  const ParseCase& c = GetParam();
  Parsed p;
  ASSERT_EQ(parse_exact(c.packet, p), DropReason::none);
  EXPECT_EQ(summarize(p), c.want);
  EXPECT_LE(p.l3_end, c.packet.size());
}

INSTANTIATE_TEST_SUITE_P(Table, ParseValid, ::testing::ValuesIn(valid_cases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Packets that must be dropped, and why.

struct DropCase {
  std::string name;
  Bytes packet;
  DropReason want;
};

void PrintTo(const DropCase& c, std::ostream* os) {
  *os << c.name;
}

Bytes arp_body(uint16_t htype, uint16_t ptype, uint8_t hlen, uint8_t plen, size_t len = 28) {
  Bytes b(std::max<size_t>(len, 8), 0);
  dp::store_be16(b.data(), htype);
  dp::store_be16(b.data() + 2, ptype);
  b[4] = hlen;
  b[5] = plen;
  b.resize(len);
  return b;
}

Packet tcp4() {
  return Packet().ipv4(kClient4, kVip4).tcp(40000, 80);
}
Packet tcp6() {
  return Packet().ipv6(kClient6, kVip6).tcp(40000, 80);
}

std::vector<DropCase> drop_cases() {
  const Bytes p100 = filler(100);
  // An ICMP error about a packet the VIP sent to the client.
  const Packet reply4 = Packet().ipv4(kVip4, kClient4).tcp(80, 40000);
  const Packet reply6 = Packet().ipv6(kVip6, kClient6).udp(53, 40000);
  return {
      {"empty", {}, DropReason::eth_truncated},
      {"eth_13_bytes", Bytes(13, 0), DropReason::eth_truncated},
      {"vlan_tag_cut", Packet().vlan(5).ipv4(kClient4, kVip4).tcp(1, 2).truncate(16).bytes(),
       DropReason::vlan_truncated},
      {"qinq_inner_tag_cut",
       Packet().vlan(5, dp::kEtherTypeQinQ).vlan(6).ipv4(kClient4, kVip4).truncate(20).bytes(),
       DropReason::vlan_truncated},
      {"three_vlan_tags", Packet().vlan(1).vlan(2).vlan(3).ipv4(kClient4, kVip4).tcp(1, 2).bytes(),
       DropReason::vlan_too_deep},
      {"three_vlan_tags_qinq",
       Packet()
           .vlan(1, dp::kEtherTypeQinQ)
           .vlan(2, dp::kEtherTypeQinQ)
           .vlan(3)
           .ipv4(kClient4, kVip4)
           .tcp(1, 2)
           .bytes(),
       DropReason::vlan_too_deep},
      {"arp_cut_in_fixed_part",
       Packet().ether_type(dp::kEtherTypeArp).payload(arp_body(1, 0x0800, 6, 4, 5)).bytes(),
       DropReason::arp_truncated},
      {"arp_cut_in_addresses",
       Packet().arp(1, kClientMac, kClient4, Mac{}, kVip4).truncate(14 + 27).bytes(),
       DropReason::arp_truncated},
      {"arp_ipv6_ptype",
       Packet().ether_type(dp::kEtherTypeArp).payload(arp_body(1, 0x86dd, 6, 16, 52)).bytes(),
       DropReason::arp_unsupported},
      {"arp_htype_6",
       Packet().ether_type(dp::kEtherTypeArp).payload(arp_body(6, 0x0800, 6, 4)).bytes(),
       DropReason::arp_unsupported},
      {"arp_hlen_8",
       Packet().ether_type(dp::kEtherTypeArp).payload(arp_body(1, 0x0800, 8, 4)).bytes(),
       DropReason::arp_unsupported},
      {"ipv4_19_bytes", tcp4().truncate(14 + 19).bytes(), DropReason::ipv4_truncated},
      {"ipv4_version_6", tcp4().version(6).bytes(), DropReason::ipv4_bad_version},
      {"ipv4_version_0", tcp4().version(0).bytes(), DropReason::ipv4_bad_version},
      {"ipv4_ihl_4", tcp4().ihl(4).bytes(), DropReason::ipv4_bad_ihl},
      {"ipv4_ihl_0", tcp4().ihl(0).bytes(), DropReason::ipv4_bad_ihl},
      {"ipv4_ihl_beyond_frame", Packet().ipv4(kClient4, kVip4).protocol(47).ihl(15).bytes(),
       DropReason::ipv4_ihl_beyond_packet},
      {"ipv4_ihl_beyond_total_length", tcp4().ihl(15).total_length(40).bytes(),
       DropReason::ipv4_ihl_beyond_packet},
      {"ipv4_total_length_shorter_than_header", tcp4().total_length(19).bytes(),
       DropReason::ipv4_ihl_beyond_packet},
      {"ipv4_total_length_zero", tcp4().total_length(0).bytes(),
       DropReason::ipv4_ihl_beyond_packet},
      {"ipv4_total_length_beyond_frame", tcp4().total_length(1000).bytes(),
       DropReason::ipv4_total_len_beyond_frame},
      {"ipv4_cut_frame", tcp4().payload(p100).truncate(100).bytes(),
       DropReason::ipv4_total_len_beyond_frame},
      {"ipv4_fragment_beyond_65535",
       Packet()
           .ipv4(kClient4, kVip4)
           .fragment(65520, false)
           .protocol(kUdp)
           .payload(Bytes(16, 0))
           .bytes(),
       DropReason::ipv4_fragment_overflow},
      {"ipv6_39_bytes", tcp6().truncate(14 + 39).bytes(), DropReason::ipv6_truncated},
      {"ipv6_version_4", tcp6().version(4).bytes(), DropReason::ipv6_bad_version},
      {"ipv6_payload_length_beyond_frame", tcp6().payload_length(21).bytes(),
       DropReason::ipv6_payload_len_beyond_frame},
      {"ipv6_payload_length_too_short_for_tcp", tcp6().payload_length(19).bytes(),
       DropReason::tcp_truncated},
      {"ipv6_payload_length_zero", tcp6().payload_length(0).bytes(), DropReason::tcp_truncated},
      {"ipv6_ext_beyond_packet",
       Packet()
           .ipv6(kClient6, kVip6)
           .ext_header(kIpv6DestOpts, {0, 10, 1, 4, 0, 0, 0, 0})
           .tcp(1, 2)
           .bytes(),
       DropReason::ipv6_ext_truncated},
      {"ipv6_ext_beyond_payload_length",
       Packet().ipv6(kClient6, kVip6).hop_by_hop(16).tcp(1, 2).payload_length(8).bytes(),
       DropReason::ipv6_ext_truncated},
      {"ipv6_routing_header_with_segments_left",
       Packet()
           .ipv6(kClient6, kVip6)
           .ext_header(kIpv6Routing, {0, 0, 4, 1, 0, 0, 0, 0})
           .tcp(1, 2)
           .bytes(),
       DropReason::ipv6_routing_pending},
      {"ipv6_ext_one_byte", Packet().ipv6(kClient6, kVip6).dest_opts().payload_length(1).bytes(),
       DropReason::ipv6_ext_truncated},
      {"ipv6_fragment_header_cut",
       Packet().ipv6(kClient6, kVip6).fragment(0, true).tcp(1, 2).payload_length(6).bytes(),
       DropReason::ipv6_ext_truncated},
      {"ipv6_ah_beyond_packet",
       Packet().ipv6(kClient6, kVip6).ext_header(kIpv6Ah, {0, 200, 0, 0, 0, 0, 0, 0}).bytes(),
       DropReason::ipv6_ext_truncated},
      {"ipv6_nine_ext_headers",
       Packet()
           .ipv6(kClient6, kVip6)
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .dest_opts()
           .udp(1, 2)
           .bytes(),
       DropReason::ipv6_ext_chain_too_long},
      {"ipv6_endless_routing_chain",
       [] {
         Packet p = Packet().ipv6(kClient6, kVip6);
         for (int i = 0; i < 40; ++i)
           p.routing();
         return p.protocol(kTcp).bytes();
       }(),
       DropReason::ipv6_ext_chain_too_long},
      {"ipv6_hop_by_hop_after_dest_opts",
       Packet().ipv6(kClient6, kVip6).dest_opts().hop_by_hop().tcp(1, 2).bytes(),
       DropReason::ipv6_hop_by_hop_misplaced},
      {"ipv6_second_hop_by_hop",
       Packet().ipv6(kClient6, kVip6).hop_by_hop().hop_by_hop().tcp(1, 2).bytes(),
       DropReason::ipv6_hop_by_hop_misplaced},
      {"ipv6_fragment_beyond_65535",
       Packet()
           .ipv6(kClient6, kVip6)
           .fragment(65528, false)
           .protocol(kUdp)
           .payload(Bytes(8, 0))
           .bytes(),
       DropReason::ipv6_fragment_overflow},
      {"ipv6_first_fragment_without_l4",  // RFC 7112
       Packet()
           .ipv6(kClient6, kVip6)
           .fragment(0, true)
           .protocol(kTcp)
           .payload(Bytes(12, 0))
           .bytes(),
       DropReason::tcp_truncated},
      {"ipv4_first_fragment_without_l4",
       Packet().ipv4(kClient4, kVip4).fragment(0, true).protocol(kUdp).payload(Bytes(4, 0)).bytes(),
       DropReason::udp_truncated},
      {"tcp_19_bytes", Packet().ipv4(kClient4, kVip4).protocol(kTcp).payload(Bytes(19, 0)).bytes(),
       DropReason::tcp_truncated},
      {"tcp_data_offset_4", tcp4().data_offset(4).bytes(), DropReason::tcp_bad_data_offset},
      {"tcp_data_offset_0", tcp4().data_offset(0).bytes(), DropReason::tcp_bad_data_offset},
      {"tcp_data_offset_beyond_packet", tcp4().data_offset(15).payload(Bytes(39, 0)).bytes(),
       DropReason::tcp_bad_data_offset},
      {"tcp6_data_offset_beyond_packet", tcp6().data_offset(6).bytes(),
       DropReason::tcp_bad_data_offset},
      {"tcp_options_in_ethernet_padding", tcp4().data_offset(6).pad(10).bytes(),
       DropReason::tcp_bad_data_offset},
      {"udp_7_bytes", Packet().ipv4(kClient4, kVip4).protocol(kUdp).payload(Bytes(7, 0)).bytes(),
       DropReason::udp_truncated},
      {"udp_length_7", Packet().ipv4(kClient4, kVip4).udp(1, 2).udp_length(7).bytes(),
       DropReason::udp_bad_length},
      {"udp_length_0", Packet().ipv6(kClient6, kVip6).udp(1, 2).udp_length(0).bytes(),
       DropReason::udp_bad_length},
      {"udp_length_beyond_packet",
       Packet().ipv4(kClient4, kVip4).udp(1, 2).payload("abc").udp_length(12).bytes(),
       DropReason::udp_bad_length},
      {"udp_length_into_padding",
       Packet().ipv6(kClient6, kVip6).udp(1, 2).udp_length(20).pad(20).bytes(),
       DropReason::udp_bad_length},
      {"sctp_11_bytes",
       Packet().ipv4(kClient4, kVip4).protocol(kSctp).payload(Bytes(11, 0)).bytes(),
       DropReason::sctp_truncated},
      {"icmp4_7_bytes",
       Packet().ipv4(kClient4, kVip4).protocol(dp::kProtoIcmp).payload(Bytes(7, 8)).bytes(),
       DropReason::icmp_truncated},
      {"icmp6_4_bytes",
       Packet().ipv6(kClient6, kVip6).protocol(dp::kProtoIcmpv6).payload(Bytes(4, 128)).bytes(),
       DropReason::icmp_truncated},
      {"icmp4_error_empty_quote", Packet().ipv4(kRouter4, kVip4).icmp(3, 4).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp4_error_quote_19_bytes",
       Packet().ipv4(kRouter4, kVip4).icmp_error(3, 4, reply4, 19).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp4_error_quote_cut_in_options",
       Packet()
           .ipv4(kRouter4, kVip4)
           .icmp_error(11, 0, Packet(reply4).ipv4_options(Bytes(8, 1)), 27)
           .bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp4_error_quote_bad_ihl",
       Packet().ipv4(kRouter4, kVip4).icmp_error(12, 0, Packet(reply4).ihl(3)).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp4_error_quote_version_6",
       Packet().ipv4(kRouter4, kVip4).icmp_error(3, 1, Packet(reply4).version(6)).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp4_error_quoting_ipv6", Packet().ipv4(kRouter4, kVip4).icmp_error(3, 1, reply6).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp6_error_quote_39_bytes",
       Packet().ipv6(kRouter6, kVip6).icmp_error(1, 4, reply6, 39).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp6_error_quoting_ipv4", Packet().ipv6(kRouter6, kVip6).icmp_error(3, 0, reply4).bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp6_error_quote_cut_in_ext_header",
       Packet()
           .ipv6(kRouter6, kVip6)
           .icmp_error(2, 0, Packet(reply6).dest_opts(16), 50, 1280)
           .bytes(),
       DropReason::icmp_inner_truncated},
      {"icmp6_error_quote_with_endless_chain",
       [&] {
         Packet inner = reply6;
         for (int i = 0; i < 9; ++i)
           inner.dest_opts();
         return Packet().ipv6(kRouter6, kVip6).icmp_error(4, 0, inner).bytes();
       }(),
       DropReason::icmp_inner_truncated},
      {"frame_of_65536_bytes", Packet().ipv4(kClient4, kVip4).udp(1, 2).pad(65536).bytes(),
       DropReason::frame_too_long},
  };
}

class ParseDrop : public ::testing::TestWithParam<DropCase> {};

TEST_P(ParseDrop, Reason) {
  const DropCase& c = GetParam();
  Parsed p;
  EXPECT_EQ(dp::drop_reason_name(parse_exact(c.packet, p)), dp::drop_reason_name(c.want));
}

INSTANTIATE_TEST_SUITE_P(Table, ParseDrop, ::testing::ValuesIn(drop_cases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Fields beyond the summary.

TEST(Parse, Ipv4TupleLayout) {
  Parsed p;
  ASSERT_EQ(
      parse_exact(
          Packet().ipv4(kClient4, kVip4).ttl(17).tcp(40000, 80, dp::kTcpSyn | dp::kTcpAck).bytes(),
          p),
      DropReason::none);
  dp::FlowKey want;
  want.src = dp::parse_ip(kClient4)->bytes;
  want.dst = dp::parse_ip(kVip4)->bytes;
  want.sport = 40000;
  want.dport = 80;
  want.proto = dp::kProtoTcp;
  want.family = dp::Family::v4;
  EXPECT_EQ(p.key, want);
  EXPECT_EQ(p.key.src[0], 198);
  EXPECT_EQ(p.key.src[3], 1);
  for (size_t i = 4; i < 16; ++i)
    EXPECT_EQ(p.key.src[i], 0) << i;
  EXPECT_EQ(p.key.tag, 0);
  EXPECT_EQ(p.ttl, 17);
  EXPECT_EQ(p.tcp_flags, dp::kTcpSyn | dp::kTcpAck);
  EXPECT_EQ(p.vlan_count, 0);
}

TEST(Parse, Ipv6TupleLayout) {
  Parsed p;
  ASSERT_EQ(parse_exact(Packet().ipv6(kClient6, kVip6).ttl(3).udp(1234, 53).bytes(), p),
            DropReason::none);
  EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(kClient6));
  EXPECT_EQ(p.key.dst_addr(), *dp::parse_ip(kVip6));
  EXPECT_EQ(p.key.family, dp::Family::v6);
  EXPECT_EQ(p.key.proto, dp::kProtoUdp);
  EXPECT_EQ(p.key.sport, 1234);
  EXPECT_EQ(p.key.dport, 53);
  EXPECT_EQ(p.ttl, 3);
  EXPECT_FALSE(p.ipv4_tcp_udp);
}

// The rewrite's short way: IPv4 with a TCP or UDP header, read in one go or by the walk (options,
// tags, a first fragment); nothing else.
TEST(Parse, Ipv4WithTcpOrUdpSaysSo) {
  const auto flag = [](const Bytes& b) {
    Parsed p;
    EXPECT_EQ(parse_exact(b, p), DropReason::none);
    return p.ipv4_tcp_udp;
  };
  EXPECT_TRUE(flag(Packet().ipv4(kClient4, kVip4).tcp(40000, 80).bytes()));
  EXPECT_TRUE(flag(Packet().ipv4(kClient4, kVip4).udp(40000, 53).bytes()));
  EXPECT_TRUE(flag(Packet().ipv4(kClient4, kVip4).ipv4_options({7, 3, 4}).tcp(1, 2).bytes()));
  EXPECT_TRUE(flag(Packet().vlan(0x00c8).ipv4(kClient4, kVip4).udp(1, 2).bytes()));
  EXPECT_TRUE(flag(Packet().ipv4(kClient4, kVip4).fragment(0, true).tcp(1, 2).bytes()));
  EXPECT_FALSE(flag(Packet().ipv4(kClient4, kVip4).fragment(64, false).tcp(1, 2).bytes()));
  EXPECT_FALSE(flag(Packet().ipv4(kClient4, kVip4).icmp_echo(1, 1).bytes()));
  EXPECT_FALSE(flag(Packet().ipv6(kClient6, kVip6).tcp(1, 2).bytes()));
}

TEST(Parse, VlanTagsOutermostFirst) {
  Parsed p;
  ASSERT_EQ(parse_exact(Packet()
                            .vlan(0x2064, dp::kEtherTypeQinQ)
                            .vlan(0x00c8)
                            .ipv4(kClient4, kVip4)
                            .tcp(1, 2)
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_EQ(p.vlan_count, 2);
  EXPECT_EQ(p.vlan_tci[0], 0x2064);
  EXPECT_EQ(p.vlan_tci[1], 0x00c8);
  EXPECT_EQ(p.ether_type, dp::kEtherTypeIpv4);
}

TEST(Parse, Arp) {
  const Mac target{0x02, 9, 9, 9, 9, 9};
  Parsed p;
  ASSERT_EQ(parse_exact(Packet().arp(2, kClientMac, kClient4, target, kVip4).bytes(), p),
            DropReason::none);
  EXPECT_EQ(p.l3, L3::arp);
  EXPECT_EQ(p.arp.op, 2);
  EXPECT_EQ(Mac(std::to_array(p.arp.sender_mac)), kClientMac);
  EXPECT_EQ(Mac(std::to_array(p.arp.target_mac)), target);
  EXPECT_EQ(p.arp.sender_ip, *dp::parse_ip(kClient4));
  EXPECT_EQ(p.arp.target_ip, *dp::parse_ip(kVip4));
  EXPECT_FALSE(p.has_l4);
}

TEST(Parse, Ipv4FragmentFields) {
  Parsed p;
  ASSERT_EQ(parse_exact(Packet()
                            .ipv4(kClient4, kVip4)
                            .fragment(0, true, 0xbeef)
                            .udp(1, 2)
                            .udp_length(2000)
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_TRUE(p.first_fragment);
  EXPECT_TRUE(p.more_fragments);
  EXPECT_EQ(p.frag_offset, 0);
  EXPECT_EQ(p.frag_id, 0xbeefu);
  EXPECT_EQ(p.frag_hdr_off, 0);

  ASSERT_EQ(parse_exact(Packet()
                            .ipv4(kClient4, kVip4)
                            .fragment(1480, false, 0xbeef)
                            .protocol(kUdp)
                            .payload("tail")
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_FALSE(p.first_fragment);
  EXPECT_FALSE(p.more_fragments);
  EXPECT_EQ(p.frag_offset, 1480);
  EXPECT_EQ(p.frag_id, 0xbeefu);
  EXPECT_FALSE(p.has_l4);
  EXPECT_EQ(p.key.sport, 0);
  EXPECT_EQ(p.key.dport, 0);
  EXPECT_EQ(p.key.proto, kUdp);
}

TEST(Parse, Ipv6FragmentFields) {
  Parsed p;
  ASSERT_EQ(parse_exact(Packet()
                            .ipv6(kClient6, kVip6)
                            .dest_opts()
                            .fragment(2048, true, 0xdeadbeef)
                            .protocol(kTcp)
                            .payload(Bytes(64, 0))
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_FALSE(p.first_fragment);
  EXPECT_TRUE(p.more_fragments);
  EXPECT_EQ(p.frag_offset, 2048);
  EXPECT_EQ(p.frag_id, 0xdeadbeefu);
  EXPECT_EQ(p.frag_hdr_off, 14 + 40 + 8);
  EXPECT_EQ(p.l4_off, 14 + 40 + 8 + 8);

  // RFC 6946: an atomic fragment is a whole datagram; the header is still located.
  ASSERT_EQ(parse_exact(Packet().ipv6(kClient6, kVip6).fragment(0, false, 5).udp(7, 8).bytes(), p),
            DropReason::none);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_FALSE(p.first_fragment);
  EXPECT_EQ(p.frag_id, 0u);
  EXPECT_EQ(p.frag_hdr_off, 14 + 40);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.key.sport, 7);
}

TEST(Parse, IcmpEchoIdentifier) {
  Parsed p;
  ASSERT_EQ(parse_exact(Packet().ipv4(kClient4, kVip4).icmp_echo(0x4242, 1).bytes(), p),
            DropReason::none);
  EXPECT_EQ(p.icmp_type, 8);
  EXPECT_EQ(p.icmp_id, 0x4242);
  EXPECT_FALSE(p.icmp_error);
  ASSERT_EQ(parse_exact(Packet().ipv4(kVip4, kClient4).icmp_echo(0x4243, 1, true).bytes(), p),
            DropReason::none);
  EXPECT_EQ(p.icmp_type, 0);
  EXPECT_EQ(p.icmp_id, 0x4243);
  ASSERT_EQ(parse_exact(Packet().ipv6(kClient6, kVip6).icmp_echo(0x6666, 1).bytes(), p),
            DropReason::none);
  EXPECT_EQ(p.icmp_type, 128);
  EXPECT_EQ(p.icmp_id, 0x6666);
  ASSERT_EQ(parse_exact(Packet().ipv6(kVip6, kClient6).icmp_echo(0x6667, 1, true).bytes(), p),
            DropReason::none);
  EXPECT_EQ(p.icmp_type, 129);
  EXPECT_EQ(p.icmp_id, 0x6667);
  // Not echo: no identifier.
  ASSERT_EQ(
      parse_exact(
          Packet().ipv4(kClient4, kVip4).icmp(13, 0, 0x11112222).payload(Bytes(12, 0)).bytes(), p),
      DropReason::none);
  EXPECT_EQ(p.icmp_id, 0);
}

TEST(Parse, Icmp4ErrorQuotesTheFlow) {
  // The VIP answered the client; a router on the way reports the client unreachable. The quote
  // is the VIP's packet, so its reversed key is the client's flow.
  const Packet reply = Packet().ipv4(kVip4, kClient4).ipv4_options(Bytes(4, 1)).tcp(80, 40000);
  for (const uint8_t type : {3, 4, 11, 12}) {
    Parsed p;
    ASSERT_EQ(
        parse_exact(Packet().ipv4(kRouter4, kVip4).icmp_error(type, 1, reply, 24 + 8).bytes(), p),
        DropReason::none)
        << int(type);
    EXPECT_TRUE(p.icmp_error);
    EXPECT_EQ(p.icmp_type, type);
    EXPECT_EQ(p.icmp_code, 1);
    EXPECT_EQ(p.key.proto, dp::kProtoIcmp);
    EXPECT_EQ(p.key.sport, 0);
    EXPECT_EQ(p.inner.l3_off, 14 + 20 + 8);
    EXPECT_EQ(p.inner.l4_off, 14 + 20 + 8 + 24);
    EXPECT_TRUE(p.inner.has_ports);
    dp::FlowKey flow;
    flow.src = dp::parse_ip(kClient4)->bytes;
    flow.dst = dp::parse_ip(kVip4)->bytes;
    flow.sport = 40000;
    flow.dport = 80;
    flow.proto = dp::kProtoTcp;
    EXPECT_EQ(p.inner.key.reversed(), flow);
  }
}

TEST(Parse, Icmp4ErrorQuoteDepth) {
  const Packet reply = Packet().ipv4(kVip4, kClient4).udp(53, 40000).payload("answer");
  Parsed p;
  // Only the IP header and two bytes of UDP: addresses but no ports.
  ASSERT_EQ(parse_exact(Packet().ipv4(kRouter4, kVip4).icmp_error(3, 3, reply, 22).bytes(), p),
            DropReason::none);
  EXPECT_FALSE(p.inner.has_ports);
  EXPECT_EQ(p.inner.key.proto, dp::kProtoUdp);
  EXPECT_EQ(p.inner.key.src_addr(), *dp::parse_ip(kVip4));
  EXPECT_EQ(p.inner.key.sport, 0);
  // Exactly the four port bytes.
  ASSERT_EQ(parse_exact(Packet().ipv4(kRouter4, kVip4).icmp_error(3, 3, reply, 24).bytes(), p),
            DropReason::none);
  EXPECT_TRUE(p.inner.has_ports);
  EXPECT_EQ(p.inner.key.sport, 53);
  EXPECT_EQ(p.inner.key.dport, 40000);
  // A quoted total length larger than the quote is normal (quotes are truncated).
  ASSERT_EQ(
      parse_exact(
          Packet().ipv4(kRouter4, kVip4).icmp_error(3, 3, Packet(reply).total_length(1500)).bytes(),
          p),
      DropReason::none);
  EXPECT_TRUE(p.inner.has_ports);
  // A quoted non-first fragment carries no ports.
  ASSERT_EQ(parse_exact(Packet()
                            .ipv4(kRouter4, kVip4)
                            .icmp_error(11, 1,
                                        Packet()
                                            .ipv4(kVip4, kClient4)
                                            .fragment(8, false)
                                            .protocol(kUdp)
                                            .payload(Bytes(8, 1)))
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_FALSE(p.inner.has_ports);
  // A quoted ICMP echo has no ports either.
  ASSERT_EQ(parse_exact(Packet()
                            .ipv4(kRouter4, kVip4)
                            .icmp_error(11, 0, Packet().ipv4(kVip4, kClient4).icmp_echo(1, 2))
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_FALSE(p.inner.has_ports);
  EXPECT_EQ(p.inner.key.proto, dp::kProtoIcmp);
}

TEST(Parse, Icmp6ErrorQuotesTheFlow) {
  const Packet reply = Packet().ipv6(kVip6, kClient6).dest_opts(16).sctp(5000, 40000);
  for (const uint8_t type : {1, 2, 3, 4}) {
    Parsed p;
    ASSERT_EQ(
        parse_exact(
            Packet().ipv6(kRouter6, kVip6).icmp_error(type, 0, reply, 40 + 16 + 4, 1280).bytes(),
            p),
        DropReason::none)
        << int(type);
    EXPECT_TRUE(p.icmp_error);
    EXPECT_EQ(p.key.proto, dp::kProtoIcmpv6);
    EXPECT_EQ(p.inner.l3_off, 14 + 40 + 8);
    EXPECT_EQ(p.inner.l4_off, 14 + 40 + 8 + 40 + 16);
    EXPECT_TRUE(p.inner.has_ports);
    EXPECT_EQ(p.inner.key.family, dp::Family::v6);
    EXPECT_EQ(p.inner.key.proto, dp::kProtoSctp);
    EXPECT_EQ(p.inner.key.src_addr(), *dp::parse_ip(kVip6));
    EXPECT_EQ(p.inner.key.dst_addr(), *dp::parse_ip(kClient6));
    EXPECT_EQ(p.inner.key.sport, 5000);
    EXPECT_EQ(p.inner.key.dport, 40000);
  }
  // A quoted non-first fragment: addresses, no ports.
  Parsed p;
  ASSERT_EQ(parse_exact(Packet()
                            .ipv6(kRouter6, kVip6)
                            .icmp_error(3, 1,
                                        Packet()
                                            .ipv6(kVip6, kClient6)
                                            .fragment(64, true)
                                            .protocol(kUdp)
                                            .payload(Bytes(16, 0)))
                            .bytes(),
                        p),
            DropReason::none);
  EXPECT_FALSE(p.inner.has_ports);
  EXPECT_EQ(p.inner.key.proto, kUdp);
}

TEST(Parse, IcmpInformationalTypesAreNotErrors) {
  for (const uint8_t type : {128, 129, 133, 134, 135, 136, 137}) {
    Parsed p;
    ASSERT_EQ(parse_exact(Packet().ipv6(kClient6, kVip6).icmp(type, 0).bytes(), p),
              DropReason::none);
    EXPECT_FALSE(p.icmp_error) << int(type);
  }
  for (const uint8_t type : {0, 5, 8, 13, 14}) {
    Parsed p;
    ASSERT_EQ(parse_exact(Packet().ipv4(kClient4, kVip4).icmp(type, 0).bytes(), p),
              DropReason::none);
    EXPECT_FALSE(p.icmp_error) << int(type);
  }
}

TEST(Parse, FramesUpTo65535Bytes) {
  Parsed p;
  const Bytes b = Packet().ipv4(kClient4, kVip4).udp(1, 2).payload(Bytes(65507, 0)).bytes();
  ASSERT_EQ(b.size(), 14u + 65535u);
  EXPECT_EQ(parse_exact(b, p), DropReason::frame_too_long);
  const Bytes c = Packet().ipv4(kClient4, kVip4).udp(1, 2).payload(Bytes(65507 - 14, 0)).bytes();
  ASSERT_EQ(c.size(), 65535u);
  ASSERT_EQ(parse_exact(c, p), DropReason::none);
  EXPECT_EQ(p.l3_end, 65535);
  EXPECT_EQ(p.payload_off, 42);
}

// ---------------------------------------------------------------------------------------------
// Truncation at every length.

// Minimum L4 header a successful parse must have read, by protocol.
size_t min_l4_header(const Parsed& p) {
  switch (p.key.proto) {
    case dp::kProtoTcp:
      return 20;
    case dp::kProtoUdp:
      return 8;
    case dp::kProtoSctp:
      return 12;
    case dp::kProtoIcmp:
    case dp::kProtoIcmpv6:
      return 8;
    default:
      return 0;
  }
}

// Everything a successful parse promises about a frame of `size` bytes.
void expect_in_bounds(const Parsed& p, size_t size, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_LE(p.l3_off, p.l4_off);
  EXPECT_LE(p.l4_off, p.l3_end);
  EXPECT_LE(p.l3_end, size);
  if (p.has_l4) {
    EXPECT_LE(p.payload_off, p.l3_end);
    EXPECT_GE(size_t(p.payload_off - p.l4_off), min_l4_header(p));
  }
  if (p.icmp_error) {
    EXPECT_LE(p.inner.l3_off, p.inner.l4_off);
    EXPECT_LE(p.inner.l4_off, p.l3_end);
    if (p.inner.has_ports) {
      EXPECT_LE(p.inner.l4_off + 4u, p.l3_end);
    }
  }
}

TEST(ParseTruncation, EveryLengthOfValidPackets) {
  for (const auto& [name, full] : truncation_subjects()) {
    Parsed whole;
    ASSERT_EQ(parse_exact(full, whole), DropReason::none) << name;
    for (size_t n = 0; n < full.size(); ++n) {
      const Bytes cut(full.begin(), full.begin() + n);
      Parsed p;
      // The IP length fields (or the ARP body) describe the whole packet: any cut is a drop.
      EXPECT_NE(parse_exact(cut, p), DropReason::none) << name << " cut to " << n;
    }
  }
}

// The same cuts, with the IP length fields rewritten to agree with the cut: the IP layer is
// then consistent and only the L4 checks stand between the parser and a short read.
TEST(ParseTruncation, EveryLengthWithConsistentIpLength) {
  for (const auto& [name, full] : truncation_subjects()) {
    Parsed whole;
    ASSERT_EQ(parse_exact(full, whole), DropReason::none) << name;
    if (whole.l3 == L3::arp) continue;
    const bool v4 = whole.l3 == L3::ipv4;
    const size_t len_field = whole.l3_off + (v4 ? 2 : 4);
    const size_t fixed = v4 ? 0 : 40;  // the IPv6 payload length excludes the fixed header
    size_t successes = 0;
    for (size_t n = whole.l3_off + (v4 ? 20 : 40); n < full.size(); ++n) {
      Bytes cut(full.begin(), full.begin() + n);
      dp::store_be16(cut.data() + len_field, uint16_t(n - whole.l3_off - fixed));
      Parsed p;
      const std::string what = name + " cut to " + std::to_string(n);
      if (parse_exact(cut, p) != DropReason::none) continue;
      ++successes;
      expect_in_bounds(p, n, what);
      if (whole.has_l4 && p.l4_off == whole.l4_off) {
        EXPECT_TRUE(p.has_l4) << what;  // a known L4 protocol is read or refused
      }
    }
    if (whole.key.proto == dp::kProtoUdp && !whole.is_fragment) {
      EXPECT_EQ(successes, 0u) << name;  // the UDP length still describes the uncut datagram
    } else {
      EXPECT_GT(successes, 0u) << name;
    }
  }
}

}  // namespace
}  // namespace magline::test
