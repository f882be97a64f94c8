// The config loader's refusals: every kind of bad file, with its exact message (the `dataplane`
// section's in config_dataplane_errors_test.cpp).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_cases.hpp"

namespace magline::cfg {
namespace {

using namespace config_cases;

// A service with one IPv4 frontend and the given extra members ("" for none).
std::string web(std::string_view extra) {
  return services(R"({"name": "web", "frontends": [{"address": "198.18.100.1", "port": 80}])" +
                  std::string(extra.empty() ? "" : ", ") + std::string(extra) + "}");
}

// A service with one IPv4 frontend whose members are given.
std::string frontend(std::string_view members) {
  return services(R"({"name": "web", "frontends": [{)" + std::string(members) + "}]}");
}

// A service with one IPv4 frontend and one backend whose members are given.
std::string backend(std::string_view members) {
  return web(R"("backends": [{)" + std::string(members) + "}]");
}

TEST(ConfigErrors, InvalidJsonGivesLineAndColumn) {
  expect_errors({
      {"", "t.json:1:1: invalid JSON: unexpected end of input; expected '[', '{', or a literal"},
      {"  \n",
       "t.json:2:1: invalid JSON: unexpected end of input; expected '[', '{', or a literal"},
      {"{", "t.json:1:2: invalid JSON: unexpected end of input; expected string literal"},
      {"{\"a\": 1,\n}", "t.json:2:1: invalid JSON: unexpected '}'; expected string literal"},
      {"{\n  \"node\": {},\n  \"maglev\": tru\n}",
       "t.json:3:16: invalid JSON: invalid literal; last read: '\"maglev\": tru<U+000A>'"},
      {"[1, 2,]", "t.json:1:7: invalid JSON: unexpected ']'; expected '[', '{', or a literal"},
      {"{}}", "t.json:1:3: invalid JSON: unexpected '}'; expected end of input"},
      {"// comment\n{}", "t.json:1:1: invalid JSON: comments are not allowed"},
      {"{\n  \"node\": {} /* here */\n}", "t.json:2:14: invalid JSON: comments are not allowed"},
      {"{\"maglev\": {\"table_size\": 1e999}}",
       "t.json:1:31: invalid JSON: number overflow parsing '1e999'"},
      {"{\"a\": \"\xff\"}",
       R"(t.json:1:8: invalid JSON: invalid string: ill-formed UTF-8 byte; last read: '"\xff')"},
      {"{'node': {}}",
       "t.json:1:2: invalid JSON: invalid literal; last read: '{''; expected string literal"},
  });
}

TEST(ConfigErrors, TopLevelMustBeAnObject) {
  expect_errors({
      {"[]", "t.json: (top level): expected an object, got []"},
      {"42", "t.json: (top level): expected an object, got 42"},
      {"null", "t.json: (top level): expected an object, got null"},
      {R"("{}")", R"(t.json: (top level): expected an object, got "{}")"},
  });
}

TEST(ConfigErrors, UnknownKeysAtEveryDepth) {
  expect_errors({
      {R"({"servcies": []})",
       R"(t.json: (top level): unknown key "servcies"; known keys: node, maglev, flow_table, services, dataplane, admin, kubernetes, provider, bgp)"},
      {R"({"node": {"address": []}})",
       R"(t.json: node: unknown key "address"; known keys: addresses)"},
      {R"({"maglev": {"size": 7}})",
       R"(t.json: maglev: unknown key "size"; known keys: table_size)"},
      {R"({"flow_table": {"timeouts": {}}})",
       R"(t.json: flow_table: unknown key "timeouts"; known keys: capacity, timeouts_ms)"},
      {R"({"flow_table": {"timeouts_ms": {"tcp_fin": 1}}})",
       R"(t.json: flow_table.timeouts_ms: unknown key "tcp_fin"; known keys: tcp_syn, tcp_established, tcp_closing, udp, other)"},
      {web(R"("affinity": {})"),
       R"(t.json: services[0]: unknown key "affinity"; known keys: name, mode, frontends, backends, session_affinity, source_ranges, no_backends, table_size, new_connection_limit, syn_proxy)"},
      {frontend(R"("adress": "198.18.100.1", "port": 80)"),
       R"(t.json: services[0].frontends[0]: unknown key "adress"; known keys: kind, address, port, protocol)"},
      {web(R"("backends": [{"address": "198.18.1.1", "port": 80},
                           {"address": "198.18.1.2", "port": 80, "weigth": 2}])"),
       R"(t.json: services[0].backends[1]: unknown key "weigth"; known keys: address, port, weight, state)"},
      {web(R"("session_affinity": {"type": "client_ip", "timeout": 5})"),
       R"(t.json: services[0].session_affinity: unknown key "timeout"; known keys: type, timeout_s)"},
  });
}

TEST(ConfigErrors, DuplicateKeysNameTheObject) {
  expect_errors({
      {R"({"node": {}, "node": {}})", R"(t.json: (top level): duplicate key "node")"},
      {R"({"maglev": {"table_size": 7, "table_size": 7}})",
       R"(t.json: maglev: duplicate key "table_size")"},
      {frontend(R"("address": "198.18.100.1", "port": 80, "port": 81)"),
       R"(t.json: services[0].frontends[0]: duplicate key "port")"},
      {services(R"({"name": "a", "frontends": []}, {"name": "b", "frontends": [],
                   "backends": [{}, {"x": [1, {"y": 1, "y": 2}]}]})"),
       R"(t.json: services[1].backends[1].x[1]: duplicate key "y")"},
      {R"({"": 1, "": 2})", R"(t.json: (top level): duplicate key "")"},
  });
}

TEST(ConfigErrors, NestingIsBounded) {
  // Deep enough to overflow the stack of a recursive walk, were it allowed.
  const std::string deep =
      R"({"node": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  std::string path = "node";
  // The top object is level 1 and "node" level 2; level 33 is refused.
  for (int level = 3; level <= 33; ++level)
    path += "[0]";
  EXPECT_EQ(error_of(deep), "t.json: " + path + ": nested deeper than 32 levels");

  const std::string deepest_allowed =
      R"({"node": {"addresses": )" + std::string(30, '[') + std::string(30, ']') + "}}";
  EXPECT_EQ(error_of(deepest_allowed),
            "t.json: node.addresses[0]: expected an IPv4 or IPv6 address, got " +
                std::string(29, '[') + std::string(29, ']'));
}

TEST(ConfigErrors, WrongTypes) {
  expect_errors({
      {R"({"services": {}})", "t.json: services: expected an array, got {}"},
      {R"({"node": []})", "t.json: node: expected an object, got []"},
      {R"({"node": {"addresses": "198.18.0.1"}})",
       R"(t.json: node.addresses: expected an array, got "198.18.0.1")"},
      {R"({"node": {"addresses": [1]}})",
       "t.json: node.addresses[0]: expected an IPv4 or IPv6 address, got 1"},
      {services(R"("web")"), R"(t.json: services[0]: expected an object, got "web")"},
      {services(R"({"name": 5, "frontends": []})"),
       "t.json: services[0].name: expected a string, got 5"},
      {web(R"("mode": "nat")"),
       R"(t.json: services[0].mode: expected one of "full_nat", "dnat", "dsr_l2", "ipip", "gue", got "nat")"},
      {frontend(R"("address": "198.18.100.1", "port": 80, "protocol": "TCP")"),
       R"(t.json: services[0].frontends[0].protocol: expected one of "tcp", "udp", "sctp", got "TCP")"},
      {frontend(R"("kind": "LoadBalancer", "address": "198.18.100.1", "port": 80)"),
       R"(t.json: services[0].frontends[0].kind: expected one of "load_balancer", "node_port", "external_ip", got "LoadBalancer")"},
      {backend(R"("address": "198.18.1.1", "port": 80, "state": 1)"),
       R"(t.json: services[0].backends[0].state: expected one of "ready", "terminating", got 1)"},
      {web(R"("no_backends": "icmp")"),
       R"(t.json: services[0].no_backends: expected one of "reject", "drop", got "icmp")"},
      {web(R"("session_affinity": {"type": "ClientIP"})"),
       R"(t.json: services[0].session_affinity.type: expected one of "none", "client_ip", got "ClientIP")"},
      {web(R"("session_affinity": "client_ip")"),
       R"(t.json: services[0].session_affinity: expected an object, got "client_ip")"},
      {web(R"("source_ranges": "198.18.0.0/15")"),
       R"(t.json: services[0].source_ranges: expected an array, got "198.18.0.0/15")"},
      {web(R"("backends": {"address": "198.18.1.1"})"),
       R"(t.json: services[0].backends: expected an array, got {"address":"198.18.1.1"})"},
  });
}

TEST(ConfigErrors, IntegersOutOfRangeOrNotIntegers) {
  const std::string port =
      "t.json: services[0].frontends[0].port: expected an integer in 1..65535, got ";
  auto with_port = [](std::string_view v) {
    return frontend(R"("address": "198.18.100.1", "port": )" + std::string(v));
  };
  expect_errors({
      {with_port(R"("80a")"), port + R"("80a")"},
      {with_port(R"("80")"), port + R"("80")"},
      {with_port("-1"), port + "-1"},
      {with_port("0"), port + "0"},
      {with_port("65536"), port + "65536"},
      {with_port("80.5"), port + "80.5"},
      {with_port("80.0"), port + "80.0"},
      {with_port("1e30"), port + "1e+30"},
      {with_port("99999999999999999999"), port + "1e+20"},
      {with_port("18446744073709551615"), port + "18446744073709551615"},
      {with_port("true"), port + "true"},
      {with_port("null"), port + "null"},
      {with_port("[80]"), port + "[80]"},
      {backend(R"("address": "198.18.1.1", "port": 80, "weight": 65536)"),
       "t.json: services[0].backends[0].weight: expected an integer in 0..65535, got 65536"},
      {backend(R"("address": "198.18.1.1", "port": 80, "weight": -1)"),
       "t.json: services[0].backends[0].weight: expected an integer in 0..65535, got -1"},
      {backend(R"("address": "198.18.1.1", "port": 80, "weight": 1.5)"),
       "t.json: services[0].backends[0].weight: expected an integer in 0..65535, got 1.5"},
  });
}

TEST(Config, MinusZeroIsZero) {
  const Config c = parse_ok(backend(R"("address": "198.18.1.1", "port": 80, "weight": -0)"));
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].backends.at(0).weight, 0u);
}

