// The exception path's TAP (control/kernel_tap.hpp) against the real kernel: the interface's
// configuration as the kernel reports it, pings over IPv4 and IPv6 answered by the kernel's own
// stack (with its ARP and neighbour discovery answered here, as Magline would), read()'s edge
// cases, and the refusals.
//
// In a network namespace of the binary's own: main() unshares one before any test runs, so
// nothing here touches the machine's interfaces, and every interface made goes with the
// process. Without the privilege for that (not root: EPERM), a user namespace is tried, which
// gives the capabilities inside it where unprivileged user namespaces are allowed; failing that,
// every test is skipped. Addresses: 198.18.0.0/15 (RFC 2544) and 2001:db8::/32 (RFC 3849).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "control/kernel_tap.hpp"
#include "dataplane/arp_nd.hpp"
#include "dataplane/bytes.hpp"
#include "dataplane/parse.hpp"
#include "tests/support/own_netns.hpp"
#include "tests/support/packet_builder.hpp"

using namespace magline;
using test::Bytes;
using test::Packet;

namespace {

// Why the tests cannot run here, or "" when main() made the namespace.
std::string g_skip = "main() did not run";

#define REQUIRE_NAMESPACE() \
  if (!g_skip.empty()) GTEST_SKIP() << g_skip

constexpr test::Mac kTapMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};   // the "port"
constexpr test::Mac kPeerMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x02};  // a host on its link
constexpr char kName[] = "mgltap0";
constexpr auto kWait = std::chrono::seconds(2);

dp::IfAddr if_addr(const char* text, uint8_t len) {
  return dp::IfAddr{*dp::parse_ip(text), len};
}

control::KernelTapSpec spec() {
  control::KernelTapSpec s;
  s.name = kName;
  s.mac = dp::MacAddr{kTapMac};
  s.mtu = 1400;
  s.addrs = {if_addr("198.18.0.1", 24), if_addr("2001:db8::1", 64)};
  return s;
}

std::unique_ptr<control::KernelTap> open_tap(const control::KernelTapSpec& s) {
  auto r = control::KernelTap::open(s);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : nullptr;
}

ifreq ifreq_for(const char* name) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  return ifr;
}

std::string proc_conf(const char* key) {
  std::ifstream f(std::string("/proc/sys/net/ipv6/conf/") + kName + "/" + key);
  std::string v;
  f >> v;
  return v;
}

