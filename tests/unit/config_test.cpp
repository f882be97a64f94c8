#include "config/config.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/config_cases.hpp"

namespace magline::cfg {
namespace {

using namespace config_cases;

// ---------------------------------------------------------------------------------------------
// Valid files and what they parse to.

struct GoodCase {
  const char* name;
  std::string text;
  std::string expected;  // dump_services() or dump_globals()
};

TEST(Config, ServicesParseToTheExpectedConfig) {
  const GoodCase cases[] = {
      {.name = "defaults",
       .text = services(R"({"name": "a/b:c", "frontends": [{"address": "198.18.100.1",
                                                              "port": 80}]})"),
       .expected = "service a/b:c v4 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend load_balancer 198.18.100.1 80 tcp\n"},
      {.name = "every field",
       .text = services(R"({
          "name": "demo/web:http", "mode": "dnat",
          "frontends": [
            {"kind": "load_balancer", "address": "198.18.100.1", "port": 80, "protocol": "tcp"},
            {"kind": "external_ip", "address": "198.18.100.2", "port": 8080, "protocol": "sctp"},
            {"kind": "node_port", "port": 30080, "protocol": "udp"}],
          "backends": [
            {"address": "198.18.1.10", "port": 8080, "weight": 3, "state": "ready"},
            {"address": "198.18.1.11", "port": 8080, "weight": 0},
            {"address": "198.18.1.12", "port": 8081, "state": "terminating"}],
          "session_affinity": {"type": "client_ip", "timeout_s": 600},
          "source_ranges": ["198.18.0.0/16", "198.19.1.128/25", "0.0.0.0/0"],
          "no_backends": "drop",
          "table_size": 251,
          "new_connection_limit": {"rate": 1000, "burst": 50}})"),
       .expected = "service demo/web:http v4 dnat affinity=client_ip/600 no_backends=drop "
                   "table=251 limit=1000/s burst=50\n"
                   "  frontend load_balancer 198.18.100.1 80 tcp\n"
                   "  frontend external_ip 198.18.100.2 8080 sctp\n"
                   "  frontend node_port * 30080 udp\n"
                   "  backend 198.18.1.10:8080 weight=3 ready\n"
                   "  backend 198.18.1.11:8080 weight=0 ready\n"
                   "  backend 198.18.1.12:8081 weight=1 terminating\n"
                   "  source 198.18.0.0/16\n"
                   "  source 198.19.1.128/25\n"
                   "  source 0.0.0.0/0\n"},
      {.name = "IPv6",
       .text = services(R"({"name": "demo/web6:http",
          "frontends": [{"address": "2001:db8:100::1", "port": 80}],
          "backends": [{"address": "2001:db8:1::10", "port": 8080}],
          "source_ranges": ["2001:db8::/32", "::/0"]})"),
       .expected = "service demo/web6:http v6 full_nat affinity=none no_backends=reject "
                   "table=default\n"
                   "  frontend load_balancer 2001:db8:100::1 80 tcp\n"
                   "  backend [2001:db8:1::10]:8080 weight=1 ready\n"
                   "  source 2001:db8::/32\n"
                   "  source ::/0\n"},
      {.name = "family from the backends when only node_port frontends",
       .text = services(R"({"name": "n", "frontends": [{"kind": "node_port", "port": 30000}],
                           "backends": [{"address": "2001:db8:1::10", "port": 80}]})"),
       .expected = "service n v6 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend node_port * 30000 tcp\n"
                   "  backend [2001:db8:1::10]:80 weight=1 ready\n"},
      {.name = "client_ip affinity takes the Kubernetes default timeout",
       .text = services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 1}],
                           "session_affinity": {"type": "client_ip"}})"),
       .expected = "service a v4 full_nat affinity=client_ip/10800 no_backends=reject "
                   "table=default\n"
                   "  frontend load_balancer 198.18.100.1 1 tcp\n"},
      {.name = "a new-connection limit's burst defaults to the rate",
       .text = services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 1}],
                           "new_connection_limit": {"rate": 100000000}})"),
       .expected = "service a v4 full_nat affinity=none no_backends=reject table=default "
                   "limit=100000000/s burst=default\n"
                   "  frontend load_balancer 198.18.100.1 1 tcp\n"},
      {.name = "explicit none affinity",
       .text = services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 1}],
                           "session_affinity": {"type": "none"}})"),
       .expected = "service a v4 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend load_balancer 198.18.100.1 1 tcp\n"},
      {.name = "bounds of every range",
       .text = services(R"({"name": "a", "mode": "dsr_l2",
          "frontends": [{"address": "198.18.100.1", "port": 65535}],
          "backends": [{"address": "198.18.1.1", "port": 65535, "weight": 65535},
                       {"address": "198.18.1.2", "port": 65535, "weight": 0}],
          "session_affinity": {"type": "client_ip", "timeout_s": 86400},
          "table_size": 16777213}, {"name": "b",
          "frontends": [{"address": "198.18.100.1", "port": 1}],
          "backends": [{"address": "198.18.1.1", "port": 1}],
          "session_affinity": {"type": "client_ip", "timeout_s": 1},
          "table_size": 3})"),
       .expected = "service a v4 dsr_l2 affinity=client_ip/86400 no_backends=reject "
                   "table=16777213\n"
                   "  frontend load_balancer 198.18.100.1 65535 tcp\n"
                   "  backend 198.18.1.1:65535 weight=65535 ready\n"
                   "  backend 198.18.1.2:65535 weight=0 ready\n"
                   "service b v4 full_nat affinity=client_ip/1 no_backends=reject table=3\n"
                   "  frontend load_balancer 198.18.100.1 1 tcp\n"
                   "  backend 198.18.1.1:1 weight=1 ready\n"},
      {.name = "same address and port on two protocols, and the same port on two addresses",
       .text = services(R"({"name": "a", "frontends": [
          {"address": "198.18.100.1", "port": 53, "protocol": "udp"},
          {"address": "198.18.100.1", "port": 53, "protocol": "tcp"},
          {"address": "198.18.100.2", "port": 53, "protocol": "udp"}]})"),
       .expected = "service a v4 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend load_balancer 198.18.100.1 53 udp\n"
                   "  frontend load_balancer 198.18.100.1 53 tcp\n"
                   "  frontend load_balancer 198.18.100.2 53 udp\n"},
      {.name = "the same backend in two services, an empty backend list",
       .text = services(R"(
          {"name": "a", "frontends": [{"address": "198.18.100.1", "port": 80}],
           "backends": [{"address": "198.18.1.1", "port": 80}]},
          {"name": "b", "frontends": [{"address": "198.18.100.2", "port": 80}],
           "backends": [{"address": "198.18.1.1", "port": 80}]},
          {"name": "c", "frontends": [{"address": "198.18.100.3", "port": 80}], "backends": []})"),
       .expected = "service a v4 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend load_balancer 198.18.100.1 80 tcp\n"
                   "  backend 198.18.1.1:80 weight=1 ready\n"
                   "service b v4 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend load_balancer 198.18.100.2 80 tcp\n"
                   "  backend 198.18.1.1:80 weight=1 ready\n"
                   "service c v4 full_nat affinity=none no_backends=reject table=default\n"
                   "  frontend load_balancer 198.18.100.3 80 tcp\n"},
      {.name = "no services", .text = services(""), .expected = ""},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(dump_services(parse_ok(c.text)), c.expected);
  }
}

