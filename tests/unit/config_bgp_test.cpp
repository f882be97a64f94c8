// The `bgp` section (docs/config.md, docs/announce.md): what it reads, and its refusals.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "config/config.hpp"
#include "tests/unit/config_cases.hpp"

namespace magline::cfg {
namespace {

using namespace config_cases;

// A file with one port (198.18.0.2/16, 2001:db8::2/64) and the given bgp section.
std::string with_bgp(std::string_view bgp) {
  return R"({"dataplane": {"ports": [{"name": "lan0", "device": "net_null0",
      "addresses": ["198.18.0.2/16", "2001:db8::2/64"]}]}, "bgp": )" + std::string(bgp) + "}";
}

TEST(Bgp, ParsesEveryField) {
  const Config c = parse_ok(with_bgp(R"({
      "bird_config": "/etc/bird/magline.conf", "bird_socket": "/run/bird/other.ctl",
      "local_as": 4200000001, "router_id": "198.18.0.9",
      "peers": [{"address": "198.18.0.254", "as": 65000, "password": "s3cret",
                 "hold_time_s": 9},
                {"address": "198.19.5.1", "as": 65002, "multihop": true, "hold_time_s": 0}],
      "communities": ["65000:100", "0:65535"],
      "next_hop_v4": "198.18.0.2", "next_hop_v6": "2001:db8::2",
      "withdraw_without_backends": false, "drain_ms": 0})"));
  const BgpConfig& b = c.bgp;
  EXPECT_TRUE(b.enabled);
  EXPECT_EQ(b.bird_config, "/etc/bird/magline.conf");
  EXPECT_EQ(b.bird_socket, "/run/bird/other.ctl");
  EXPECT_EQ(b.local_as, 4200000001u);
  EXPECT_EQ(dp::to_string(*b.router_id), "198.18.0.9");
  ASSERT_EQ(b.peers.size(), 2u);
  EXPECT_EQ(dp::to_string(b.peers[0].address), "198.18.0.254");
  EXPECT_EQ(b.peers[0].as, 65000u);
  EXPECT_EQ(b.peers[0].password, "s3cret");
  EXPECT_EQ(b.peers[0].hold_time_s, 9u);
  EXPECT_FALSE(b.peers[0].multihop);
  EXPECT_TRUE(b.peers[1].multihop);
  EXPECT_EQ(b.peers[1].hold_time_s, 0u);
  EXPECT_EQ(b.communities, (std::vector<BgpCommunity>{{65000, 100}, {0, 65535}}));
  EXPECT_EQ(dp::to_string(*b.next_hop_v4), "198.18.0.2");
  EXPECT_EQ(dp::to_string(*b.next_hop_v6), "2001:db8::2");
  EXPECT_FALSE(b.withdraw_without_backends);
  EXPECT_EQ(b.drain_ms, 0u);
}

TEST(Bgp, DefaultsAndTheRouterIdFromThePorts) {
  const Config c = parse_ok(with_bgp(R"({"local_as": 65001,
      "peers": [{"address": "2001:db8::fe", "as": 65000}]})"));
  const BgpConfig& b = c.bgp;
  EXPECT_EQ(b.bird_config, "/run/magline/bird.conf");
  EXPECT_EQ(b.bird_socket, "/run/bird/bird.ctl");
  EXPECT_EQ(dp::to_string(*b.router_id), "198.18.0.2");
  EXPECT_EQ(b.peers[0].hold_time_s, 90u);
  EXPECT_TRUE(b.communities.empty());
  EXPECT_TRUE(b.withdraw_without_backends);
  EXPECT_EQ(b.drain_ms, 5000u);
  EXPECT_FALSE(parse_ok("{}").bgp.enabled);
}

TEST(Bgp, Refusals) {
  const std::string peer = R"("peers": [{"address": "198.18.0.254", "as": 65000}])";
  expect_errors({
      {with_bgp(R"({)" + peer + "}"), "t.json: bgp: missing key \"local_as\""},
      {with_bgp(R"({"local_as": 65001})"), "t.json: bgp: expected at least one peer in \"peers\""},
      {with_bgp(R"({"local_as": 0, )" + peer + "}"),
       "t.json: bgp.local_as: expected an integer in 1..4294967295, got 0"},
      {with_bgp(R"({"local_as": 65001, "peers": [{"address": "198.18.0.254"}]})"),
       "t.json: bgp.peers[0]: missing key \"as\""},
      {with_bgp(R"({"local_as": 65001, "peers": [{"address": "203.0.113.1", "as": 1}]})"),
       "t.json: bgp.peers[0].address: 203.0.113.1 is not in a subnet of a port; set "
       "\"multihop\": true for a peer beyond them"},
      {with_bgp(R"({"local_as": 65001, "peers": [{"address": "198.18.0.254", "as": 1},
                                                 {"address": "198.18.0.254", "as": 2}]})"),
       "t.json: bgp.peers[1].address: duplicate peer (also bgp.peers[0])"},
      {with_bgp(R"({"local_as": 65001, "peers": [{"address": "198.18.0.254", "as": 1,
                                                  "hold_time_s": 2}]})"),
       "t.json: bgp.peers[0].hold_time_s: a hold time is 0 or at least 3 seconds (RFC 4271 "
       "4.2), got 2"},
      {with_bgp(R"({"local_as": 65001, "peers": [{"address": "198.18.0.254", "as": 1,
                                                  "password": "a\"b"}]})"),
       "t.json: bgp.peers[0].password: expected at most 80 printable ASCII characters without "
       "'\"' or '\\'"},
      {with_bgp(R"({"local_as": 65001, "communities": ["65536:1"], )" + peer + "}"),
       "t.json: bgp.communities[0]: expected a community AS:VALUE, each 0..65535 "
       "(\"65000:100\"), got \"65536:1\""},
      {with_bgp(R"({"local_as": 65001, "router_id": "2001:db8::1", )" + peer + "}"),
       "t.json: bgp.router_id: expected an IPv4 address, got \"2001:db8::1\""},
      {with_bgp(R"({"local_as": 65001, "next_hop_v6": "198.18.0.2", )" + peer + "}"),
       "t.json: bgp.next_hop_v6: expected an IPv6 address, got \"198.18.0.2\""},
      {with_bgp(R"({"local_as": 65001, "bird_config": "bird.conf", )" + peer + "}"),
       "t.json: bgp.bird_config: expected an absolute path, got \"bird.conf\""},
      {with_bgp(R"({"local_as": 65001, "drain_ms": 600001, )" + peer + "}"),
       "t.json: bgp.drain_ms: expected an integer in 0..600000, got 600001"},
      {R"({"dataplane": {"ports": [{"name": "lan0", "device": "net_null0",
           "addresses": ["2001:db8::2/64"]}]},
          "bgp": {"local_as": 65001, "peers": [{"address": "2001:db8::fe", "as": 1}]}})",
       "t.json: bgp.router_id: no IPv4 port address to take the router id from: give one"},
  });
}

}  // namespace
}  // namespace magline::cfg
