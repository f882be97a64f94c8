// The services the forwarder's packet tables run against (forwarder_test.cpp,
// forwarder_icmp_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {

// The services every table runs against.
class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    using dp::ForwardMode;
    using dp::Protocol;
    h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                  {{"198.18.1.10", 8080}}));
    h.add(service("dns", "198.18.100.2", 53, Protocol::udp, ForwardMode::dnat,
                  {{"198.18.1.20", 5353}}));
    h.add(service("static", "198.18.100.3", 80, Protocol::tcp, ForwardMode::dsr_l2,
                  {{"198.18.1.30", 80}}));
    h.add(service("diameter", "198.18.100.4", 3868, Protocol::sctp, ForwardMode::full_nat,
                  {{"198.18.1.40", 3868}}));
    h.add(service("web6", "2001:db8:100::1", 80, Protocol::tcp, ForwardMode::full_nat,
                  {{"2001:db8::10", 8080}}));
    h.add(service("dns6", "2001:db8:100::2", 53, Protocol::udp, ForwardMode::dnat,
                  {{"2001:db8::20", 53}}));
    auto empty = service("empty", "198.18.100.5", 80, Protocol::tcp, ForwardMode::full_nat, {});
    h.add(empty);
    auto empty_udp = service("empty-udp", "198.18.100.5", 53, Protocol::udp,
                             ForwardMode::full_nat, {});
    h.add(empty_udp);
    auto dropping = service("dropping", "198.18.100.6", 80, Protocol::tcp,
                            ForwardMode::full_nat, {});
    dropping.no_backends = dp::NoBackends::drop;
    h.add(dropping);
    auto ranged = service("ranged", "198.18.100.7", 80, Protocol::tcp, ForwardMode::full_nat,
                          {{"198.18.1.10", 8080}});
    ranged.source_ranges = {*dp::parse_prefix("198.18.20.0/24", dp::HostBits::reject)};
    h.add(ranged);
    auto far = service("far", "198.18.100.8", 80, Protocol::tcp, ForwardMode::full_nat,
                       {{"203.0.113.10", 80}});  // no route: outside every subnet
    h.add(far);
    for (const char* b : {"198.18.1.10", "198.18.1.20", "198.18.1.30", "198.18.1.40",
                          "2001:db8::10", "2001:db8::20"}) {
      h.neighbor(b, kBackendMac);
    }
  }

  Harness h;
};

}  // namespace magline::test