TEST(Config, GlobalSectionsParseToTheExpectedConfig) {
  const GoodCase cases[] = {
      {.name = "empty file: every default",
       .text = "{}",
       .expected = "node\nmaglev 65537\nflow_table 1048576 syn=30000 established=7440000 "
                   "closing=60000 udp=120000 other=120000\n"},
      {.name = "empty sections",
       .text = R"({"node": {}, "maglev": {}, "flow_table": {"timeouts_ms": {}}, "services": []})",
       .expected = "node\nmaglev 65537\nflow_table 1048576 syn=30000 established=7440000 "
                   "closing=60000 udp=120000 other=120000\n"},
      {.name = "every field",
       .text = R"({"node": {"addresses": ["198.18.0.1", "2001:db8::1", "198.18.0.2"]},
                   "maglev": {"table_size": 251},
                   "flow_table": {"capacity": 4096, "timeouts_ms": {"tcp_syn": 1000,
                      "tcp_established": 2000, "tcp_closing": 3000, "udp": 4000,
                      "other": 5000}}})",
       .expected = "node 198.18.0.1 2001:db8::1 198.18.0.2\nmaglev 251\nflow_table 4096 "
                   "syn=1000 established=2000 closing=3000 udp=4000 other=5000\n"},
      {.name = "some timeouts, range bounds",
       .text = R"({"maglev": {"table_size": 3}, "flow_table": {"capacity": 16,
                   "timeouts_ms": {"udp": 1, "other": 86400000}}})",
       .expected = "node\nmaglev 3\nflow_table 16 syn=30000 established=7440000 "
                   "closing=60000 udp=1 other=86400000\n"},
      {.name = "largest capacity and table",
       .text = R"({"maglev": {"table_size": 16777213},
                   "flow_table": {"capacity": 2147483648}})",
       .expected = "node\nmaglev 16777213\nflow_table 2147483648 syn=30000 "
                   "established=7440000 closing=60000 udp=120000 other=120000\n"},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(dump_globals(parse_ok(c.text)), c.expected);
  }
}