TEST(ConfigErrors, LongValuesAreCutShort) {
  const std::string long_name(100, 'x');
  EXPECT_EQ(error_of(frontend(R"("address": "198.18.100.1", "port": ")" + long_name + "\"")),
            "t.json: services[0].frontends[0].port: expected an integer in 1..65535, got \"" +
                std::string(56, 'x') + "...");
}

TEST(ConfigErrors, BadAddressesAndPrefixes) {
  expect_errors({
      {backend(R"("address": "198.18.1.256", "port": 80)"),
       R"(t.json: services[0].backends[0].address: expected an IPv4 or IPv6 address, got "198.18.1.256")"},
      {frontend(R"("address": "2001:db8::g", "port": 80)"),
       R"(t.json: services[0].frontends[0].address: expected an IPv4 or IPv6 address, got "2001:db8::g")"},
      {R"({"node": {"addresses": ["198.18.0.1/32"]}})",
       R"(t.json: node.addresses[0]: expected an IPv4 or IPv6 address, got "198.18.0.1/32")"},
      {R"({"node": {"addresses": ["198.18.0.1", " 198.18.0.2"]}})",
       R"(t.json: node.addresses[1]: expected an IPv4 or IPv6 address, got " 198.18.0.2")"},
      // A NodePort on a link-local address answers one link only.
      {R"({"node": {"addresses": ["198.18.0.1", "169.254.1.1"]}})",
       "t.json: node.addresses[1]: 169.254.1.1 is link-local (169.254.0.0/16, fe80::/10): a "
       "NodePort there is reachable from one link only; give the node's routable addresses"},
      {R"({"node": {"addresses": ["fe80::1"]}})",
       "t.json: node.addresses[0]: fe80::1 is link-local (169.254.0.0/16, fe80::/10): a "
       "NodePort there is reachable from one link only; give the node's routable addresses"},
      {web(R"("source_ranges": ["198.18.0.1/16"])"),
       R"(t.json: services[0].source_ranges[0]: "198.18.0.1/16" has bits set past the prefix length; did you mean "198.18.0.0/16"?)"},
      {web(R"("source_ranges": ["198.18.0.0/15", "198.19.255.255/31"])"),
       R"(t.json: services[0].source_ranges[1]: "198.19.255.255/31" has bits set past the prefix length; did you mean "198.19.255.254/31"?)"},
      {services(R"({"name": "a", "frontends": [{"address": "2001:db8:100::1", "port": 80}],
                   "source_ranges": ["2001:db8::1/32"]})"),
       R"(t.json: services[0].source_ranges[0]: "2001:db8::1/32" has bits set past the prefix length; did you mean "2001:db8::/32"?)"},
      {web(R"("source_ranges": ["198.18.0.0/33"])"),
       R"(t.json: services[0].source_ranges[0]: expected a prefix ADDRESS/LENGTH, got "198.18.0.0/33")"},
      {web(R"("source_ranges": ["198.18.0.0"])"),
       R"(t.json: services[0].source_ranges[0]: expected a prefix ADDRESS/LENGTH, got "198.18.0.0")"},
      {web(R"("source_ranges": [16])"),
       R"(t.json: services[0].source_ranges[0]: expected a prefix ADDRESS/LENGTH, got 16)"},
  });
}

