// What Magline announces over BGP, and the BIRD configuration that says so (control/announce.hpp).
#include "control/announce.hpp"
#include "control/announcer.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace magline::control {
namespace {

dp::IpAddr ip(const char* text) { return *dp::parse_ip(text); }

std::shared_ptr<const dp::ServiceState> service(
    const std::string& name, std::vector<dp::Frontend> frontends, size_t backends) {
  dp::Service s;
  s.name = name;
  s.frontends = std::move(frontends);
  for (size_t i = 0; i < backends; ++i) {
    s.backends.push_back({ip("198.18.1.10"), uint16_t(8080 + i)});
  }
  s.table_size = 251;
  auto built = dp::ServiceState::build(std::move(s));
  EXPECT_TRUE(built.ok());
  return std::move(built).value();
}

dp::Frontend lb(const char* addr, uint16_t port) {
  return {ip(addr), port, dp::Protocol::tcp, dp::FrontendKind::load_balancer};
}

std::vector<std::string> strings(const std::vector<dp::IpAddr>& addrs) {
  std::vector<std::string> out;
  for (const dp::IpAddr& a : addrs) out.push_back(dp::to_string(a));
  return out;
}

TEST(Announce, LoadBalancerAddressesWithAUsableBackend) {
  dp::Frontend node_port = lb("198.18.0.2", 30080);
  node_port.kind = dp::FrontendKind::node_port;
  dp::Frontend external = lb("198.18.200.1", 80);
  external.kind = dp::FrontendKind::external_ip;
  const dp::ServiceList services = {
      service("a/web:http", {lb("198.18.100.1", 80), node_port}, 2),
      service("a/web6:http", {lb("2001:db8:100::1", 80)}, 1),
      service("a/empty:http", {lb("198.18.100.2", 80)}, 0),
      // One address, two services: announced while either can serve.
      service("a/shared:http", {lb("198.18.100.3", 80)}, 0),
      service("a/shared:dns", {lb("198.18.100.3", 53)}, 1),
      service("a/ext:http", {external}, 1),
  };
  // Sorted as IpAddr sorts: by family (IPv6 first), then by address.
  EXPECT_EQ(strings(announced_addresses(services, true)),
            (std::vector<std::string>{"2001:db8:100::1", "198.18.100.1", "198.18.100.3"}));
  EXPECT_EQ(strings(announced_addresses(services, false)),
            (std::vector<std::string>{"2001:db8:100::1", "198.18.100.1", "198.18.100.2",
                                      "198.18.100.3"}));
  EXPECT_TRUE(announced_addresses({}, true).empty());
}

cfg::BgpConfig bgp() {
  cfg::BgpConfig b;
  b.enabled = true;
  b.local_as = 65001;
  b.router_id = ip("198.18.0.2");
  b.peers.push_back({ip("198.18.0.254"), 65000, "", 9, false});
  b.peers.push_back({ip("2001:db8::fe"), 65000, "s3cret", 90, true});
  b.communities = {{65000, 100}, {65000, 200}};
  b.next_hop_v6 = ip("2001:db8::2");
  return b;
}

TEST(Announce, BirdConfiguration) {
  const std::vector<dp::IpAddr> addrs = {ip("198.18.100.1"), ip("2001:db8:100::1")};
  EXPECT_EQ(bird_config(bgp(), addrs),
            R"(# Written by Magline from the bgp section of its configuration: edits here are lost.
# docs/announce.md

router id 198.18.0.2;

protocol device {
}

protocol static magline4 {
  ipv4;
  route 198.18.100.1/32 blackhole;
}

protocol static magline6 {
  ipv6;
  route 2001:db8:100::1/128 blackhole;
}

filter magline_export {
  if proto != "magline4" && proto != "magline6" then reject;
  bgp_community.add((65000, 100));
  bgp_community.add((65000, 200));
  accept;
}

protocol bgp peer_198_18_0_254 {
  local as 65001;
  neighbor 198.18.0.254 as 65000;
  hold time 9;
  ipv4 {
    import none;
    export filter magline_export;
  };
  ipv6 {
    import none;
    export filter magline_export;
    next hop address 2001:db8::2;
  };
}

protocol bgp peer_2001_db8__fe {
  local as 65001;
  neighbor 2001:db8::fe as 65000;
  hold time 90;
  multihop;
  password "s3cret";
  ipv6 {
    import none;
    export filter magline_export;
    next hop address 2001:db8::2;
  };
}
)");
}

// BIRD itself accepts what Magline writes (`bird -p`: parse only, no root, no daemon), with
// and without addresses.
TEST(Announce, BirdParsesTheConfiguration) {
  const char* bird = "/usr/sbin/bird";
  if (::access(bird, X_OK) != 0) GTEST_SKIP() << bird << " is not installed (apt install bird2)";
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("magline-announce-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const auto& addrs : {std::vector<dp::IpAddr>{},
                            std::vector<dp::IpAddr>{ip("198.18.100.1"), ip("2001:db8:100::1")}}) {
    cfg::BgpConfig b = bgp();
    b.peers[0].hold_time_s = 0;
    b.next_hop_v4 = ip("198.18.0.2");
    const std::filesystem::path conf = dir / "bird.conf";
    std::ofstream(conf) << bird_config(b, addrs);
    const std::string cmd = std::string(bird) + " -p -c " + conf.string() + " 2>&1";
    std::FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string said;
    char buf[256];
    while (std::fgets(buf, sizeof buf, p) != nullptr) said += buf;
    EXPECT_EQ(::pclose(p), 0) << said << "\n" << bird_config(b, addrs);
  }
  std::filesystem::remove_all(dir);
}

