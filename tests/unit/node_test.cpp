#include "dataplane/node.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "dataplane/route_table.hpp"

namespace magline::dp {
namespace {

IpAddr ip(const char* text) {
  return *parse_ip(text);
}

IfAddr ifaddr(const char* text, uint8_t len) {
  return IfAddr{ip(text), len};
}

StaticRoute route(const char* prefix, const char* via, uint16_t port) {
  return StaticRoute{*parse_prefix(prefix, HostBits::reject), ip(via), port};
}

// Two ports; routes that cover every precedence rule.
Node test_node() {
  Node n;
  n.ports.push_back({0,
                     "p0",
                     {},
                     {ifaddr("fe80::1", 64), ifaddr("198.18.1.1", 24), ifaddr("2001:db8:1::1", 64)},
                     1500});
  n.ports.push_back({1, "p1", {}, {ifaddr("198.18.2.1", 24)}, 9000});
  n.routes = {
      route("0.0.0.0/0", "198.18.1.254", 0),
      route("198.18.100.0/24", "198.18.2.254", 1),
      route("198.18.2.0/24", "198.18.1.253", 0),    // ties with port 1's subnet
      route("198.18.2.128/25", "198.18.1.252", 0),  // longer than port 1's subnet
      route("10.0.0.0/8", "192.0.2.1", 1),          // gateway not on-link: config's business
      route("::/0", "fe80::fe", 0),
  };
  return n;
}

struct ResolveCase {
  std::string name;
  const char* dst;
  std::optional<NextHop> want;
};

TEST(Node, ResolveIsLongestPrefixMatchWithOnLinkWinningTies) {
  const Node n = test_node();
  const std::vector<ResolveCase> cases = {
      {"on_link", "198.18.1.7", NextHop{ip("198.18.1.7"), 0}},
      {"own_address", "198.18.1.1", NextHop{ip("198.18.1.1"), 0}},
      {"default_route", "203.0.113.9", NextHop{ip("198.18.1.254"), 0}},
      {"specific_route", "198.18.100.5", NextHop{ip("198.18.2.254"), 1}},
      {"tie_goes_on_link", "198.18.2.5", NextHop{ip("198.18.2.5"), 1}},
      {"longer_route_beats_on_link", "198.18.2.200", NextHop{ip("198.18.1.252"), 0}},
      {"off_link_gateway_as_given", "10.1.2.3", NextHop{ip("192.0.2.1"), 1}},
      {"v6_on_link", "2001:db8:1::9", NextHop{ip("2001:db8:1::9"), 0}},
      {"v6_link_local", "fe80::5", NextHop{ip("fe80::5"), 0}},
      {"v6_default", "2001:db8:9::1", NextHop{ip("fe80::fe"), 0}},
  };
  for (const ResolveCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(n.resolve(ip(c.dst)), c.want);
  }
}

TEST(Node, ResolveWithoutACoveringPrefixIsEmpty) {
  Node n = test_node();
  n.routes.clear();
  EXPECT_EQ(n.resolve(ip("203.0.113.9")), std::nullopt);
  EXPECT_EQ(n.resolve(ip("2001:db8:9::1")), std::nullopt);
  // A v4 prefix never covers a v6 address with the same leading bytes.
  n.routes = {route("0.0.0.0/0", "198.18.1.254", 0)};
  EXPECT_EQ(n.resolve(ip("::1")), std::nullopt);
}

TEST(Node, FirstOfEqualOnLinkSubnetsWins) {
  Node n;
  n.ports.push_back({0, "a", {}, {ifaddr("198.18.1.1", 24)}, 1500});
  n.ports.push_back({1, "b", {}, {ifaddr("198.18.1.2", 24)}, 1500});
  EXPECT_EQ(n.resolve(ip("198.18.1.9")), (NextHop{ip("198.18.1.9"), 0}));
}

TEST(Node, SubnetClearsHostBits) {
  struct Case {
    IfAddr in;
    const char* want;
  };
  const std::vector<Case> cases = {
      {ifaddr("198.18.1.77", 24), "198.18.1.0/24"},
      {ifaddr("198.18.1.77", 25), "198.18.1.0/25"},
      {ifaddr("198.18.1.200", 25), "198.18.1.128/25"},
      {ifaddr("198.18.1.77", 32), "198.18.1.77/32"},
      {ifaddr("198.18.1.77", 0), "0.0.0.0/0"},
      {ifaddr("2001:db8:1::1", 64), "2001:db8:1::/64"},
      {ifaddr("2001:db8:1::ff", 121), "2001:db8:1::80/121"},
      {ifaddr("2001:db8:1::1", 128), "2001:db8:1::1/128"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.want);
    EXPECT_EQ(to_string(c.in.subnet()), c.want);
  }
  // A length past the family's bits means the whole address.
  EXPECT_EQ(to_string(ifaddr("198.18.1.77", 40).subnet()), "198.18.1.77/32");
}

TEST(Node, SourceAddressPrefersAGlobalAddressOfTheFamily) {
  const Node n = test_node();
  ASSERT_NE(n.source_address(0, Family::v4), nullptr);
  EXPECT_EQ(n.source_address(0, Family::v4)->addr, ip("198.18.1.1"));
  ASSERT_NE(n.source_address(0, Family::v6), nullptr);
  EXPECT_EQ(n.source_address(0, Family::v6)->addr, ip("2001:db8:1::1"));
  EXPECT_EQ(n.source_address(1, Family::v6), nullptr);
  EXPECT_EQ(n.source_address(7, Family::v4), nullptr);

  Node only_link_local;
  only_link_local.ports.push_back({0, "p", {}, {ifaddr("fe80::1", 64)}, 1500});
  ASSERT_NE(only_link_local.source_address(0, Family::v6), nullptr);
  EXPECT_EQ(only_link_local.source_address(0, Family::v6)->addr, ip("fe80::1"));
}

TEST(Node, IsLocalKnowsEveryPortAddress) {
  const Node n = test_node();
  for (const char* a : {"198.18.1.1", "198.18.2.1", "2001:db8:1::1", "fe80::1"}) {
    EXPECT_TRUE(n.is_local(ip(a))) << a;
  }
  for (const char* a : {"198.18.1.2", "198.18.1.254", "2001:db8:1::2", "0.0.0.0"}) {
    EXPECT_FALSE(n.is_local(ip(a))) << a;
  }
}

// The packet path's compiled table answers as Node's scans do: the fixture's every precedence
// rule, then random nodes (subnets and routes of every length, duplicates and ties included)
// against addresses near their prefixes.
TEST(RouteTable, AnswersAsTheNodesScans) {
  const Node n = test_node();
  const RouteTable t(n);
  for (const char* a : {"198.18.1.7", "198.18.2.7", "198.18.2.200", "198.18.100.1", "10.1.2.3",
                        "203.0.113.9", "2001:db8:1::9", "2001:db8:2::9", "fe80::77", "::1",
                        "198.18.1.1", "198.18.2.1"}) {
    EXPECT_EQ(t.resolve(ip(a)), n.resolve(ip(a))) << a;
    EXPECT_EQ(t.is_local(ip(a)), n.is_local(ip(a))) << a;
  }

  std::mt19937 rng(4632);
  const auto random_addr = [&](Family f, const IpAddr* near) {
    IpAddr a;
    a.family = f;
    const size_t n_bytes = f == Family::v4 ? 4 : 16;
    for (size_t i = 0; i < n_bytes; ++i) a.bytes[i] = uint8_t(rng());
    if (near != nullptr && near->family == f) {
      const size_t keep = rng() % (n_bytes + 1);  // share a random number of leading bytes
      for (size_t i = 0; i < keep; ++i) a.bytes[i] = near->bytes[i];
      if (keep < n_bytes && rng() % 2) a.bytes[keep] ^= uint8_t(1u << (rng() % 8));
    }
    return a;
  };
  const auto random_family = [&] { return rng() % 3 == 0 ? Family::v6 : Family::v4; };
  for (int trial = 0; trial < 300; ++trial) {
    Node node;
    std::vector<IpAddr> seeds;
    for (uint16_t p = 0; p < 1 + rng() % 3; ++p) {
      NodePort port;
      port.id = p;
      for (unsigned k = 0; k < rng() % 4; ++k) {
        const Family f = random_family();
        const IpAddr a = random_addr(f, seeds.empty() ? nullptr : &seeds[rng() % seeds.size()]);
        port.addrs.push_back({a, uint8_t(rng() % (f == Family::v4 ? 40 : 136))});
        seeds.push_back(a);
      }
      node.ports.push_back(port);
    }
    for (unsigned k = 0; k < rng() % 5; ++k) {
      const Family f = random_family();
      const IpAddr a = random_addr(f, seeds.empty() ? nullptr : &seeds[rng() % seeds.size()]);
      const uint8_t len = uint8_t(rng() % (f == Family::v4 ? 33 : 129));
      node.routes.push_back({*parse_prefix(to_string(a) + "/" + std::to_string(len),
                                           HostBits::clear),
                             random_addr(f, nullptr), uint16_t(rng() % node.ports.size())});
      seeds.push_back(a);
    }
    const RouteTable table(node);
    for (int q = 0; q < 50; ++q) {
      const IpAddr d = random_addr(random_family(),
                                   seeds.empty() ? nullptr : &seeds[rng() % seeds.size()]);
      ASSERT_EQ(table.resolve(d), node.resolve(d)) << "trial " << trial << " " << to_string(d);
      ASSERT_EQ(table.is_local(d), node.is_local(d)) << "trial " << trial;
    }
    for (const IpAddr& s : seeds) {
      ASSERT_EQ(table.resolve(s), node.resolve(s)) << "trial " << trial << " " << to_string(s);
      ASSERT_EQ(table.is_local(s), node.is_local(s)) << "trial " << trial;
    }
  }
}

}  // namespace
}  // namespace magline::dp
