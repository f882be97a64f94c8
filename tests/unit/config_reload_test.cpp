// Reloads (config.hpp, reload_of()): what a SIGHUP applies, and what it keeps until a restart.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_cases.hpp"

namespace magline::cfg {
namespace {

using namespace config_cases;

std::string node_config(std::string_view changes) {
  // A running node: one port, a NodePort service; `changes` are extra top-level members.
  return std::string(R"({"dataplane": {"ports": [{"name": "p0", "device": "net_null0",
                                                  "addresses": ["198.18.0.1/24"]}]},
                         "services": [{"name": "np", "frontends": [{"kind": "node_port",
                                       "port": 30080}],
                                       "backends": [{"address": "198.18.1.1", "port": 80}]}])") +
         std::string(changes.empty() ? "" : ",") + std::string(changes) + "}";
}

std::string node_port_addresses(const Config& c) {
  std::string out;
  for (const dp::Service& s : services_of(c)) {
    for (const dp::Frontend& f : s.frontends) out += dp::to_string(f.addr) + " ";
  }
  return out;
}

TEST(ConfigReload, TheSameFileChangesNothing) {
  const Config running = parse_ok(node_config(""));
  const Reload r = reload_of(running, parse_ok(node_config("")));
  EXPECT_TRUE(r.needs_restart.empty());
  EXPECT_EQ(dump_services(r.config), dump_services(running));
  EXPECT_EQ(node_port_addresses(r.config), "198.18.0.1 ");
}

TEST(ConfigReload, TakesServicesAndMaglevAndKeepsEverySectionSetUpAtStart) {
  const Config running = parse_ok(node_config(R"("flow_table": {"capacity": 4096})"));
  const Config loaded = parse_ok(
      R"({"dataplane": {"burst": 16, "ports": [{"name": "p0", "device": "net_null0",
                                               "addresses": ["198.18.0.1/24"]}]},
          "node": {"addresses": ["198.18.0.9"]},
          "maglev": {"table_size": 251},
          "flow_table": {"capacity": 8192, "timeouts_ms": {"udp": 5}},
          "admin": {"port": 9200},
          "kubernetes": {"enabled": true, "kubeconfig": "/k"},
          "services": [{"name": "a", "frontends": [{"address": "198.18.100.1", "port": 80}]},
                       {"name": "b", "frontends": [{"kind": "node_port", "port": 30081}],
                        "backends": [{"address": "198.18.1.2", "port": 80}]}]})");
  const Reload r = reload_of(running, loaded);
  EXPECT_EQ(r.needs_restart,
            (std::vector<std::string>{"node", "flow_table", "dataplane", "admin", "kubernetes"}));
  ASSERT_EQ(r.config.services.size(), 2u);
  EXPECT_EQ(r.config.services[1].name, "b");
  EXPECT_EQ(r.config.table_size, 251u);
  EXPECT_EQ(dump_globals(r.config), "node 198.18.0.1\nmaglev 251\nflow_table 4096 syn=30000 "
                                    "established=7440000 closing=60000 udp=120000 other=120000\n");
  EXPECT_EQ(r.config.dataplane.burst, 32);
  EXPECT_EQ(r.config.admin.port, 9100);
  EXPECT_FALSE(r.config.kubernetes.enabled);
  // NodePorts stay on the running node's addresses, as the watched Services' do.
  EXPECT_EQ(node_port_addresses(r.config), "198.18.100.1 198.18.0.1 ");
}

TEST(ConfigReload, PortAddressesThatChangeWithThePortsCountAsDataplane) {
  const Config running = parse_ok(node_config(""));
  const Config loaded = parse_ok(
      R"({"dataplane": {"ports": [{"name": "p0", "device": "net_null0",
                                   "addresses": ["198.18.0.7/24"]}]},
          "services": [{"name": "np", "frontends": [{"kind": "node_port", "port": 30080}],
                        "backends": [{"address": "198.18.1.1", "port": 80}]}]})");
  const Reload r = reload_of(running, loaded);
  EXPECT_EQ(r.needs_restart, std::vector<std::string>{"dataplane"});
  EXPECT_EQ(node_port_addresses(r.config), "198.18.0.1 ");
  EXPECT_EQ(r.config.dataplane.ports[0].addresses, running.dataplane.ports[0].addresses);
}

TEST(ConfigReload, NodeAddressesGivenInTheFileAreCompared) {
  const Config running = parse_ok(node_config(R"("node": {"addresses": ["198.18.0.1"]})"));
  // The same addresses, once given and once from the ports: nothing to restart.
  EXPECT_TRUE(reload_of(running, parse_ok(node_config(""))).needs_restart.empty());
  const Reload r =
      reload_of(running, parse_ok(node_config(R"("node": {"addresses": ["198.18.0.2"]})")));
  EXPECT_EQ(r.needs_restart, std::vector<std::string>{"node"});
  EXPECT_EQ(node_port_addresses(r.config), "198.18.0.1 ");
}

}  // namespace
}  // namespace magline::cfg