TEST(ConfigErrors, TableSizes) {
  const std::string four_backends =
      R"("backends": [{"address": "198.18.1.1", "port": 80}, {"address": "198.18.1.2", "port": 80},
                      {"address": "198.18.1.3", "port": 80}, {"address": "198.18.1.4", "port": 80}])";
  expect_errors({
      {R"({"maglev": {"table_size": 65536}})",
       "t.json: maglev.table_size: expected a prime, got 65536 (the next prime is 65537)"},
      {R"({"maglev": {"table_size": 1}})",
       "t.json: maglev.table_size: expected an integer in 3..16777213, got 1"},
      {R"({"maglev": {"table_size": 16777214}})",
       "t.json: maglev.table_size: expected an integer in 3..16777213, got 16777214"},
      {R"({"maglev": {"table_size": 65537.0}})",
       "t.json: maglev.table_size: expected an integer in 3..16777213, got 65537.0"},
      {web(R"("table_size": 100)"),
       "t.json: services[0].table_size: expected a prime, got 100 (the next prime is 101)"},
      {web(R"("table_size": 3, )" + four_backends),
       "t.json: services[0].table_size: expected a prime of at least 4 (the number of backends), "
       "got 3"},
      {R"({"maglev": {"table_size": 3}, )" + web(four_backends).substr(1),
       "t.json: services[0].backends: 4 backends need a Maglev table of at least 4 slots, but "
       "maglev.table_size is 3"},
  });
}

