// The config loader's refusals in the `dataplane` section: cores, memory, ports, routes,
// source ports, encapsulation, each with its exact message.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_cases.hpp"

namespace magline::cfg {
namespace {

using namespace config_cases;

// A port `dataplane` tests can name, and a file whose dataplane has the given members (dpc:
// the dataplane configuration).
const std::string port0 =
    R"({"name": "lan0", "device": "net_null0", "addresses": ["198.18.0.1/16"]})";
std::string dpc(std::string_view members) {
  return "{\"dataplane\": {" + std::string(members) + "}}";
}

TEST(ConfigErrors, Dataplane) {
  expect_errors({
      {dpc(R"("worker_cores": [])"), "t.json: dataplane.worker_cores: expected at least one core"},
      {dpc(R"("worker_cores": [0])"),
       "t.json: dataplane.worker_cores[0]: core 0 is the main core (the control thread); workers "
       "need their own"},
      {dpc(R"("worker_cores": [1, 1])"), "t.json: dataplane.worker_cores[1]: duplicate core 1"},
      {dpc(R"("burst": 65)"), "t.json: dataplane.burst: expected an integer in 1..64, got 65"},
      {dpc(R"("idle_sleep_max_us": 10001)"),
       "t.json: dataplane.idle_sleep_max_us: expected an integer in 0..10000, got 10001"},
      {dpc(R"("idle_after_us": -1)"),
       "t.json: dataplane.idle_after_us: expected an integer in 0..10000000, got -1"},
      {dpc(R"("hugepages": "no")"),
       "t.json: dataplane.hugepages: expected true or false, got \"no\""},
      {dpc(R"("file_prefix": "")"),
       "t.json: dataplane.file_prefix: file_prefix must be 1 to 64 letters, digits, '-' or '_' "
       "(it names /var/run/dpdk/PREFIX and hugepage files)"},
      {dpc(R"("file_prefix": "../etc")"),
       "t.json: dataplane.file_prefix: file_prefix must be 1 to 64 letters, digits, '-' or '_' "
       "(it names /var/run/dpdk/PREFIX and hugepage files)"},
      {dpc(R"("hugepages": false, "capture": true)"),
       "t.json: dataplane.capture: capture needs hugepages: DPDK's capture tools map this "
       "process's hugepage memory"},
      {dpc(R"("telemetry": 1)"), "t.json: dataplane.telemetry: expected true or false, got 1"},
      {dpc(R"("dnat_replies": "route")"),
       R"(t.json: dataplane.dnat_replies: expected one of "routed", "last_hop", got "route")"},
      {dpc(R"("ports": [{"name": "lan0"}])"), "t.json: dataplane.ports[0]: missing key \"device\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0",
                         "kernel_interface": "a-name-far-too-long"}])"),
       "t.json: dataplane.ports[0].kernel_interface: expected a Linux interface name: 1 to 15 "
       "letters, digits, '-', '_' or '.', not \".\" or \"..\", got \"a-name-far-too-long\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0", "kernel_interface": "a/b"}])"),
       "t.json: dataplane.ports[0].kernel_interface: expected a Linux interface name: 1 to 15 "
       "letters, digits, '-', '_' or '.', not \".\" or \"..\", got \"a/b\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0", "kernel_interface": ""}])"),
       "t.json: dataplane.ports[0].kernel_interface: expected a Linux interface name: 1 to 15 "
       "letters, digits, '-', '_' or '.', not \".\" or \"..\", got \"\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0", "kernel_interface": 1}])"),
       "t.json: dataplane.ports[0].kernel_interface: expected a string, got 1"},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0", "kernel_interface": "mgl0"},
                        {"name": "lan1", "device": "net_null1", "kernel_interface": "mgl0"}])"),
       "t.json: dataplane.ports[1].kernel_interface: duplicate kernel interface \"mgl0\" (also "
       "dataplane.ports[0])"},
      {dpc(R"("exception_rate": 10000001)"),
       "t.json: dataplane.exception_rate: expected an integer in 0..10000000, got 10000001"},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0", "mac": "02:00:00:00:00"}])"),
       "t.json: dataplane.ports[0].mac: expected a MAC address like \"02:00:00:00:00:01\", got "
       "\"02:00:00:00:00\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "net_null0", "addresses": ["198.18.0.1"]}])"),
       "t.json: dataplane.ports[0].addresses[0]: expected an interface address ADDRESS/LENGTH, "
       "got \"198.18.0.1\""},
      // A device `run` could not open: neither a PCI address nor a DPDK virtual device.
      {dpc(R"("ports": [{"name": "lan0", "device": "net_bogus0"}])"),
       "t.json: dataplane.ports[0].device: expected a PCI address (0000:03:00.0) or a DPDK "
       "virtual device (net_af_packet, net_af_xdp, net_bonding, net_failsafe, net_memif, "
       "net_null, net_pcap, net_ring, net_softnic, net_tap, net_tun, net_vdev_netvsc, net_vhost, "
       "net_virtio_user, then the instance: net_null0), got \"net_bogus0\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "eth0"}])"),
       "t.json: dataplane.ports[0].device: expected a PCI address (0000:03:00.0) or a DPDK "
       "virtual device (net_af_packet, net_af_xdp, net_bonding, net_failsafe, net_memif, "
       "net_null, net_pcap, net_ring, net_softnic, net_tap, net_tun, net_vdev_netvsc, net_vhost, "
       "net_virtio_user, then the instance: net_null0), got \"eth0\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "03:00.0"}])"),
       "t.json: dataplane.ports[0].device: expected a PCI address (0000:03:00.0) or a DPDK "
       "virtual device (net_af_packet, net_af_xdp, net_bonding, net_failsafe, net_memif, "
       "net_null, net_pcap, net_ring, net_softnic, net_tap, net_tun, net_vdev_netvsc, net_vhost, "
       "net_virtio_user, then the instance: net_null0), got \"03:00.0\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "0000:AF:00.0,rxq_cqe_comp_en=0"}])"),
       "t.json: dataplane.ports[0].device: DPDK names PCI ports in lowercase: expected "
       "\"0000:af:00.0\", got \"0000:AF:00.0,rxq_cqe_comp_en=0\""},
      {dpc(R"("ports": [{"name": "lan0", "device": "0000:03:00.8"}])"),
       "t.json: dataplane.ports[0].device: expected a PCI address (0000:03:00.0) or a DPDK "
       "virtual device (net_af_packet, net_af_xdp, net_bonding, net_failsafe, net_memif, "
       "net_null, net_pcap, net_ring, net_softnic, net_tap, net_tun, net_vdev_netvsc, net_vhost, "
       "net_virtio_user, then the instance: net_null0), got \"0000:03:00.8\""},
      {dpc(R"("ports": [)" + port0 + ", " + port0 + "]"),
       "t.json: dataplane.ports[1].name: duplicate port name (also dataplane.ports[0])"},
      {dpc(R"("ports": [)" + port0 +
          R"(, {"name": "lan1", "device": "net_null1", "addresses": ["198.18.0.1/24"]}])"),
       "t.json: dataplane.ports[1].addresses[0]: duplicate address 198.18.0.1 (also "
       "dataplane.ports[0].addresses[0])"},
      {dpc(R"("ports": [)" + port0 +
          R"(], "routes": [{"to": "203.0.113.0/24", "via": "198.18.0.254", "port": "wan"}])"),
       "t.json: dataplane.routes[0].port: no port is named \"wan\""},
      {dpc(R"("ports": [)" + port0 +
          R"(], "routes": [{"to": "203.0.113.0/24", "via": "10.0.0.1", "port": "lan0"}])"),
       "t.json: dataplane.routes[0].via: 10.0.0.1 is not in a subnet of port \"lan0\"; a "
       "gateway must be on-link"},
      {dpc(R"("ports": [)" + port0 +
          R"(], "routes": [{"to": "2001:db8:5::/48", "via": "198.18.0.254", "port": "lan0"}])"),
       "t.json: dataplane.routes[0].via: 198.18.0.254 is IPv4, but the route is to "
       "2001:db8:5::/48"},
      {dpc(R"("snat_ports": {"low": 3000, "high": 2000})"),
       "t.json: dataplane.snat_ports: low (3000) is above high (2000)"},
      {R"({"admin": {"address": "localhost"}})",
       "t.json: admin.address: expected an IPv4 or IPv6 address, got \"localhost\""},
  });
}