// Every form of device `run` can open: PCI addresses (a domain of more than four digits too,
// devargs after ','), each of DPDK's virtual network drivers and their aliases.
TEST(Config, DevicesRunCanOpen) {
  for (const char* device : {"0000:03:00.0",
                             "10000:e1:1f.7",
                             "0000:af:00.1,representor=[0-3]",
                             "net_af_packet0,iface=veth0",
                             "net_af_xdp0,iface=eth1",
                             "net_bonding0,mode=4,member=0000:03:00.0",
                             "net_failsafe0",
                             "net_memif0,role=server",
                             "net_null0",
                             "net_pcap0,rx_pcap=in.pcap",
                             "net_ring_a",
                             "net_softnic0",
                             "net_tap0,iface=tap0",
                             "net_tun0",
                             "net_vdev_netvsc0",
                             "net_vhost0,iface=/s",
                             "net_virtio_user0,path=/dev/vhost-net",
                             "eth_null0",
                             "eth_pcap0",
                             "virtio_user0"}) {
    const std::string text =
        R"({"dataplane": {"ports": [{"name": "p", "device": ")" + std::string(device) + R"("}]}})";
    EXPECT_EQ(parse_ok(text).dataplane.ports.at(0).device, device);
  }
}

// Neither in_cluster nor kubeconfig: kubectl's default, found when it is read
// (control/k8s_feed.hpp), not an error.
TEST(Config, KubernetesWithoutAKubeconfigTakesKubectlsDefault) {
  const Config c = parse_ok(R"({"kubernetes": {}})");
  EXPECT_TRUE(c.kubernetes.enabled);
  EXPECT_FALSE(c.kubernetes.in_cluster);
  EXPECT_EQ(c.kubernetes.kubeconfig, "");
}

TEST(Config, RecordsItsSource) {
  EXPECT_EQ(parse_ok("{}").source, "t.json");
}

// ---------------------------------------------------------------------------------------------
// The dataplane and admin sections.