// The next frame the kernel sends, waiting for it with poll() until `deadline`.
std::optional<Bytes> next_frame(control::KernelTap& tap,
                                std::chrono::steady_clock::time_point deadline) {
  Bytes buf(tap.frame_capacity());
  for (;;) {
    const ssize_t n = tap.read(buf);
    EXPECT_GE(n, 0) << std::strerror(errno);
    if (n > 0) {
      buf.resize(size_t(n));
      return buf;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (n < 0 || left.count() <= 0) return std::nullopt;
    pollfd p{tap.fd(), POLLIN, 0};
    ::poll(&p, 1, int(left.count()));
  }
}

std::string describe(const dp::Parsed& p) {
  switch (p.l3) {
    case dp::L3::arp:
      return std::string(p.arp.op == dp::kArpRequest ? "ARP request" : "ARP reply") + " for " +
             dp::to_string(p.arp.target_ip) + " from " + dp::to_string(p.arp.sender_ip);
    case dp::L3::ipv4:
    case dp::L3::ipv6:
      return dp::to_string(p.key.src_addr()) + " > " + dp::to_string(p.key.dst_addr()) + " proto " +
             std::to_string(p.key.proto) + " type " + std::to_string(p.icmp_type);
    case dp::L3::none:
      break;
  }
  return "ether type " + std::to_string(p.ether_type);
}

// Reads what the kernel sends until an ICMP or ICMPv6 echo reply, doing what the peer's stack
// would meanwhile: an ARP request or a neighbour solicitation for `peer` gets its answer. Every
// frame before the reply is listed in `seen` (with IPv6, the kernel's MLD reports and router
// solicitations too).
std::optional<Bytes> await_echo_reply(control::KernelTap& tap, const char* peer,
                                      std::vector<std::string>& seen) {
  const dp::IpAddr peer_ip = *dp::parse_ip(peer);
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::optional<Bytes> f = next_frame(tap, deadline)) {
    dp::Parsed p;
    if (dp::parse(*f, p) != dp::DropReason::none) {
      seen.push_back("unparsable frame of " + std::to_string(f->size()) + " bytes");
      continue;
    }
    seen.push_back(describe(p));
    if (p.l3 == dp::L3::arp && p.arp.op == dp::kArpRequest && p.arp.target_ip == peer_ip) {
      EXPECT_EQ(dp::MacAddr::from(p.arp.sender_mac), dp::MacAddr{kTapMac});
      const std::string asker = dp::to_string(p.arp.sender_ip);
      EXPECT_TRUE(tap.write(Packet()
                                .eth(kPeerMac, kTapMac)
                                .arp(dp::kArpReply, kPeerMac, peer, kTapMac, asker)
                                .bytes()));
      seen.back() += " (answered)";
      continue;
    }
    if (p.l3 == dp::L3::ipv6 && p.key.proto == dp::kProtoIcmpv6 &&
        p.icmp_type == dp::kNdNeighborSolicit && size_t(p.l3_end - p.l4_off) >= dp::kNdBodyLen &&
        dp::IpAddr::v6(f->data() + p.l4_off + 8) == peer_ip) {
      const std::string asker = dp::to_string(p.key.src_addr());
      const test::Mac asker_mac{(*f)[6], (*f)[7], (*f)[8], (*f)[9], (*f)[10], (*f)[11]};
      EXPECT_TRUE(tap.write(Packet()
                                .eth(kPeerMac, asker_mac)
                                .ipv6(peer, asker)
                                .ndp_na(peer, dp::kNaSolicited | dp::kNaOverride, kPeerMac)
                                .bytes()));
      seen.back() += " (answered)";
      continue;
    }
    const bool echo_reply = (p.l3 == dp::L3::ipv4 && p.key.proto == dp::kProtoIcmp &&
                             p.icmp_type == dp::kIcmpEchoReply) ||
                            (p.l3 == dp::L3::ipv6 && p.key.proto == dp::kProtoIcmpv6 &&
                             p.icmp_type == dp::kIcmpv6EchoReply);
    if (echo_reply) return f;
  }
  return std::nullopt;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v)
    s += "\n  " + x;
  return s.empty() ? " none" : s;
}

// A ping from the peer to the TAP's address and the kernel's answer, checked field by field.
void ping(control::KernelTap& tap, const char* peer, const char* local, bool v6) {
  constexpr uint16_t kId = 0x4d47;
  constexpr uint16_t kSeq = 7;
  const std::string data = "magline exception path";
  Packet request = Packet().eth(kPeerMac, kTapMac);
  if (v6) {
    request.ipv6(peer, local);
  } else {
    request.ipv4(peer, local);
  }
  ASSERT_TRUE(tap.write(request.icmp_echo(kId, kSeq).payload(data).bytes()));

  std::vector<std::string> seen;
  const std::optional<Bytes> reply = await_echo_reply(tap, peer, seen);
  ASSERT_TRUE(reply) << "no echo reply within " << kWait.count()
                     << " s; frames from the kernel:" << joined(seen);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(*reply, p), dp::DropReason::none);
  EXPECT_EQ(dp::MacAddr::from(reply->data()), dp::MacAddr{kPeerMac});
  EXPECT_EQ(dp::MacAddr::from(reply->data() + 6), dp::MacAddr{kTapMac});
  EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(local));
  EXPECT_EQ(p.key.dst_addr(), *dp::parse_ip(peer));
  EXPECT_EQ(p.icmp_id, kId);
  EXPECT_EQ(dp::load_be16(reply->data() + p.l4_off + 6), kSeq);
  const size_t payload_off = p.l4_off + dp::kIcmpHeaderLen;
  EXPECT_EQ(std::string(reply->begin() + long(payload_off), reply->begin() + p.l3_end), data);
  EXPECT_EQ(test::checksum_errors(*reply), "");
  std::cout << "frames from the kernel, up to its echo reply:" << joined(seen) << "\n";
}