TEST(ConfigErrors, Encapsulation) {
  expect_errors({
      {services(R"({"name": "a", "mode": "gue",
                    "frontends": [{"address": "198.18.100.1", "port": 80}],
                    "backends": [{"address": "198.18.1.1", "port": 8080}]})"),
       "t.json: services[0].backends[0].port: gue cannot translate ports: expected 80 (the "
       "port of frontends[0]), got 8080"},
      {services(R"({"name": "a", "mode": "ipip",
                    "frontends": [{"address": "198.18.100.1", "port": 80}],
                    "backends": [{"address": "198.18.1.1", "port": 80},
                                 {"address": "2001:db8::7", "port": 80}]})"),
       "t.json: services[0].backends[1].address: 2001:db8::7 is IPv6, but backends[0] is IPv4; "
       "an encapsulating service's backends share a family"},
      {R"({"dataplane": {"ports": [)" + port0 + R"(]}, "services": [{"name": "a", "mode": "ipip",
           "frontends": [{"address": "198.18.100.1", "port": 80}],
           "backends": [{"address": "2001:db8::7", "port": 80}]}]})",
       "t.json: services[0].backends[0].address: no IPv6 outer source for the tunnel: give a "
       "port an IPv6 address or set dataplane.encapsulation.source_v6"},
      {dpc(R"("encapsulation": {"source_v4": "2001:db8::/64"})"),
       "t.json: dataplane.encapsulation.source_v4: expected an IPv4 prefix, got "
       "\"2001:db8::/64\""},
      {dpc(R"("encapsulation": {"source_v6": "198.18.250.1/24"})"),
       "t.json: dataplane.encapsulation.source_v6: \"198.18.250.1/24\" has bits set past the "
       "prefix length; did you mean \"198.18.250.0/24\"?"},
      {dpc(R"("encapsulation": {"mtu": 1300})"),
       "t.json: dataplane.encapsulation.mtu: expected an integer in 1328..9216, got 1300"},
      {dpc(R"("encapsulation": {"gue_port": 0})"),
       "t.json: dataplane.encapsulation.gue_port: expected an integer in 1..65535, got 0"},
      {dpc(R"("encapsulation": {"port": 6080})"),
       "t.json: dataplane.encapsulation: unknown key \"port\"; known keys: source_v4, "
       "source_v6, gue_port, mtu, fragment"},
      {dpc(R"("encapsulation": {"fragment": "yes"})"),
       "t.json: dataplane.encapsulation.fragment: expected true or false, got \"yes\""},
  });
}

}  // namespace
}  // namespace magline::cfg