TEST(Dataplane, ParsesEveryFieldAndDefaultsNodeAddressesToPortAddresses) {
  const Config c = parse_ok(R"({"dataplane": {
      "main_core": 0, "worker_cores": [1, 2], "memory_mb": 256, "hugepages": false,
      "eal_args": ["--log-level=*:info"], "file_prefix": "edge_1", "telemetry": false,
      "capture": false, "burst": 16, "idle_sleep_max_us": 100, "idle_after_us": 0,
      "rx_descriptors": 512, "tx_descriptors": 256, "mbufs": 8191,
      "ports": [{"name": "lan0", "device": "net_af_packet0,iface=veth0",
                 "mac": "02:00:00:00:00:aa", "addresses": ["198.18.0.1/16", "2001:db8::1/64"],
                 "mtu": 9000, "promiscuous": true, "kernel_interface": "mgl0"},
                {"name": "lan1", "device": "0000:03:00.0"}],
      "exception_rate": 2500, "dnat_replies": "last_hop",
      "routes": [{"to": "203.0.113.0/24", "via": "198.18.0.254", "port": "lan0"}],
      "snat_ports": {"low": 20000, "high": 29999},
      "encapsulation": {"source_v4": "198.18.250.0/24", "source_v6": "2001:db8:fa::/64",
                        "gue_port": 7777, "mtu": 1400, "fragment": false}},
    "admin": {"address": "::1", "port": 9200}})");
  const DataplaneConfig& d = c.dataplane;
  EXPECT_EQ(d.worker_cores, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(d.memory_mb, 256u);
  EXPECT_FALSE(d.hugepages);
  EXPECT_EQ(d.eal_args, (std::vector<std::string>{"--log-level=*:info"}));
  EXPECT_EQ(d.file_prefix, "edge_1");
  EXPECT_FALSE(d.telemetry);
  EXPECT_FALSE(d.capture);
  EXPECT_EQ(d.burst, 16);
  EXPECT_EQ(d.idle_sleep_max_us, 100u);
  EXPECT_EQ(d.idle_after_us, 0u);
  EXPECT_EQ(d.mbufs, 8191u);
  ASSERT_EQ(d.ports.size(), 2u);
  EXPECT_EQ(dp::to_string(*d.ports[0].mac), "02:00:00:00:00:aa");
  EXPECT_EQ(d.ports[0].addresses[0].prefix_len, 16);
  EXPECT_EQ(dp::to_string(d.ports[0].addresses[0].addr), "198.18.0.1");
  EXPECT_EQ(d.ports[0].mtu, 9000);
  EXPECT_TRUE(d.ports[0].promiscuous);
  EXPECT_EQ(d.ports[0].kernel_interface, "mgl0");
  EXPECT_EQ(d.ports[1].kernel_interface, "");
  EXPECT_EQ(d.exception_rate, 2500u);
  EXPECT_EQ(d.dnat_replies, DnatReplies::last_hop);
  EXPECT_EQ(parse_ok("{}").dataplane.dnat_replies, DnatReplies::routed);
  EXPECT_FALSE(d.ports[1].mac);
  EXPECT_EQ(d.snat_port_low, 20000);
  EXPECT_EQ(c.admin.address, "::1");
  EXPECT_EQ(c.admin.port, 9200);
  // No node.addresses: NodePorts listen on every port address.
  ASSERT_EQ(c.node_addresses.size(), 2u);
  EXPECT_EQ(dp::to_string(c.node_addresses[1]), "2001:db8::1");

  const dp::Node node = node_of(c);
  ASSERT_EQ(node.ports.size(), 2u);
  EXPECT_EQ(node.ports[1].id, 1);
  EXPECT_TRUE(node.ports[0].kernel);
  EXPECT_FALSE(node.ports[1].kernel);
  ASSERT_EQ(node.routes.size(), 1u);
  EXPECT_EQ(node.routes[0].port, 0);
  EXPECT_EQ(dp::to_string(node.resolve(*dp::parse_ip("203.0.113.7"))->ip), "198.18.0.254");
  EXPECT_EQ(dp::to_string(*node.encap.source_v4), "198.18.250.0/24");
  EXPECT_EQ(dp::to_string(*node.encap.source_v6), "2001:db8:fa::/64");
  EXPECT_EQ(node.encap.gue_port, 7777);
  EXPECT_EQ(node.encap.mtu, 1400);
  EXPECT_FALSE(node.encap.fragment);
}

// IPIP and GUE backends are tunnel endpoints: of the other family than the frontends too.
TEST(Dataplane, EncapsulatingServicesMayTunnelToTheOtherFamily) {
  const Config c = parse_ok(R"({"services": [
      {"name": "a", "mode": "ipip", "frontends": [{"address": "198.18.100.1", "port": 80}],
       "backends": [{"address": "2001:db8:200::7", "port": 80},
                    {"address": "2001:db8:200::8", "port": 80}]},
      {"name": "b", "mode": "gue", "frontends": [{"address": "2001:db8:100::1", "port": 53,
                                                  "protocol": "udp"}],
       "backends": [{"address": "198.18.200.7", "port": 53}]}]})");
  const std::vector<dp::Service> s = services_of(c);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].mode, dp::ForwardMode::ipip);
  EXPECT_EQ(s[1].mode, dp::ForwardMode::gue);
  EXPECT_EQ(dp::to_string(s[0].backends[1].addr), "2001:db8:200::8");
}

