// IP fragments through the forwarding pipeline: the later fragments of a datagram follow the
// connection its first fragment showed (dataplane/fragments.hpp), in every mode and both
// directions; one that comes before its first fragment waits for it (held, then released).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/bytes.hpp"
#include "dataplane/checksum.hpp"
#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;

constexpr const char* kVip = "198.18.100.2";
constexpr const char* kVip6 = "2001:db8:100::2";
constexpr const char* kBackend = "198.18.1.20";
constexpr const char* kBackend6 = "2001:db8::20";

// The three fragments of one UDP datagram of 3000 bytes from `src`:`sport` to `dst`:53: the
// first (with the UDP header: 8 + 1472 bytes of data), two more of 1480 and 40.
// The 2,992 bytes of data the datagrams below carry, in the pieces the fragments hold.
Bytes whole_data() {
  Bytes d(1472, 'a');
  d.insert(d.end(), 1480, 'b');
  d.insert(d.end(), 40, 'c');
  return d;
}

std::vector<Bytes> datagram(const char* src, const char* dst, uint16_t sport, uint16_t dport,
                            uint32_t id, const Mac& from = kRouterMac) {
  const bool v6 = std::string(src).find(':') != std::string::npos;
  auto base = [&] {
    Packet p = Packet().eth(from, kLbMac);
    return v6 ? p.ipv6(src, dst) : p.ipv4(src, dst);
  };
  return {base().fragment(0, true, id).udp(sport, dport).payload(Bytes(1472, 'a')).bytes(),
          base().fragment(1480, true, id).protocol(dp::kProtoUdp).payload(Bytes(1480, 'b'))
              .bytes(),
          base().fragment(2960, false, id).protocol(dp::kProtoUdp).payload(Bytes(40, 'c'))
              .bytes()};
}

dp::Parsed parsed(const Bytes& frame) {
  dp::Parsed p;
  EXPECT_EQ(dp::parse(frame, p), DropReason::none);
  return p;
}

class ForwarderFragments : public ::testing::Test {
 protected:
  void SetUp() override {
    h.neighbor(kBackend, kBackendMac);
    h.neighbor(kBackend6, kBackendMac);
  }
  Harness h;
};

// Full-NAT: every fragment leaves from Magline's address to the backend, with the datagram's
// identification; the backend's answer, in fragments too, goes back to the client from the VIP.
TEST_F(ForwarderFragments, FullNatTakesEveryFragmentThroughTheConnectionBothWays) {
  h.add(service("dns", kVip, 53, Protocol::udp, ForwardMode::full_nat, {{kBackend, 5353}}));
  uint16_t snat = 0;
  for (const Bytes& f : datagram(kClient, kVip, 40000, 53, 4242)) {
    const Outcome o = h.run(f);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    const dp::Parsed p = parsed(o.frame);
    EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(kLbIp));
    EXPECT_EQ(p.key.dst_addr(), *dp::parse_ip(kBackend));
    EXPECT_EQ(p.frag_id, 4242u);
    EXPECT_EQ(o.frame.size(), f.size());
    if (p.first_fragment) snat = p.key.sport;
  }
  ASSERT_NE(snat, 0);
  for (const Bytes& f : datagram(kBackend, kLbIp, 5353, snat, 99, kBackendMac)) {
    const Outcome o = h.run(f);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    const dp::Parsed p = parsed(o.frame);
    EXPECT_EQ(p.key.src_addr(), *dp::parse_ip(kVip));
    EXPECT_EQ(p.key.dst_addr(), *dp::parse_ip(kClient));
    if (p.first_fragment) {
      EXPECT_EQ(p.key.sport, 53);
      EXPECT_EQ(p.key.dport, 40000);
    }
  }
  EXPECT_EQ(h.forwarder().counters().fragments, 6u);
  EXPECT_EQ(h.forwarder().counters().new_connections, 1u);
}

// The first fragment's UDP checksum covers the whole datagram: rewritten incrementally, it is
// the checksum of the rewritten datagram, right once the backend reassembles.
TEST_F(ForwarderFragments, TheReassembledDatagramsChecksumStaysRight) {
  h.add(service("dns", kVip, 53, Protocol::udp, ForwardMode::dnat, {{kBackend, 5353}}));
  // The first 1480 bytes of the whole datagram, cut as its sender would: MF, total length.
  auto first_of = [](Bytes whole) {
    whole.resize(14 + 20 + 1480);
    whole[14 + 6] |= 0x20;
    dp::store_be16(&whole[14 + 2], 20 + 1480);
    dp::store_be16(&whole[14 + 10], 0);
    dp::store_be16(&whole[14 + 10], dp::ipv4_header_checksum(&whole[14], 20));
    return whole;
  };
  const Bytes sent = first_of(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kVip).ip_id(7)
                                  .udp(40000, 53).payload(whole_data()).bytes());
  const Bytes want = first_of(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kBackend).ip_id(7)
                                  .ttl(63).udp(40000, 5353).payload(whole_data()).bytes());
  const Outcome o = h.run(sent);
  ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
  EXPECT_EQ(Bytes(o.frame.begin() + 14, o.frame.end()), Bytes(want.begin() + 14, want.end()));
}