TEST(KernelTap, IsConfiguredAsThePort) {
  REQUIRE_NAMESPACE();
  const auto tap = open_tap(spec());
  ASSERT_TRUE(tap);
  EXPECT_EQ(tap->name(), kName);
  EXPECT_EQ(tap->ifindex(), int(if_nametoindex(kName)));
  EXPECT_GE(tap->fd(), 0);
  EXPECT_EQ(tap->frame_capacity(), 1400u + 18u);

  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  ifreq ifr = ifreq_for(kName);
  ASSERT_EQ(::ioctl(s, SIOCGIFHWADDR, &ifr), 0) << std::strerror(errno);
  EXPECT_EQ(ifr.ifr_hwaddr.sa_family, ARPHRD_ETHER);
  EXPECT_EQ(dp::MacAddr::from(reinterpret_cast<const uint8_t*>(ifr.ifr_hwaddr.sa_data)),
            dp::MacAddr{kTapMac});
  ifr = ifreq_for(kName);
  ASSERT_EQ(::ioctl(s, SIOCGIFMTU, &ifr), 0) << std::strerror(errno);
  EXPECT_EQ(ifr.ifr_mtu, 1400);
  ifr = ifreq_for(kName);
  ASSERT_EQ(::ioctl(s, SIOCGIFFLAGS, &ifr), 0) << std::strerror(errno);
  EXPECT_TRUE(ifr.ifr_flags & IFF_UP);
  ::close(s);

  EXPECT_EQ(proc_conf("autoconf"), "0");
  EXPECT_EQ(proc_conf("accept_dad"), "0");

  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  std::vector<std::string> found;
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || std::strcmp(a->ifa_name, kName) != 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    int len = 0;
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, text,
                sizeof text);
      const uint32_t mask =
          ntohl(reinterpret_cast<const sockaddr_in*>(a->ifa_netmask)->sin_addr.s_addr);
      len = __builtin_popcount(mask);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr, text,
                sizeof text);
      for (uint8_t b : reinterpret_cast<const sockaddr_in6*>(a->ifa_netmask)->sin6_addr.s6_addr)
        len += __builtin_popcount(b);
    } else {
      continue;
    }
    found.push_back(std::string(text) + "/" + std::to_string(len));
  }
  freeifaddrs(list);
  const auto has = [&](const std::string& a) {
    return std::find(found.begin(), found.end(), a) != found.end();
  };
  EXPECT_TRUE(has("198.18.0.1/24")) << joined(found);
  EXPECT_TRUE(has("2001:db8::1/64")) << joined(found);
}

// The kernel answers for the IPv4 address; it asks for the peer's MAC first (ARP), unless it
// learnt it from the request.
TEST(KernelTap, AnswersAPingOverIpv4) {
  REQUIRE_NAMESPACE();
  const auto tap = open_tap(spec());
  ASSERT_TRUE(tap);
  ping(*tap, "198.18.0.2", "198.18.0.1", false);
}

// At once after open(): an address without its local route yet (DAD running, or the kernel's
// DAD work not run yet) would drop the request, so an answer shows IFA_F_NODAD and open()'s
// wait at work. The kernel's neighbour solicitation is answered with an
// advertisement carrying the target link-layer address.
TEST(KernelTap, AnswersAPingOverIpv6) {
  REQUIRE_NAMESPACE();
  const auto tap = open_tap(spec());
  ASSERT_TRUE(tap);
  ping(*tap, "2001:db8::2", "2001:db8::1", true);
}

// An MTU below IPv6's minimum (1280) takes IPv6 off the interface, with its sysctl files (the
// missing files are skipped) and its link-local address: with one IPv4 address, the kernel has
// nothing to say on its own, so the queue is empty until it answers an ARP request.
TEST(KernelTap, ReadReturnsZeroWhenNothingWaitsAndRefusesToTruncate) {
  REQUIRE_NAMESPACE();
  control::KernelTapSpec s = spec();
  s.mtu = 1000;
  s.addrs = {if_addr("198.18.0.1", 24)};
  const auto tap = open_tap(s);
  ASSERT_TRUE(tap);
  Bytes buf(tap->frame_capacity());
  EXPECT_EQ(tap->read(buf), 0);

  const Bytes who_has = Packet()
                            .eth(kPeerMac, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
                            .arp(dp::kArpRequest, kPeerMac, "198.18.0.2", {}, "198.18.0.1")
                            .bytes();
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  ASSERT_TRUE(tap->write(who_has));
  const std::optional<Bytes> reply = next_frame(*tap, deadline);
  ASSERT_TRUE(reply);
  dp::Parsed p;
  ASSERT_EQ(dp::parse(*reply, p), dp::DropReason::none);
  EXPECT_EQ(p.l3, dp::L3::arp);
  EXPECT_EQ(p.arp.op, dp::kArpReply);
  EXPECT_EQ(tap->read(buf), 0);

  // A buffer that the frame fills exactly: the whole frame.
  ASSERT_TRUE(tap->write(who_has));
  pollfd pf{tap->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 2000), 1);
  EXPECT_EQ(tap->read(std::span(buf).first(reply->size())), ssize_t(reply->size()));
  EXPECT_TRUE(std::equal(reply->begin(), reply->end(), buf.begin()));
  // One byte short: refused, not cut, and gone.
  ASSERT_TRUE(tap->write(who_has));
  ASSERT_EQ(::poll(&pf, 1, 2000), 1);
  errno = 0;
  EXPECT_EQ(tap->read(std::span(buf).first(reply->size() - 1)), -1);
  EXPECT_EQ(errno, EMSGSIZE);
  EXPECT_EQ(tap->read(buf), 0);
}