TEST(ConfigErrors, FrontendAddressesByKind) {
  expect_errors({
      {frontend(R"("kind": "node_port", "address": "198.18.0.1", "port": 30080)"),
       "t.json: services[0].frontends[0].address: a node_port frontend has no address: it "
       "listens on the node addresses of the service's family"},
      {frontend(R"("kind": "load_balancer", "port": 80)"),
       R"(t.json: services[0].frontends[0]: missing key "address" (kind "load_balancer" needs one))"},
      {frontend(R"("port": 80)"),
       R"(t.json: services[0].frontends[0]: missing key "address" (kind "load_balancer" needs one))"},
      {frontend(R"("kind": "external_ip", "port": 80)"),
       R"(t.json: services[0].frontends[0]: missing key "address" (kind "external_ip" needs one))"},
  });
}

TEST(ConfigErrors, NodePortNeedsANodeAddressOfTheFamily) {
  const std::string v6_node_port =
      R"("services": [{"name": "a", "frontends": [{"kind": "node_port", "port": 30080}],
                      "backends": [{"address": "2001:db8:1::10", "port": 80}]}]})";
  expect_errors({
      {R"({"node": {"addresses": ["198.18.0.1"]}, )" + v6_node_port,
       "t.json: services[0].frontends[0]: a node_port frontend needs an IPv6 address in "
       "node.addresses"},
      {"{" + v6_node_port,
       "t.json: services[0].frontends[0]: a node_port frontend needs an IPv6 address in "
       "node.addresses"},
      {R"({"node": {"addresses": ["2001:db8::1"]}, "services": [{"name": "a", "frontends": [
          {"address": "198.18.100.1", "port": 80}, {"kind": "node_port", "port": 30080}]}]})",
       "t.json: services[0].frontends[1]: a node_port frontend needs an IPv4 address in "
       "node.addresses"},
  });
}

TEST(ConfigErrors, OneFamilyPerService) {
  expect_errors({
      {backend(R"("address": "2001:db8:1::10", "port": 80)"),
       "t.json: services[0].backends[0].address: 2001:db8:1::10 is IPv6, but the service is "
       "IPv4 (from frontends[0].address); use one service per family"},
      {services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 80},
                                               {"address": "2001:db8:100::1", "port": 80}]})"),
       "t.json: services[0].frontends[1].address: 2001:db8:100::1 is IPv6, but the service is "
       "IPv4 (from frontends[0].address); use one service per family"},
      {services(R"({"name": "a", "frontends": [{"kind": "node_port", "port": 30080},
                                               {"address": "2001:db8:100::1", "port": 80}],
                    "backends": [{"address": "198.18.1.1", "port": 80}]})"),
       "t.json: services[0].backends[0].address: 198.18.1.1 is IPv4, but the service is IPv6 "
       "(from frontends[1].address); use one service per family"},
      {services(R"({"name": "a", "frontends": [{"kind": "node_port", "port": 30080}],
                    "backends": [{"address": "2001:db8:1::1", "port": 80},
                                 {"address": "198.18.1.1", "port": 80}]})"),
       "t.json: services[0].backends[1].address: 198.18.1.1 is IPv4, but the service is IPv6 "
       "(from backends[0].address); use one service per family"},
      {web(R"("source_ranges": ["198.18.0.0/15", "2001:db8::/32"])"),
       "t.json: services[0].source_ranges[1]: 2001:db8::/32 is IPv6, but the service is IPv4 "
       "(from frontends[0].address); use one service per family"},
      {services(R"({"name": "a", "frontends": [{"kind": "node_port", "port": 30080}]})"),
       R"(t.json: services[0]: cannot tell the service's address family: give a frontend an "address" or add a backend)"},
  });
}