TEST(Dataplane, Defaults) {
  const Config c = parse_ok("{}");
  EXPECT_EQ(c.dataplane.main_core, 0u);
  EXPECT_EQ(c.dataplane.worker_cores, (std::vector<uint32_t>{1}));
  EXPECT_TRUE(c.dataplane.ports.empty());
  EXPECT_EQ(c.dataplane.encapsulation, dp::EncapSettings{});
  EXPECT_EQ(node_of(c).encap.gue_port, 6080);
  EXPECT_EQ(node_of(c).encap.mtu, 0);  // the egress port's
  EXPECT_TRUE(node_of(c).encap.fragment);
  EXPECT_EQ(c.dataplane.file_prefix, "magline");
  EXPECT_TRUE(c.dataplane.telemetry);
  EXPECT_FALSE(c.dataplane.capture);
  EXPECT_EQ(c.admin.address, "127.0.0.1");
  EXPECT_EQ(c.admin.port, 9100);
  EXPECT_TRUE(c.admin.enabled);
}

TEST(Kubernetes, ParsesEveryFieldAndIsOffWhenAbsent) {
  EXPECT_FALSE(parse_ok("{}").kubernetes.enabled);
  const Config c = parse_ok(R"({"kubernetes": {
    "kubeconfig": "/etc/magline/kubeconfig", "context": "edge", "namespace": "prod",
    "proxy_name": "magline", "load_balancer_class": "magline.io/lb", "node_name": "edge-1",
    "zone": "zone-a", "table_size": 4093, "coalesce_ms": 5, "page_limit": 100,
    "default_load_balancer_class": true, "targets": "nodes"}})");
  const KubernetesConfig& k = c.kubernetes;
  EXPECT_TRUE(k.enabled);
  EXPECT_FALSE(k.in_cluster);
  EXPECT_EQ(k.kubeconfig, "/etc/magline/kubeconfig");
  EXPECT_EQ(k.context, "edge");
  EXPECT_EQ(k.namespace_, "prod");
  EXPECT_EQ(k.proxy_name, "magline");
  EXPECT_EQ(k.load_balancer_class, "magline.io/lb");
  EXPECT_TRUE(k.default_load_balancer_class);
  EXPECT_EQ(k.node_name, "edge-1");
  EXPECT_EQ(k.zone, "zone-a");
  EXPECT_EQ(k.table_size, 4093u);
  EXPECT_EQ(k.coalesce_ms, 5u);
  EXPECT_EQ(k.page_limit, 100u);
  EXPECT_EQ(k.targets, K8sTargets::nodes);
  const KubernetesConfig d = parse_ok(R"({"kubernetes": {"in_cluster": true}})").kubernetes;
  EXPECT_TRUE(d.enabled && d.in_cluster);
  EXPECT_FALSE(d.default_load_balancer_class);
  EXPECT_EQ(d.table_size, 16381u);
  EXPECT_EQ(d.min_table_size, 4093u);
  EXPECT_EQ(d.coalesce_ms, 2u);
  EXPECT_EQ(d.page_limit, 500u);
  EXPECT_EQ(d.targets, K8sTargets::pods);
  EXPECT_FALSE(parse_ok(R"({"kubernetes": {"enabled": false}})").kubernetes.enabled);
  // Per-Service table sizes: 0 turns them off; a small table_size alone lowers the minimum.
  EXPECT_EQ(parse_ok(R"({"kubernetes": {"in_cluster": true, "min_table_size": 0}})")
                .kubernetes.min_table_size, 0u);
  EXPECT_EQ(parse_ok(R"({"kubernetes": {"in_cluster": true, "min_table_size": 1021}})")
                .kubernetes.min_table_size, 1021u);
  EXPECT_EQ(parse_ok(R"({"kubernetes": {"in_cluster": true, "table_size": 251}})")
                .kubernetes.min_table_size, 251u);
}

