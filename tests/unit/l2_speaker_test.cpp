// The L2 speaker's choice (control/l2_speaker.hpp): one owner per address among the live nodes,
// the same on every node, moving only what a joining or leaving node wins or held.
#include "control/l2_speaker.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace magline::control {
namespace {

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

std::set<dp::IpAddr> addresses(size_t n) {
  std::set<dp::IpAddr> out;
  for (size_t i = 0; i < n; ++i) out.insert(dp::IpAddr::v4(0xc6126400u + uint32_t(i)));
  out.insert(ip("2001:db8:100::1"));
  return out;
}

// The weight is part of the wire between nodes of different versions: fixed forever.
TEST(L2Speaker, TheWeightIsFixed) {
  EXPECT_EQ(rendezvous_weight("node-a", ip("198.18.100.1")),
            rendezvous_weight("node-a", ip("198.18.100.1")));
  EXPECT_NE(rendezvous_weight("node-a", ip("198.18.100.1")),
            rendezvous_weight("node-b", ip("198.18.100.1")));
  EXPECT_NE(rendezvous_weight("node-a", ip("198.18.100.1")),
            rendezvous_weight("node-a", ip("198.18.100.2")));
  EXPECT_EQ(rendezvous_weight("node-a", ip("198.18.100.1")), 0xc2b4017b64ebc9a8ull);
  EXPECT_EQ(l2_owner(ip("198.18.100.1"), {}), "");
  EXPECT_EQ(l2_owner(ip("198.18.100.1"), {"only"}), "only");
}

TEST(L2Speaker, ExactlyOneLiveNodeAnswersForEachAddressAndTheyShare) {
  const std::vector<std::string> live = {"n1", "n2", "n3"};
  const std::set<dp::IpAddr> addrs = addresses(300);
  std::map<std::string, size_t> per_node;
  std::vector<L2Speaker> nodes;
  for (const std::string& n : live) {
    nodes.emplace_back(n);
    nodes.back().update(addrs, live, true);
  }
  for (const dp::IpAddr& a : addrs) {
    size_t answering = 0;
    for (const L2Speaker& s : nodes) {
      if (s.answers(a)) {
        ++answering;
        ++per_node[s.identity()];
        EXPECT_EQ(l2_owner(a, live), s.identity());
      }
    }
    EXPECT_EQ(answering, 1u) << dp::to_string(a);
  }
  for (const std::string& n : live) {
    EXPECT_GT(per_node[n], 70u) << n;  // 100 expected of 301
    EXPECT_LT(per_node[n], 135u) << n;
  }
}

TEST(L2Speaker, ALeavingNodesAddressesMoveAndNoOthers) {
  const std::set<dp::IpAddr> addrs = addresses(200);
  L2Speaker n1("n1"), n2("n2");
  n1.update(addrs, {"n1", "n2", "n3"}, true);
  n2.update(addrs, {"n1", "n2", "n3"}, true);
  const std::set<dp::IpAddr> before1 = n1.owned(), before2 = n2.owned();
  const uint64_t takeovers = n1.takeovers();

  // n3 goes: n1 and n2 take its addresses, keep their own, and announce what they gained.
  const std::vector<dp::IpAddr> gained1 = n1.update(addrs, {"n1", "n2"}, true);
  const std::vector<dp::IpAddr> gained2 = n2.update(addrs, {"n1", "n2"}, true);
  for (const dp::IpAddr& a : before1) EXPECT_TRUE(n1.answers(a));
  for (const dp::IpAddr& a : before2) EXPECT_TRUE(n2.answers(a));
  EXPECT_EQ(n1.owned().size() + n2.owned().size(), addrs.size());
  EXPECT_EQ(gained1.size(), n1.owned().size() - before1.size());
  EXPECT_EQ(gained2.size(), n2.owned().size() - before2.size());
  EXPECT_FALSE(gained1.empty());
  EXPECT_EQ(n1.takeovers(), takeovers + gained1.size());
  for (const dp::IpAddr& a : gained1) EXPECT_EQ(l2_owner(a, {"n1", "n2", "n3"}), "n3");

  // n3 comes back: it wins the same addresses again; the others give them up silently.
  EXPECT_TRUE(n1.update(addrs, {"n1", "n2", "n3"}, true).empty());
  EXPECT_EQ(n1.owned(), before1);
}

TEST(L2Speaker, NothingWithoutItsOwnLeaseAndItselfBeforeTheListShowsIt) {
  const std::set<dp::IpAddr> addrs = addresses(50);
  L2Speaker n1("n1");
  // Its Lease held, not yet in a list: it counts itself (alone here: everything is its).
  EXPECT_EQ(n1.update(addrs, {}, true).size(), addrs.size());
  EXPECT_EQ(n1.members(), (std::vector<std::string>{"n1"}));
  n1.update(addrs, {"n0", "n2"}, true);
  EXPECT_EQ(n1.members(), (std::vector<std::string>{"n0", "n1", "n2"}));
  // Its Lease not renewed (cut off from the API server): it answers for nothing, whatever the
  // last list said, as the others will see it gone.
  EXPECT_TRUE(n1.update(addrs, {"n1", "n2"}, false).empty());
  EXPECT_TRUE(n1.owned().empty());
  // Back: it takes its share again, announcing it.
  const std::vector<dp::IpAddr> back = n1.update(addrs, {"n1", "n2"}, true);
  EXPECT_EQ(back.size(), n1.owned().size());
  EXPECT_FALSE(n1.owned().empty());
  EXPECT_LT(n1.owned().size(), addrs.size());
}

}  // namespace
}  // namespace magline::control