TEST(ConfigErrors, Duplicates) {
  expect_errors({
      {web(R"("backends": [{"address": "198.18.1.10", "port": 8080},
                           {"address": "198.18.1.11", "port": 8080},
                           {"address": "198.18.1.10", "port": 8080, "weight": 2}])"),
       "t.json: services[0].backends[2]: duplicate backend 198.18.1.10:8080 (also backends[0])"},
      {services(R"({"name": "a", "frontends": [{"address": "2001:db8:100::1", "port": 80}],
                    "backends": [{"address": "2001:db8:1::10", "port": 80},
                                 {"address": "2001:db8:1:0::10", "port": 80}]})"),
       "t.json: services[0].backends[1]: duplicate backend [2001:db8:1::10]:80 (also "
       "backends[0])"},
      {services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 80},
                                               {"address": "198.18.100.1", "port": 80}]})"),
       "t.json: services[0].frontends[1]: duplicate frontend 198.18.100.1:80/tcp (also "
       "frontends[0])"},
      {services(R"({"name": "a", "frontends": [{"kind": "node_port", "port": 30080},
          {"kind": "external_ip", "address": "198.18.0.1", "port": 30080}]})"),
       "t.json: services[0].frontends[1]: duplicate frontend 198.18.0.1:30080/tcp (also "
       "frontends[0])"},
      {services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 80},
          {"kind": "node_port", "port": 30080}, {"kind": "node_port", "port": 30080}]})"),
       "t.json: services[0].frontends[2]: duplicate frontend 198.18.0.1:30080/tcp (also "
       "frontends[1])"},
      {services(
           R"({"name": "demo/web:http", "frontends": [{"address": "198.18.100.1", "port": 80}]},
                   {"name": "other", "frontends": [{"address": "198.18.100.2", "port": 80}]},
                   {"name": "demo/web:http", "frontends": [{"address": "198.18.100.3", "port": 80}]})"),
       R"(t.json: services[2].name: duplicate service name "demo/web:http" (also services[0]))"},
      {R"({"node": {"addresses": ["198.18.0.1", "2001:db8::1", "198.18.0.1"]}})",
       "t.json: node.addresses[2]: duplicate address 198.18.0.1 (also node.addresses[0])"},
  });
}

TEST(ConfigErrors, DsrL2CannotTranslatePorts) {
  expect_errors({
      {services(R"({"name": "a", "mode": "dsr_l2",
                    "frontends": [{"address": "198.18.100.1", "port": 80}],
                    "backends": [{"address": "198.18.1.1", "port": 80},
                                 {"address": "198.18.1.2", "port": 8080}]})"),
       "t.json: services[0].backends[1].port: dsr_l2 cannot translate ports: expected 80 (the "
       "port of frontends[0]), got 8080"},
      {services(R"({"name": "a", "mode": "dsr_l2",
                    "frontends": [{"address": "198.18.100.1", "port": 80},
                                  {"kind": "node_port", "port": 30080}],
                    "backends": [{"address": "198.18.1.1", "port": 80}]})"),
       "t.json: services[0].backends[0].port: dsr_l2 cannot translate ports: expected 30080 (the "
       "port of frontends[1]), got 80"},
  });
}

TEST(ConfigErrors, MissingAndEmptyFields) {
  expect_errors({
      {services(R"({"frontends": []})"), R"(t.json: services[0]: missing key "name")"},
      {services(R"({"name": "a"})"), R"(t.json: services[0]: missing key "frontends")"},
      {services(R"({"name": "a", "frontends": []})"),
       "t.json: services[0].frontends: expected at least one frontend, got []"},
      {services(R"({"name": "", "frontends": []})"),
       R"(t.json: services[0].name: expected a non-empty name, got "")"},
      {services(R"({"name": "demo web", "frontends": []})"),
       R"(t.json: services[0].name: expected a name without spaces or control characters, got "demo web")"},
      {services(R"({"name": "demo\tweb", "frontends": []})"),
       R"(t.json: services[0].name: expected a name without spaces or control characters, got "demo\tweb")"},
      {frontend(R"("address": "198.18.100.1")"),
       R"(t.json: services[0].frontends[0]: missing key "port")"},
      {backend(R"("port": 80)"), R"(t.json: services[0].backends[0]: missing key "address")"},
      {backend(R"("address": "198.18.1.1")"),
       R"(t.json: services[0].backends[0]: missing key "port")"},
  });
}

