// LoadBalancer IP assignment (control/k8s/ipam.hpp): pools, requested and shared addresses,
// exhaustion and release, restarts that change nothing, in MetalLB's e2e terms where it has
// them ("should preserve the same external ip after controller restart", "reallocates svc after
// deleting a pool", dual-stack pool selection).
#include "control/k8s/ipam.hpp"

#include <gtest/gtest.h>

namespace magline::k8s {
namespace {

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

AddressRange range(const char* s) { return std::move(parse_range(s)).value(); }

AddressPool pool(const char* name, std::vector<const char*> ranges, bool auto_assign = true) {
  AddressPool p;
  p.name = name;
  for (const char* r : ranges) p.ranges.push_back(range(r));
  p.auto_assign = auto_assign;
  return p;
}

K8sService service(const char* name, std::vector<std::string> families = {"IPv4"},
                   uint16_t port = 80) {
  K8sService s;
  s.meta.ns = "ns";
  s.meta.name = name;
  s.type = "LoadBalancer";
  s.ip_families = std::move(families);
  s.ports = {{"http", "TCP", port, 0}};
  return s;
}

IpRequest request(const K8sService& s) { return std::get<IpRequest>(request_of(s)); }

// The addresses as text, or "refused: REASON".
std::string assign(Ipam& ipam, const K8sService& s) {
  const auto r = ipam.assign(request(s));
  if (const auto* no = std::get_if<Refused>(&r)) return "refused: " + std::string(to_string(no->reason));
  std::string out;
  for (const dp::IpAddr& a : std::get<Assignment>(r).addrs) {
    out += (out.empty() ? "" : ",") + dp::to_string(a);
  }
  return out;
}

TEST(AddressRanges, NetworksRangesAndSingleAddresses) {
  EXPECT_EQ(range("198.18.200.0/30"), (AddressRange{ip("198.18.200.0"), ip("198.18.200.3")}));
  EXPECT_EQ(range("2001:db8:100::/126"), (AddressRange{ip("2001:db8:100::"), ip("2001:db8:100::3")}));
  EXPECT_EQ(range("198.18.201.10-198.18.201.20"),
            (AddressRange{ip("198.18.201.10"), ip("198.18.201.20")}));
  EXPECT_EQ(range("198.18.202.7"), (AddressRange{ip("198.18.202.7"), ip("198.18.202.7")}));
  EXPECT_EQ(to_string(range("198.18.200.0/30")), "198.18.200.0-198.18.200.3");
  for (const char* bad : {"198.18.200.1/30", "198.18.1.9-198.18.1.1", "198.18.1.1-2001:db8::1",
                          "198.18.1.1-", "nonsense", "198.18.0.0/33", ""}) {
    EXPECT_FALSE(parse_range(bad).ok()) << bad;
  }
  EXPECT_TRUE(overlap(range("198.18.0.0/24"), range("198.18.0.255-198.18.1.3")));
  EXPECT_FALSE(overlap(range("198.18.0.0/24"), range("198.18.1.0/24")));
  EXPECT_FALSE(overlap(range("198.18.0.0/24"), range("::/0")));
}

TEST(Ipam, FirstFreeAddressOfTheFirstPoolThatServesTheService) {
  Ipam ipam({pool("v4", {"198.18.200.0/30"}), pool("v6", {"2001:db8:100::/126"}),
             pool("dual", {"198.18.210.0/30", "2001:db8:110::/126"})});
  EXPECT_EQ(assign(ipam, service("a")), "198.18.200.0");
  EXPECT_EQ(assign(ipam, service("b")), "198.18.200.1");
  EXPECT_EQ(assign(ipam, service("c", {"IPv6"})), "2001:db8:100::");
  // Dual-stack: one pool with both families, one address of each, in the Service's order.
  EXPECT_EQ(assign(ipam, service("d", {"IPv6", "IPv4"})), "2001:db8:110::,198.18.210.0");
  // The same request again: the same answer, nothing new taken.
  EXPECT_EQ(assign(ipam, service("a")), "198.18.200.0");
  const auto* a = ipam.find("ns/a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->pool, "v4");
  EXPECT_EQ(a->why, "first free address of pool v4");
  // Without ipFamilies, the cluster IPs' families; without those, IPv4.
  K8sService bare = service("e", {});
  bare.cluster_ips = {"fd00::1"};
  EXPECT_EQ(assign(ipam, bare), "2001:db8:100::1");
}

TEST(Ipam, ExhaustedUntilAnAddressIsReleased) {
  Ipam ipam({pool("small", {"198.18.200.0/31"})});
  EXPECT_EQ(assign(ipam, service("a")), "198.18.200.0");
  EXPECT_EQ(assign(ipam, service("b")), "198.18.200.1");
  EXPECT_EQ(assign(ipam, service("c")), "refused: exhausted");
  ipam.release("ns/a");
  EXPECT_EQ(assign(ipam, service("c")), "198.18.200.0");
  const auto usage = ipam.usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].size, 2.0);
  EXPECT_EQ(usage[0].used, 2u);
}

// first_free() starts where the last search stopped (O(1) for assignments in address order, as
// a benchmark at 10,000 Services needs): an address released or restored below that point, or
// an avoided run, must still give the lowest free one.
TEST(Ipam, TheLowestFreeAddressWhateverWasReleasedOrRestoredBefore) {
  AddressPool p = pool("p", {"198.18.200.0/29", "198.18.201.0/30"});
  p.avoid = {range("198.18.200.2-198.18.200.3")};
  Ipam ipam({p});
  EXPECT_EQ(assign(ipam, service("a")), "198.18.200.0");
  EXPECT_EQ(assign(ipam, service("b")), "198.18.200.1");
  EXPECT_EQ(assign(ipam, service("c")), "198.18.200.4");  // over the avoided run
  ipam.release("ns/a");
  EXPECT_EQ(assign(ipam, service("d")), "198.18.200.0");  // below where the search stopped
  // Taken back from a status above the search: skipped when the search gets there.
  ASSERT_TRUE(ipam.restore(request(service("r")), {ip("198.18.200.5")}));
  EXPECT_EQ(assign(ipam, service("e")), "198.18.200.6");
  EXPECT_EQ(assign(ipam, service("f")), "198.18.200.7");
  EXPECT_EQ(assign(ipam, service("g")), "198.18.201.0");  // the next range
  ipam.release("ns/b");
  ipam.release("ns/f");
  EXPECT_EQ(assign(ipam, service("h")), "198.18.200.1");
  EXPECT_EQ(assign(ipam, service("i")), "198.18.200.7");
  EXPECT_EQ(assign(ipam, service("j")), "198.18.201.1");
}

// usage() and take_changed() are kept as addresses come and go (the provider's report is
// refreshed from them after every turn, in O(what changed)).
TEST(Ipam, UsageAndChangesFollowEveryTakeAndRelease) {
  AddressPool p = pool("p", {"198.18.200.0/29"});
  p.avoid = {range("198.18.200.7")};
  Ipam ipam({p, pool("q", {"2001:db8:100::/126"})});
  K8sService web = service("web", {"IPv4"}, 80);
  web.meta.annotations[std::string(kAllowSharedIpAnnotation)] = "front";
  K8sService tls = service("tls", {"IPv4"}, 443);
  tls.meta.annotations[std::string(kAllowSharedIpAnnotation)] = "front";
  EXPECT_EQ(assign(ipam, web), "198.18.200.0");
  EXPECT_EQ(assign(ipam, tls), "198.18.200.0");
  EXPECT_EQ(assign(ipam, service("a")), "198.18.200.1");
  EXPECT_EQ(assign(ipam, service("six", {"IPv6"})), "2001:db8:100::");
  const auto used = [&] {
    std::vector<uint64_t> out;
    for (const auto& u : ipam.usage()) out.push_back(u.used);
    return out;
  };
  EXPECT_EQ(used(), (std::vector<uint64_t>{2, 1}));  // a shared address counts once
  EXPECT_EQ(ipam.usage()[0].size, 7.0);
  EXPECT_EQ(ipam.take_changed(), (std::set<std::string>{"ns/a", "ns/six", "ns/tls", "ns/web"}));
  EXPECT_TRUE(ipam.take_changed().empty());
  EXPECT_EQ(assign(ipam, service("a")), "198.18.200.1");  // kept: nothing changed
  EXPECT_TRUE(ipam.take_changed().empty());
  ipam.release("ns/web");  // the address stays with tls
  EXPECT_EQ(used(), (std::vector<uint64_t>{2, 1}));
  ipam.release("ns/tls");
  ipam.release("ns/six");
  EXPECT_EQ(used(), (std::vector<uint64_t>{1, 0}));
  ASSERT_TRUE(ipam.restore(request(service("back")), {ip("198.18.200.6")}));
  EXPECT_EQ(used(), (std::vector<uint64_t>{2, 0}));
  EXPECT_EQ(ipam.take_changed(), (std::set<std::string>{"ns/back", "ns/six", "ns/tls", "ns/web"}));
}

TEST(Ipam, RequestedAddressesMustLieInAPoolTheServiceMayUseAndBeFree) {
  AddressPool manual = pool("manual", {"198.18.220.0/24"}, false);
  Ipam ipam({pool("auto", {"198.18.200.0/24"}), manual});
  K8sService a = service("a");
  a.meta.annotations[std::string(kLoadBalancerIpsAnnotation)] = "198.18.200.77";
  EXPECT_EQ(assign(ipam, a), "198.18.200.77");
  EXPECT_EQ(ipam.find("ns/a")->why, "requested");
  // spec.loadBalancerIP (deprecated) works the same; a pool without auto_assign serves an
  // address asked for.
  K8sService b = service("b");
  b.load_balancer_ip = "198.18.220.5";
  EXPECT_EQ(assign(ipam, b), "198.18.220.5");
  // Taken by another Service without a sharing key.
  K8sService c = service("c", {"IPv4"}, 443);
  c.load_balancer_ip = "198.18.200.77";
  EXPECT_EQ(assign(ipam, c), "refused: taken");
  c.load_balancer_ip = "198.18.230.1";
  EXPECT_EQ(assign(ipam, c), "refused: outside_pools");
  // Both ways at once, a bad address, two of a family, a family the Service lacks: refused.
  K8sService d = service("d");
  d.load_balancer_ip = "198.18.200.9";
  d.meta.annotations[std::string(kLoadBalancerIpsAnnotation)] = "198.18.200.9";
  EXPECT_TRUE(std::holds_alternative<Refused>(request_of(d)));
  d.load_balancer_ip.clear();
  d.meta.annotations[std::string(kLoadBalancerIpsAnnotation)] = "198.18.200.9, 198.18.200.10";
  EXPECT_TRUE(std::holds_alternative<Refused>(request_of(d)));
  d.meta.annotations[std::string(kLoadBalancerIpsAnnotation)] = "2001:db8::9";
  EXPECT_TRUE(std::holds_alternative<Refused>(request_of(d)));
  d.meta.annotations[std::string(kLoadBalancerIpsAnnotation)] = "not-an-ip";
  EXPECT_TRUE(std::holds_alternative<Refused>(request_of(d)));
  // Auto-assignment skips a pool without auto_assign.
  Ipam only_manual({manual});
  EXPECT_EQ(assign(only_manual, service("e")), "refused: not_allowed");
}

TEST(Ipam, AnAddressIsSharedOnlyUnderOneKeyAndWithoutACommonPort) {
  Ipam ipam({pool("p", {"198.18.200.0/24"})});
  K8sService web = service("web", {"IPv4"}, 80);
  web.meta.annotations[std::string(kAllowSharedIpAnnotation)] = "front";
  K8sService tls = service("tls", {"IPv4"}, 443);
  tls.meta.annotations[std::string(kAllowSharedIpAnnotation)] = "front";
  EXPECT_EQ(assign(ipam, web), "198.18.200.0");
  EXPECT_EQ(assign(ipam, tls), "198.18.200.0");  // its key's address, before a fresh one
  // The same key but a port already used there: an address of its own.
  K8sService web2 = service("web2", {"IPv4"}, 80);
  web2.meta.annotations[std::string(kAllowSharedIpAnnotation)] = "front";
  EXPECT_EQ(assign(ipam, web2), "198.18.200.1");
  // Asked for, with another key or none: refused.
  K8sService other = service("other", {"IPv4"}, 8080);
  other.meta.annotations[std::string(kAllowSharedIpAnnotation)] = "back";
  other.load_balancer_ip = "198.18.200.0";
  EXPECT_EQ(assign(ipam, other), "refused: taken");
  // Released by one user, the address stays with the other.
  ipam.release("ns/web");
  EXPECT_EQ(assign(ipam, service("fresh")), "198.18.200.2");
  EXPECT_EQ(ipam.find("ns/tls")->addrs[0], ip("198.18.200.0"));
}

TEST(Ipam, PoolsServeTheirNamespacesAndLabelsAndAvoidWhatTheySay) {
  AddressPool team = pool("team", {"198.18.200.0/29"});
  team.namespaces = {"team"};
  team.service_labels = {{"tier", "edge"}};
  team.avoid = {range("198.18.200.0-198.18.200.1")};
  Ipam ipam({team, pool("rest", {"198.18.201.0/24"})});
  K8sService s = service("s");
  EXPECT_EQ(assign(ipam, s), "198.18.201.0");  // namespace ns: not team's
  K8sService t = service("t");
  t.meta.ns = "team";
  EXPECT_EQ(assign(ipam, t), "198.18.201.1");  // no tier=edge label
  t.meta.name = "t2";
  t.meta.labels["tier"] = "edge";
  EXPECT_EQ(assign(ipam, t), "198.18.200.2");  // .0 and .1 avoided
  // Asked for by name, the pool must exist and serve the Service.
  K8sService named = service("named");
  named.meta.annotations[std::string(kAddressPoolAnnotation)] = "team";
  EXPECT_EQ(assign(ipam, named), "refused: not_allowed");
  named.meta.annotations[std::string(kAddressPoolAnnotation)] = "nowhere";
  EXPECT_EQ(assign(ipam, named), "refused: unknown_pool");
  named.meta.annotations[std::string(kAddressPoolAnnotation)] = "rest";
  EXPECT_EQ(assign(ipam, named), "198.18.201.2");
  EXPECT_EQ(ipam.usage()[0].size, 6.0);  // /29 minus the two avoided
}

// "should preserve the same external ip after controller restart": what the statuses say is
// taken back first, and new Services get what is left, so nothing moves.
TEST(Ipam, ARestartKeepsEveryAddressItStillMay) {
  const std::vector<AddressPool> pools = {pool("p", {"198.18.200.0/30"})};
  Ipam before(pools);
  EXPECT_EQ(assign(before, service("a")), "198.18.200.0");
  EXPECT_EQ(assign(before, service("b")), "198.18.200.1");
  before.release("ns/a");
  EXPECT_EQ(assign(before, service("c")), "198.18.200.0");

  Ipam after(pools);
  EXPECT_TRUE(after.restore(request(service("b")), {ip("198.18.200.1")}));
  EXPECT_TRUE(after.restore(request(service("c")), {ip("198.18.200.0")}));
  EXPECT_EQ(after.find("ns/b")->why, "kept");
  EXPECT_EQ(assign(after, service("b")), "198.18.200.1");  // unchanged
  EXPECT_EQ(assign(after, service("d")), "198.18.200.2");  // what is left
  // A status naming an address outside every pool (the pool was deleted) is not taken back:
  // the Service is assigned anew ("reallocates svc after deleting a pool").
  EXPECT_FALSE(after.restore(request(service("e")), {ip("198.18.230.1")}));
  EXPECT_EQ(assign(after, service("e")), "198.18.200.3");
  // Two Services claiming one address without a common key: the second is not taken back.
  Ipam twice(pools);
  EXPECT_TRUE(twice.restore(request(service("x")), {ip("198.18.200.2")}));
  EXPECT_FALSE(twice.restore(request(service("y")), {ip("198.18.200.2")}));
}

TEST(Ipam, AChangedRequestMovesTheServiceAndFreesWhatItHad) {
  Ipam ipam({pool("p", {"198.18.200.0/24"})});
  K8sService s = service("s");
  EXPECT_EQ(assign(ipam, s), "198.18.200.0");
  s.load_balancer_ip = "198.18.200.50";
  EXPECT_EQ(assign(ipam, s), "198.18.200.50");
  EXPECT_EQ(assign(ipam, service("t")), "198.18.200.0");  // given up by s
  // From single-stack to dual-stack without a pool of both families: refused, nothing held.
  K8sService dual = service("s", {"IPv4", "IPv6"});
  EXPECT_EQ(assign(ipam, dual), "refused: not_allowed");
  EXPECT_EQ(ipam.find("ns/s"), nullptr);
}

}  // namespace
}  // namespace magline::k8s