TEST(KernelTap, RefusesInvalidNames) {
  REQUIRE_NAMESPACE();
  for (const char* name : {"", "mgl-sixteen-char", "mgltap%d"}) {
    control::KernelTapSpec s = spec();
    s.name = name;
    const auto r = control::KernelTap::open(s);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.error().message.find("invalid interface name"), std::string::npos)
        << r.error().message;
  }
}

TEST(KernelTap, RefusesIpv6BelowItsMinimumMtu) {
  REQUIRE_NAMESPACE();
  control::KernelTapSpec s = spec();
  s.mtu = 1279;
  const auto r = control::KernelTap::open(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("2001:db8::1/64"), std::string::npos) << r.error().message;
  EXPECT_EQ(if_nametoindex(kName), 0u);
}

// TUNSETIFF with IFF_TUN_EXCL: an existing interface of the name, TAP or not, held or not, is
// refused (EBUSY) rather than taken over; the one that exists is not disturbed.
TEST(KernelTap, RefusesANameInUse) {
  REQUIRE_NAMESPACE();
  const auto first = open_tap(spec());
  ASSERT_TRUE(first);
  const auto second = control::KernelTap::open(spec());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find(kName), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find("TUNSETIFF"), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find(std::strerror(EBUSY)), std::string::npos)
      << second.error().message;
  EXPECT_EQ(first->ifindex(), int(if_nametoindex(kName)));
  ping(*first, "198.18.0.2", "198.18.0.1", false);

  control::KernelTapSpec other = spec();
  other.name = "lo";
  EXPECT_FALSE(control::KernelTap::open(other).ok());

  // A persistent TAP that no fd holds (`ip tuntap add`): not taken over either. It goes with
  // the namespace.
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ifreq ifr = ifreq_for("mgltap1");
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0) << std::strerror(errno);
  ASSERT_EQ(::ioctl(fd, TUNSETPERSIST, 1), 0) << std::strerror(errno);
  ::close(fd);
  ASSERT_NE(if_nametoindex("mgltap1"), 0u);
  other.name = "mgltap1";
  const auto persistent = control::KernelTap::open(other);
  ASSERT_FALSE(persistent.ok());
  EXPECT_NE(persistent.error().message.find(std::strerror(EBUSY)), std::string::npos)
      << persistent.error().message;
}

// A failure after the interface exists (the kernel refuses an address) leaves no interface; so
// does the destructor.
TEST(KernelTap, LeavesNothingBehind) {
  REQUIRE_NAMESPACE();
  control::KernelTapSpec s = spec();
  s.addrs.push_back(if_addr("198.18.1.1", 33));
  const auto r = control::KernelTap::open(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("198.18.1.1/33"), std::string::npos) << r.error().message;
  EXPECT_EQ(if_nametoindex(kName), 0u);

  auto tap = open_tap(spec());
  ASSERT_TRUE(tap);
  EXPECT_NE(if_nametoindex(kName), 0u);
  tap.reset();
  EXPECT_EQ(if_nametoindex(kName), 0u);
}

}  // namespace

// The namespace is made before any test runs, while the process has one thread (a user
// namespace requires it).
int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  g_skip = magline::test::enter_own_netns();
  if (g_skip.empty() && ::access("/dev/net/tun", R_OK | W_OK) != 0) {
    g_skip = "/dev/net/tun: " + std::string(std::strerror(errno));
  }
  const int rc = RUN_ALL_TESTS();
  return rc == 0 && !g_skip.empty() ? 77 : rc;  // 77: skipped, to meson as to automake
}
