// What the parser's two test files share (parse_test.cpp: valid frames, drops, truncation;
// parse_walk_test.cpp: the common frame read in one go against the general walk): addresses,
// a parse of exactly the given bytes, and frames of every shape to cut and change.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dataplane/parse.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {

constexpr const char* kClient4 = "198.18.0.1";
constexpr const char* kVip4 = "198.18.100.1";
constexpr const char* kRouter4 = "198.18.1.254";
constexpr const char* kClient6 = "2001:db8::1";
constexpr const char* kVip6 = "2001:db8:100::1";
constexpr const char* kRouter6 = "2001:db8:1::fe";

// Parses a copy of exactly `b` on the heap, so that ASan reports any read past its end.
inline dp::DropReason parse_exact(const Bytes& b, dp::Parsed& p) {
  const Bytes copy(b);
  return dp::parse(copy, p);
}

// Frames of every shape the parser knows (tagged, with options and extension headers, ICMP
// errors quoting a flow, a fragment, ARP), for cutting at every length and changing.
inline std::vector<std::pair<std::string, Bytes>> truncation_subjects() {
  const Packet reply4 = Packet().ipv4(kVip4, kClient4).tcp(80, 40000).payload("data");
  const Packet reply6 = Packet().ipv6(kVip6, kClient6).hop_by_hop().udp(53, 40000).payload("x");
  return {
      {"tcp4_vlan_options", Packet()
                                .vlan(9)
                                .ipv4(kClient4, kVip4)
                                .ipv4_options(Bytes(4, 1))
                                .tcp(1, 2)
                                .tcp_options({2, 4, 5, 0xb4})
                                .payload("hello")
                                .bytes()},
      {"udp4_qinq", Packet()
                        .vlan(1, dp::kEtherTypeQinQ)
                        .vlan(2)
                        .ipv4(kClient4, kVip4)
                        .udp(1, 2)
                        .payload("abc")
                        .bytes()},
      {"sctp4", Packet().ipv4(kClient4, kVip4).sctp(1, 2).payload(Bytes(16, 3)).bytes()},
      {"icmp4_error", Packet().ipv4(kRouter4, kVip4).icmp_error(3, 3, reply4).bytes()},
      {"icmp4_echo", Packet().ipv4(kClient4, kVip4).icmp_echo(1, 1).payload("ping").bytes()},
      {"tcp6_ext", Packet()
                       .ipv6(kClient6, kVip6)
                       .hop_by_hop()
                       .routing(16)
                       .ah()
                       .tcp(1, 2)
                       .payload("hi")
                       .bytes()},
      {"udp6_first_fragment", Packet()
                                  .ipv6(kClient6, kVip6)
                                  .fragment(0, true)
                                  .udp(1, 2)
                                  .udp_length(900)
                                  .payload("a")
                                  .bytes()},
      {"icmp6_error", Packet().ipv6(kRouter6, kVip6).icmp_error(2, 0, reply6, 1000, 1280).bytes()},
      {"arp", Packet().arp(1, kClientMac, kClient4, Mac{}, kVip4).bytes()},
  };
}

}  // namespace magline::test