TEST(ConfigErrors, SessionAffinity) {
  const std::string timeout = "t.json: services[0].session_affinity.timeout_s: ";
  expect_errors({
      {web(R"("session_affinity": {"type": "client_ip", "timeout_s": 0})"),
       timeout + "expected an integer in 1..86400, got 0"},
      {web(R"("session_affinity": {"type": "client_ip", "timeout_s": 86401})"),
       timeout + "expected an integer in 1..86400, got 86401"},
      {web(R"("session_affinity": {"type": "none", "timeout_s": 60})"),
       timeout + R"(only "type": "client_ip" takes a timeout)"},
      {web(R"("session_affinity": {"timeout_s": 60})"),
       timeout + R"(only "type": "client_ip" takes a timeout)"},
  });
}

TEST(ConfigErrors, NewConnectionLimit) {
  const std::string at = "t.json: services[0].new_connection_limit";
  expect_errors({
      {web(R"("new_connection_limit": {"burst": 10})"), at + R"(: missing key "rate")"},
      {web(R"("new_connection_limit": {"rate": 0})"),
       at + ".rate: expected an integer in 1..100000000, got 0"},
      {web(R"("new_connection_limit": {"rate": 100000001})"),
       at + ".rate: expected an integer in 1..100000000, got 100000001"},
      {web(R"("new_connection_limit": {"rate": 10, "burst": 0})"),
       at + ".burst: expected an integer in 1..100000000, got 0"},
      {web(R"("new_connection_limit": {"rate": "10"})"),
       at + R"(.rate: expected an integer in 1..100000000, got "10")"},
      {web(R"("new_connection_limit": {"rate": 10, "per": "s"})"),
       at + R"(: unknown key "per"; known keys: rate, burst)"},
      {web(R"("new_connection_limit": 10)"), at + ": expected an object, got 10"},
  });
}

TEST(ConfigErrors, SynProxy) {
  expect_errors({
      {web(R"("syn_proxy": "always")"),
       R"(t.json: services[0].syn_proxy: expected one of "auto", "on", "off", got "always")"},
      {web(R"("mode": "dsr_l2", "syn_proxy": "on")"),
       R"(t.json: services[0].syn_proxy: expected "auto" or "off" for a dsr_l2 service: "on" )"
       R"(serves full_nat and dnat ones, got "on")"},
      {R"({"node": {"addresses": ["198.18.0.1"]}, "dataplane": {"syn_proxy_threshold": 0}})",
       "t.json: dataplane.syn_proxy_threshold: expected an integer in 1..100000000, got 0"},
  });
}

TEST(ConfigErrors, FlowTable) {
  const std::string ms = "expected an integer in 1..86400000, got ";
  const std::string capacity =
      "t.json: flow_table.capacity: expected an integer in 16..2147483648, got ";
  expect_errors({
      {R"({"flow_table": {"timeouts_ms": {"tcp_syn": 0}}})",
       "t.json: flow_table.timeouts_ms.tcp_syn: " + ms + "0"},
      {R"({"flow_table": {"timeouts_ms": {"tcp_established": 86400001}}})",
       "t.json: flow_table.timeouts_ms.tcp_established: " + ms + "86400001"},
      {R"({"flow_table": {"timeouts_ms": {"tcp_closing": -5}}})",
       "t.json: flow_table.timeouts_ms.tcp_closing: " + ms + "-5"},
      {R"({"flow_table": {"timeouts_ms": {"udp": 1.5}}})",
       "t.json: flow_table.timeouts_ms.udp: " + ms + "1.5"},
      {R"({"flow_table": {"timeouts_ms": {"other": "60s"}}})",
       "t.json: flow_table.timeouts_ms.other: " + ms + R"("60s")"},
      {R"({"flow_table": {"capacity": 15}})", capacity + "15"},
      {R"({"flow_table": {"capacity": 2147483649}})", capacity + "2147483649"},
      {R"({"flow_table": {"capacity": 1e6}})", capacity + "1000000.0"},
  });
}