TEST(Kubernetes, HealthChecks) {
  const HealthChecksConfig d =
      parse_ok(R"({"kubernetes": {"in_cluster": true}})").kubernetes.health_checks;
  EXPECT_EQ(d.interval_ms, 5000u);
  EXPECT_EQ(d.timeout_ms, 2000u);
  EXPECT_EQ(d.healthy_threshold, 2u);
  EXPECT_EQ(d.unhealthy_threshold, 3u);
  EXPECT_EQ(d.max_in_flight, 256u);
  const HealthChecksConfig h = parse_ok(R"({"kubernetes": {"in_cluster": true,
    "health_checks": {"interval_ms": 8000, "timeout_ms": 1000, "healthy_threshold": 1,
                      "unhealthy_threshold": 5, "max_in_flight": 64}}})")
                                   .kubernetes.health_checks;
  EXPECT_EQ(h.interval_ms, 8000u);
  EXPECT_EQ(h.timeout_ms, 1000u);
  EXPECT_EQ(h.healthy_threshold, 1u);
  EXPECT_EQ(h.unhealthy_threshold, 5u);
  EXPECT_EQ(h.max_in_flight, 64u);
}

// ---------------------------------------------------------------------------------------------
// services_of(): what the data plane gets.

TEST(ServicesOf, ExpandsNodePortOverTheNodeAddressesOfTheFamily) {
  const Config c = parse_ok(R"({
      "node": {"addresses": ["198.18.0.1", "2001:db8::1", "198.18.0.2"]},
      "maglev": {"table_size": 251},
      "services": [
        {"name": "v4", "frontends": [{"address": "198.18.100.1", "port": 80},
                                     {"kind": "node_port", "port": 30080, "protocol": "udp"}],
         "backends": [{"address": "198.18.1.1", "port": 80}]},
        {"name": "v6", "frontends": [{"kind": "node_port", "port": 30080}],
         "backends": [{"address": "2001:db8:1::1", "port": 80}], "table_size": 7}]})");
  EXPECT_EQ(dump_dp_services(services_of(c)),
            "service v4 table=251\n"
            "  198.18.100.1:80/tcp load_balancer\n"
            "  198.18.0.1:30080/udp node_port\n"
            "  198.18.0.2:30080/udp node_port\n"
            "service v6 table=7\n"
            "  [2001:db8::1]:30080/tcp node_port\n");
}

// Without node.addresses, NodePorts listen on the ports' addresses, but not on link-local ones.
TEST(ServicesOf, NodePortsSkipLinkLocalPortAddresses) {
  const Config c = parse_ok(R"({"dataplane": {"ports": [{"name": "p0", "device": "net_null0",
      "addresses": ["169.254.10.1/16", "198.18.0.1/16", "fe80::1/64", "2001:db8::1/64"]}]},
      "services": [{"name": "v4", "frontends": [{"kind": "node_port", "port": 30080}],
                    "backends": [{"address": "198.18.1.1", "port": 80}], "table_size": 7}]})");
  ASSERT_EQ(c.node_addresses.size(), 2u);
  EXPECT_EQ(dp::to_string(c.node_addresses[0]), "198.18.0.1");
  EXPECT_EQ(dp::to_string(c.node_addresses[1]), "2001:db8::1");
  EXPECT_EQ(dump_dp_services(services_of(c)),
            "service v4 table=7\n"
            "  198.18.0.1:30080/tcp node_port\n");
  // The port keeps every address (ARP, neighbour discovery, full-NAT sources are its own).
  EXPECT_EQ(node_of(c).ports.at(0).addrs.size(), 4u);
}

TEST(ServicesOf, CopiesEveryOption) {
  const Config c = parse_ok(services(R"({"name": "a", "mode": "dsr_l2",
      "frontends": [{"address": "198.18.100.1", "port": 80}],
      "backends": [{"address": "198.18.1.1", "port": 80, "weight": 5, "state": "terminating"}],
      "session_affinity": {"type": "client_ip", "timeout_s": 30},
      "source_ranges": ["198.18.0.0/15"], "no_backends": "drop",
      "new_connection_limit": {"rate": 500, "burst": 20}})"));
  const auto s = services_of(c);
  ASSERT_EQ(s.size(), 1u);
  dp::Service want;
  want.name = "a";
  want.frontends = {
      {dp::IpAddr::v4(198, 18, 100, 1), 80, dp::Protocol::tcp, dp::FrontendKind::load_balancer}};
  want.backends = {{dp::IpAddr::v4(198, 18, 1, 1), 80, 5, dp::BackendState::terminating}};
  want.mode = dp::ForwardMode::dsr_l2;
  want.affinity = {.client_ip = true, .timeout_s = 30};
  want.source_ranges = {*dp::parse_prefix("198.18.0.0/15", dp::HostBits::reject)};
  want.no_backends = dp::NoBackends::drop;
  want.table_size = dp::kDefaultMaglevSize;
  want.new_connections = {.rate = 500, .burst = 20};
  EXPECT_EQ(s[0], want);
}