// The data plane as BGP needs it: every link up, every worker's loop turning.
TEST(Announce, DataplaneHealth) {
  DataplaneHealth h(1000);
  const std::vector<std::string> names = {"lan0", "lan1"};
  h.turn(0, {5, 7}, {false, false}, {true, true}, names);
  EXPECT_TRUE(h.healthy());
  h.turn(900, {5, 8}, {false, false}, {true, true}, names);
  EXPECT_TRUE(h.healthy());
  h.turn(1001, {5, 8}, {false, false}, {true, true}, names);  // worker 0 still since 0
  EXPECT_EQ(h.why(), "worker 0 stalled for 1001 ms");
  h.turn(1002, {6, 8}, {false, false}, {true, true}, names);
  EXPECT_TRUE(h.healthy());
  h.turn(1003, {6, 8}, {false, false}, {true, false}, names);
  EXPECT_EQ(h.why(), "port lan1: link down");
  h.turn(1004, {6, 8}, {false, true}, {true, true}, names);
  EXPECT_EQ(h.why(), "worker 1 failed");
  // Progress seen while a link was down still counts.
  h.turn(1500, {7, 9}, {false, false}, {false, true}, names);
  h.turn(2400, {7, 9}, {false, false}, {true, true}, names);
  EXPECT_TRUE(h.healthy());
}

TEST(Announce, StateAndMetrics) {
  AnnouncerReport r;
  r.bird_reachable = true;
  r.in_effect = true;
  r.announced = {ip("198.18.100.1")};
  r.sessions.push_back({"peer_198_18_0_254", "BGP", "---", "up", "01:02:03.000", "Established"});
  r.sessions.push_back({"peer_198_18_0_253", "BGP", "---", "start", "01:02:03.000", "Active"});
  r.configures = 3;
  const nlohmann::ordered_json j = bgp_state_json(r);
  EXPECT_EQ(j["announced"], nlohmann::ordered_json::array({"198.18.100.1"}));
  EXPECT_TRUE(j["withdrawn"].is_null());
  EXPECT_EQ(j["sessions"][0]["info"], "Established");
  Exposition e;
  bgp_metrics(e, r);
  const std::string text = e.text();
  EXPECT_NE(text.find("magline_bgp_session_up{peer=\"peer_198_18_0_254\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("magline_bgp_session_up{peer=\"peer_198_18_0_253\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("magline_bgp_announced_addresses 1\n"), std::string::npos);
  EXPECT_NE(text.find("magline_bgp_configures_total{outcome=\"ok\"} 3\n"), std::string::npos);
}

}  // namespace
}  // namespace magline::control
