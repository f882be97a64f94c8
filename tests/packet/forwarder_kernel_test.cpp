// The exception path through the forwarding pipeline: frames for the node itself that no
// service and no connection claims go to the kernel interface of their port, within the
// worker's share; without a kernel interface they are dropped as before.
#include <gtest/gtest.h>

#include <utility>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/forwarder_fixture.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::kTcpAck;
using dp::kTcpSyn;

void expect_kernel(const Outcome& o) {
  EXPECT_EQ(o.verdict, Verdict::slow) << to_string(o);
  EXPECT_EQ(o.slow, dp::SlowReason::kernel) << to_string(o);
}

void expect_drop(const Outcome& o, DropReason r) {
  EXPECT_EQ(o.verdict, Verdict::drop) << to_string(o);
  EXPECT_EQ(o.reason, r) << to_string(o);
}

// SSH, a BGP session's segments, anything to the node's own addresses.
Bytes ssh_syn() {
  return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kLbIp).tcp(50000, 22, kTcpSyn).bytes();
}
Bytes ssh_syn6() {
  return Packet().eth(kRouterMac, kLbMac).ipv6("2001:db8::a", kLbIp6).tcp(50000, 22, kTcpSyn)
      .bytes();
}

TEST_F(ForwarderTest, FramesForTheNodeGoToItsKernelInterface) {
  expect_drop(h.run(ssh_syn()), DropReason::no_service);  // no kernel interface
  h.kernel_interface();
  expect_kernel(h.run(ssh_syn()));
  expect_kernel(h.run(ssh_syn6()));
  expect_kernel(h.run(Packet().eth(kRouterMac, kLbMac).ipv4("198.18.0.254", kLbIp)
                          .tcp(179, 40123, kTcpSyn | kTcpAck).bytes()));  // a BGP peer answers
  expect_kernel(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kLbIp).udp(40000, 53)
                          .payload("q").bytes()));
  // The kernel's own link-local address (BGP over IPv6 link-local, say).
  expect_kernel(h.run(Packet().eth(kRouterMac, kLbMac).ipv6("fe80::a", "fe80::1")
                          .tcp(50000, 179, kTcpSyn).bytes()));
  // Protocols without ports (GRE here).
  expect_kernel(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kLbIp).protocol(47)
                          .payload("gre").bytes()));
  EXPECT_EQ(h.forwarder().counters().to_kernel, 6u);
  h.kernel_interface(false);
  expect_drop(h.run(ssh_syn6()), DropReason::no_service);
}

TEST_F(ForwarderTest, ServicesAndConnectionsComeBeforeTheKernel) {
  h.kernel_interface();
  // A full-NAT connection's replies come to a node address: they are the connection's.
  const uint16_t snat = handshake(h, 40000, false);
  ASSERT_NE(snat, 0);
  const Outcome reply = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                                  .tcp(8080, snat, kTcpAck).payload("hello").bytes());
  EXPECT_EQ(reply.verdict, Verdict::tx) << to_string(reply);
  // A VIP's port no frontend has is not the node's: dropped, never the kernel's.
  expect_drop(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                        .tcp(50000, 22, kTcpSyn).bytes()),
              DropReason::no_service);
  // Nor a destination that is none of the node's addresses.
  expect_drop(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.0.77")
                        .tcp(50000, 22, kTcpSyn).bytes()),
              DropReason::no_service);
  // Pings to the node are Magline's to answer, whatever the kernel does.
  const Outcome ping = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kLbIp)
                                 .icmp_echo(7, 1).bytes());
  EXPECT_EQ(ping.verdict, Verdict::slow);
  EXPECT_EQ(ping.slow, dp::SlowReason::echo);
}

TEST_F(ForwarderTest, IcmpForTheNodesOwnTrafficGoesToItsKernel) {
  const Bytes echo_reply = Packet().eth(kRouterMac, kLbMac).ipv4("198.18.0.254", kLbIp)
                               .icmp_echo(7, 1, true).bytes();
  // The kernel's UDP to a far host is unreachable: the error quotes it.
  const Bytes unreachable =
      Packet().eth(kRouterMac, kLbMac).ipv4("198.18.0.254", kLbIp)
          .icmp_error(3, 3, Packet().ipv4(kLbIp, "198.18.50.1").udp(40000, 53).payload("q"))
          .bytes();
  expect_drop(h.run(echo_reply), DropReason::icmp_unsupported);
  expect_drop(h.run(unreachable), DropReason::icmp_error_no_flow);
  h.kernel_interface();
  expect_kernel(h.run(echo_reply));
  expect_kernel(h.run(unreachable));
  // An ICMPv6 packet too big about the kernel's TCP (its SSH session's path MTU).
  expect_kernel(h.run(Packet().eth(kRouterMac, kLbMac).ipv6("2001:db8::fe", kLbIp6)
                          .icmp_error(2, 0, Packet().ipv6(kLbIp6, "2001:db8:50::1")
                                                .tcp(22, 50000, kTcpAck).payload("data"),
                                      Packet::kWhole, 1280)
                          .bytes()));
}

// A token bucket: kernel_rate a second, a tenth of a second's worth at once.
TEST(ForwarderKernel, TheKernelsShareIsBounded) {
  dp::ForwarderConfig config;
  config.kernel_rate = 1000;  // a frame a millisecond, 100 at once
  Harness h(config);
  h.kernel_interface();
  const auto send = [&h](int n, uint64_t now) {
    size_t kernel = 0, limited = 0;
    for (int i = 0; i < n; ++i) {
      const Outcome o = h.run(ssh_syn(), now);
      if (o.verdict == Verdict::slow && o.slow == dp::SlowReason::kernel) ++kernel;
      if (o.verdict == Verdict::drop && o.reason == DropReason::kernel_rate_limited) ++limited;
    }
    return std::pair{kernel, limited};
  };
  EXPECT_EQ(send(150, 5000), (std::pair<size_t, size_t>{100, 50}));  // the burst, then none
  EXPECT_EQ(send(20, 5010), (std::pair<size_t, size_t>{10, 10}));    // 10 ms: 10 more
  EXPECT_EQ(send(200, 9000), (std::pair<size_t, size_t>{100, 100}));  // full again, no more
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::kernel_rate_limited)], 160u);
  EXPECT_EQ(h.forwarder().counters().to_kernel, 210u);
}

TEST(ForwarderKernel, ARateOfZeroClosesTheKernelsWay) {
  dp::ForwarderConfig config;
  config.kernel_rate = 0;
  Harness h(config);
  h.kernel_interface();
  expect_drop(h.run(ssh_syn()), DropReason::kernel_rate_limited);
}

}  // namespace
}  // namespace magline::test