// ---------------------------------------------------------------------------------------------
// The provider section.

TEST(Config, ProviderPools) {
  auto r = parse_config(R"({"provider": {"pools": [
      {"name": "edge", "addresses": ["198.18.200.0/24", "2001:db8:100::/120"],
       "avoid": ["198.18.200.0", "198.18.200.255"], "namespaces": ["shop", "web"],
       "service_labels": {"tier": "edge"}},
      {"name": "manual", "addresses": ["198.18.201.10-198.18.201.20"], "auto_assign": false}]}})",
                        "t.json");
  ASSERT_TRUE(r) << r.error().message;
  const auto& pools = r->provider.pools;
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].name, "edge");
  ASSERT_EQ(pools[0].ranges.size(), 2u);
  EXPECT_EQ(dp::to_string(pools[0].ranges[1]), "2001:db8:100::-2001:db8:100::ff");
  ASSERT_EQ(pools[0].avoid.size(), 2u);
  EXPECT_EQ(dp::to_string(pools[0].avoid[1]), "198.18.200.255");
  EXPECT_EQ(pools[0].namespaces, (std::vector<std::string>{"shop", "web"}));
  EXPECT_EQ(pools[0].service_labels.at("tier"), "edge");
  EXPECT_TRUE(pools[0].auto_assign);
  EXPECT_FALSE(pools[1].auto_assign);
  EXPECT_EQ(dp::to_string(pools[1].ranges[0]), "198.18.201.10-198.18.201.20");
}

TEST(Config, ProviderElection) {
  auto defaults = parse_config(R"({"provider": {}})", "t.json");
  ASSERT_TRUE(defaults) << defaults.error().message;
  const ElectionConfig& d = defaults->provider.election;
  EXPECT_EQ(d.lease_name, "magline-provider");
  EXPECT_EQ(d.lease_namespace, "kube-system");
  EXPECT_EQ(d.identity, "");
  EXPECT_EQ(d.lease_duration_ms, 15000u);
  EXPECT_EQ(d.renew_deadline_ms, 10000u);
  EXPECT_EQ(d.retry_period_ms, 2000u);
  // Short periods (as the tests use) are accepted while their order holds.
  auto r = parse_config(R"({"provider": {"election": {"lease_name": "lb.example", "lease_namespace":
      "magline", "identity": "edge-1.example", "lease_duration_ms": 1000,
      "renew_deadline_ms": 700, "retry_period_ms": 200}}})",
                        "t.json");
  ASSERT_TRUE(r) << r.error().message;
  const ElectionConfig& e = r->provider.election;
  EXPECT_EQ(e.lease_name, "lb.example");
  EXPECT_EQ(e.lease_namespace, "magline");
  EXPECT_EQ(e.identity, "edge-1.example");
  EXPECT_EQ(e.lease_duration_ms, 1000u);
  EXPECT_EQ(e.renew_deadline_ms, 700u);
  EXPECT_EQ(e.retry_period_ms, 200u);
}

TEST(Config, ProviderL2Speaker) {
  auto off = parse_config(R"({"provider": {}})", "t.json");
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_FALSE(off->provider.l2_speaker);
  auto on = parse_config(R"({"kubernetes": {"kubeconfig": "/etc/magline/kubeconfig"},
      "provider": {"l2_speaker": true, "pools": [{"name": "edge",
      "addresses": ["198.18.200.0/24"]}]}})",
                         "t.json");
  ASSERT_TRUE(on) << on.error().message;
  EXPECT_TRUE(on->provider.l2_speaker);
  // The speaker needs the provider's node Leases.
  auto alone = parse_config(R"({"provider": {"l2_speaker": true}})", "t.json");
  ASSERT_FALSE(alone);
  EXPECT_EQ(alone.error().message,
            "t.json: provider.l2_speaker: needs the provider's node Leases: a kubernetes section "
            "and provider.pools");
}

}  // namespace
}  // namespace magline::cfg