TEST_F(ForwarderFragments, Ipv6AndDirectReturn) {
  h.add(service("dns6", kVip6, 53, Protocol::udp, ForwardMode::dnat, {{kBackend6, 53}}));
  h.add(service("static", kVip, 53, Protocol::udp, ForwardMode::dsr_l2, {{kBackend, 53}}));
  for (const Bytes& f : datagram(kClient6, kVip6, 40000, 53, 0x01020304)) {
    const Outcome o = h.run(f);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    EXPECT_EQ(parsed(o.frame).key.dst_addr(), *dp::parse_ip(kBackend6));
  }
  for (const Bytes& f : datagram(kClient, kVip, 40001, 53, 5)) {
    const Outcome o = h.run(f);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    EXPECT_EQ(Bytes(o.frame.begin() + 14, o.frame.end()), Bytes(f.begin() + 14, f.end()));
    EXPECT_EQ(Bytes(o.frame.begin(), o.frame.begin() + 6),
              Bytes(kBackendMac.begin(), kBackendMac.end()));
  }
  EXPECT_EQ(h.forwarder().counters().fragments, 6u);
}

// A later fragment before its first is held, and follows it when it comes (forwarded in the
// same burst, after it); the last one, after it, goes at once.
TEST_F(ForwarderFragments, ALaterFragmentBeforeItsFirstIsHeldAndFollowsIt) {
  h.add(service("dns", kVip, 53, Protocol::udp, ForwardMode::full_nat, {{kBackend, 5353}}));
  const std::vector<Bytes> d = datagram(kClient, kVip, 40000, 53, 11);
  Outcome o = h.run(d[1], 1000);
  EXPECT_EQ(o.verdict, Verdict::held) << to_string(o);
  EXPECT_EQ(h.forwarder().counters().fragments_held, 1u);
  o = h.run(d[0], 1001);
  ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
  const uint16_t sport = sport_of(o.frame);
  ASSERT_EQ(h.released.size(), 1u);
  ASSERT_EQ(h.released[0].verdict, Verdict::tx);
  const dp::Parsed second = parsed(h.released[0].frame);
  EXPECT_EQ(dp::to_string(second.key.dst_addr()), kBackend);
  EXPECT_EQ(dp::to_string(second.key.src_addr()), kLbIp);
  EXPECT_EQ(second.frag_offset, 1480);
  EXPECT_EQ(Bytes(h.released[0].frame.end() - 1480, h.released[0].frame.end()), Bytes(1480, 'b'));
  o = h.run(d[2], 1002);
  ASSERT_EQ(o.verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().fragments, 3u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::fragment_unmatched)], 0u);
  // The backend saw one datagram from one source port: its three pieces reassemble.
  EXPECT_NE(sport, 0);
}

// Fragments whose first never comes are held until newer ones displace them (64 per worker):
// then dropped and counted. One held longer than kFragmentTimeoutMs is not released.
TEST_F(ForwarderFragments, FragmentsWhoseFirstNeverComesAreDroppedWhenDisplaced) {
  h.add(service("dns", kVip, 53, Protocol::udp, ForwardMode::full_nat, {{kBackend, 5353}}));
  const std::vector<Bytes> late = datagram(kClient, kVip, 40000, 53, 7);
  EXPECT_EQ(h.run(late[1], 1000).verdict, Verdict::held);
  EXPECT_EQ(h.run(late[0], 1001 + dp::kFragmentTimeoutMs).verdict, Verdict::tx);
  EXPECT_TRUE(h.released.empty());  // too old to follow
  for (uint32_t id = 100; id < 100 + dp::FragmentHold::kSlots - 1; ++id) {
    EXPECT_EQ(h.run(datagram(kClient, kVip, 40000, 53, id)[1], 3000).verdict, Verdict::held);
  }
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::fragment_unmatched)], 0u);
  EXPECT_EQ(h.run(datagram(kClient, kVip, 40000, 53, 500)[1], 3000).verdict, Verdict::held);
  ASSERT_EQ(h.released.size(), 1u);  // the oldest, displaced
  EXPECT_EQ(h.released[0].verdict, Verdict::drop);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::fragment_unmatched)], 1u);
}

// A fragment of another datagram (another identification, protocol or source) is not taken
// for one that was seen: it waits for its own first fragment.
TEST_F(ForwarderFragments, TheIdentificationAddressesAndProtocolTellDatagramsApart) {
  h.add(service("dns", kVip, 53, Protocol::udp, ForwardMode::full_nat, {{kBackend, 5353}}));
  ASSERT_EQ(h.run(datagram(kClient, kVip, 40000, 53, 11)[0]).verdict, Verdict::tx);
  EXPECT_EQ(h.run(datagram(kClient, kVip, 40000, 53, 12)[1]).verdict, Verdict::held);
  EXPECT_EQ(h.run(datagram("198.18.10.2", kVip, 40000, 53, 11)[1]).verdict, Verdict::held);
  const Bytes tcp = Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kVip).fragment(1480, false, 11)
                        .protocol(dp::kProtoTcp).payload("x").bytes();
  EXPECT_EQ(h.run(tcp).verdict, Verdict::held);
  ASSERT_EQ(h.run(datagram(kClient, kVip, 40000, 53, 11)[0]).verdict, Verdict::tx);
  EXPECT_TRUE(h.released.empty());  // none of them was the first's
}

}  // namespace
}  // namespace magline::test