TEST(ConfigErrors, TheFirstErrorIsReported) {
  // A bad field early in the file wins over later ones, including the checks across fields
  // that would otherwise trip over the default the bad field was given.
  expect_errors({
      {services(R"({"name": "a", "frontends": [{"address": "198.18.100.1", "port": 0}]},
                   {"name": 7, "frontends": []})"),
       "t.json: services[0].frontends[0].port: expected an integer in 1..65535, got 0"},
      {services(R"({"name": "a", "frontends": [{"address": "2001:db8:100::x", "port": 80}],
                   "backends": [{"address": "198.18.1.1", "port": 80}]})"),
       R"(t.json: services[0].frontends[0].address: expected an IPv4 or IPv6 address, got "2001:db8:100::x")"},
      {services(
           R"({"name": "a", "mode": "dsr", "frontends": [{"address": "198.18.100.1", "port": 80}],
                   "backends": [{"address": "198.18.1.1", "port": 8080}]})"),
       R"(t.json: services[0].mode: expected one of "full_nat", "dnat", "dsr_l2", "ipip", "gue", got "dsr")"},
  });
}

TEST(ConfigErrors, NamesTheEmbeddedSource) {
  auto r = parse_config("{", kEmbeddedSource);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "<embedded default>:1:2: invalid JSON: unexpected end of input; expected string "
            "literal");
}

TEST(ConfigErrors, Kubernetes) {
  expect_errors({
      {R"({"kubernetes": {"in_cluster": true, "kubeconfig": "k"}})",
       "t.json: kubernetes: in_cluster and kubeconfig exclude each other"},
      {R"({"kubernetes": {"in_cluster": true, "table_size": 1000}})",
       "t.json: kubernetes.table_size: expected a prime, got 1000 (the next prime is 1009)"},
      {R"({"kubernetes": {"in_cluster": true, "min_table_size": 4000}})",
       "t.json: kubernetes.min_table_size: expected a prime, got 4000 (the next prime is 4001)"},
      {R"({"kubernetes": {"in_cluster": true, "table_size": 1021, "min_table_size": 4093}})",
       "t.json: kubernetes.min_table_size: min_table_size 4093 is above table_size 1021"},
      {R"({"kubernetes": {"in_cluster": true, "coalesce_ms": 5000}})",
       "t.json: kubernetes.coalesce_ms: expected an integer in 0..1000, got 5000"},
      {R"({"kubernetes": {"in_cluster": true, "namespaces": "x"}})",
       "t.json: kubernetes: unknown key \"namespaces\"; known keys: enabled, in_cluster, "
       "kubeconfig, context, namespace, proxy_name, load_balancer_class, "
       "default_load_balancer_class, node_name, zone, table_size, min_table_size, coalesce_ms, "
       "page_limit, targets, health_checks"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"interval_ms": 500}}})",
       "t.json: kubernetes.health_checks.interval_ms: expected an integer in 1000..300000, got "
       "500"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"interval_ms": 2000}}})",
       "t.json: kubernetes.health_checks.timeout_ms: timeout_ms 2000 must be below interval_ms "
       "2000"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"timeout_ms": 10}}})",
       "t.json: kubernetes.health_checks.timeout_ms: expected an integer in 100..60000, got 10"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"healthy_threshold": 0}}})",
       "t.json: kubernetes.health_checks.healthy_threshold: expected an integer in 1..10, got 0"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"unhealthy_threshold": 11}}})",
       "t.json: kubernetes.health_checks.unhealthy_threshold: expected an integer in 1..10, got "
       "11"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"max_in_flight": 0}}})",
       "t.json: kubernetes.health_checks.max_in_flight: expected an integer in 1..4096, got 0"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": {"interval": 5}}})",
       "t.json: kubernetes.health_checks: unknown key \"interval\"; known keys: interval_ms, "
       "timeout_ms, healthy_threshold, unhealthy_threshold, max_in_flight"},
      {R"({"kubernetes": {"in_cluster": true, "health_checks": []}})",
       "t.json: kubernetes.health_checks: expected an object, got []"},
      {R"({"kubernetes": {"in_cluster": true, "default_load_balancer_class": true}})",
       "t.json: kubernetes.default_load_balancer_class: default_load_balancer_class needs "
       "load_balancer_class: without a class, Magline takes only classless Services already"},
      {R"({"kubernetes": {"in_cluster": true, "load_balancer_class": "x/y",
           "default_load_balancer_class": "yes"}})",
       "t.json: kubernetes.default_load_balancer_class: expected true or false, got \"yes\""},
      {R"({"kubernetes": {"in_cluster": true, "targets": "endpoints"}})",
       "t.json: kubernetes.targets: expected one of \"pods\", \"nodes\", got \"endpoints\""},
      {R"({"kubernetes": {"in_cluster": true, "targets": ["nodes"]}})",
       "t.json: kubernetes.targets: expected one of \"pods\", \"nodes\", got [\"nodes\"]"},
  });
}

TEST(ConfigErrors, ProviderPools) {
  auto pools = [](std::string_view items) {
    return "{\"provider\": {\"pools\": [" + std::string(items) + "]}}";
  };
  expect_errors({
      {pools(R"({"addresses": ["198.18.200.0/24"]})"),
       "t.json: provider.pools[0]: missing key \"name\""},
      {pools(R"({"name": "Edge", "addresses": ["198.18.200.0/24"]})"),
       "t.json: provider.pools[0].name: expected a name of lowercase letters, digits and '-' (at "
       "most 63), got \"Edge\""},
      {pools(R"({"name": "edge", "addresses": []})"),
       "t.json: provider.pools[0].addresses: expected at least one address, network or range"},
      {pools(R"({"name": "edge", "addresses": ["198.18.200.1/24"]})"),
       "t.json: provider.pools[0].addresses[0]: \"198.18.200.1/24\" is not a network ADDR/LEN "
       "(host bits set?)"},
      {pools(R"({"name": "edge", "addresses": ["198.18.200.9-198.18.200.1"]})"),
       "t.json: provider.pools[0].addresses[0]: \"198.18.200.9-198.18.200.1\" ends before it "
       "starts"},
      {pools(R"({"name": "edge", "addresses": ["198.18.200.1-2001:db8::1"]})"),
       "t.json: provider.pools[0].addresses[0]: \"198.18.200.1-2001:db8::1\" mixes IPv4 and "
       "IPv6"},
      {pools(R"({"name": "edge", "addresses": ["edge"]})"),
       "t.json: provider.pools[0].addresses[0]: \"edge\" is not an address, a network ADDR/LEN "
       "or a range FIRST-LAST"},
      {pools(R"({"name": "a", "addresses": ["198.18.200.0/24"]}, {"name": "a", "addresses": ["198.18.201.0/24"]})"),
       "t.json: provider.pools[1].name: a pool named \"a\" is already defined"},
      {pools(R"({"name": "a", "addresses": ["198.18.200.0/24"]}, {"name": "b", "addresses": ["198.18.200.128-198.18.201.5"]})"),
       "t.json: provider.pools[1].addresses: 198.18.200.128-198.18.201.5 overlaps pool \"a\" "
       "(provider.pools[0].addresses[0]: 198.18.200.0-198.18.200.255)"},
      {pools(R"({"name": "a", "addresses": ["198.18.200.0/24"], "service_labels": ["x"]})"),
       "t.json: provider.pools[0].service_labels: expected an object of label names and values, "
       "got [\"x\"]"},
      {pools(R"({"name": "a", "addresses": ["198.18.200.0/24"], "service_labels": {"tier": 1}})"),
       "t.json: provider.pools[0].service_labels.tier: expected a string, got 1"},
      {pools(R"({"name": "a", "addresses": ["198.18.200.0/24"], "auto": false})"),
       "t.json: provider.pools[0]: unknown key \"auto\"; known keys: name, addresses, avoid, "
       "auto_assign, namespaces, service_labels"},
  });
}

TEST(ConfigErrors, ProviderElection) {
  auto election = [](std::string_view members) {
    return "{\"provider\": {\"election\": {" + std::string(members) + "}}}";
  };
  expect_errors({
      {election(R"("lease_name": "Magline")"),
       "t.json: provider.election.lease_name: expected a Lease name (lowercase letters, digits, "
       "'-' and '.'; at most 253), got \"Magline\""},
      {election(R"("lease_namespace": "a.b")"),
       "t.json: provider.election.lease_namespace: expected a namespace (lowercase letters, "
       "digits and '-'; at most 63), got \"a.b\""},
      {election(R"("identity": "edge_1")"),
       "t.json: provider.election.identity: expected an identity that makes a Lease name "
       "magline-node-IDENTITY (lowercase letters, digits, '-' and '.'; at most 240), got "
       "\"edge_1\""},
      {election(R"("lease_duration_ms": 1500)"),
       "t.json: provider.election.lease_duration_ms: expected whole seconds (a Lease holds "
       "seconds), got 1500"},
      {election(R"("lease_duration_ms": 10000)"),
       "t.json: provider.election.renew_deadline_ms: renew_deadline_ms 10000 must be below "
       "lease_duration_ms 10000"},
      {election(R"("renew_deadline_ms": 2400)"),
       "t.json: provider.election.retry_period_ms: retry_period_ms 2000 must be below "
       "renew_deadline_ms / 1.2 (2400 / 1.2)"},
      {election(R"("retry_period_ms": 0)"),
       "t.json: provider.election.retry_period_ms: expected an integer in 1..3600000, got 0"},
      {election(R"("lease": "x")"),
       "t.json: provider.election: unknown key \"lease\"; known keys: lease_name, "
       "lease_namespace, identity, lease_duration_ms, renew_deadline_ms, retry_period_ms"},
  });
}

}  // namespace
}  // namespace magline::cfg
