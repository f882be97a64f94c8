// The steering the forwarder asks (dataplane/steering.hpp): where the NIC delivers a tuple, and
// which full-NAT source ports bring replies back to the worker that chose them, with RSS
// predicted in software and with the rte_flow port partition (whose rules partition_rules()
// builds for the DPDK adapter).
#include "dataplane/steering.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace magline::dp {
namespace {

constexpr uint8_t kKey[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

IpAddr ip(const char* s) { return *parse_ip(s); }

FlowKey reply_to(const char* snat, uint16_t port, uint8_t proto = kProtoTcp) {
  FlowKey k;
  const IpAddr b = ip("198.18.1.10"), a = ip(snat);
  k.family = a.family;
  k.src = b.bytes;
  k.sport = 8080;
  k.dst = a.bytes;
  k.dport = port;
  k.proto = proto;
  return k;
}

RssSteering rss(uint16_t queues) {
  std::vector<uint16_t> reta(128);
  for (size_t i = 0; i < reta.size(); ++i) reta[i] = uint16_t(i % queues);
  return std::move(RssSteering::create(kKey, reta, RssTypes{true, true, true})).value();
}

bool always(void*, uint16_t) { return true; }

TEST(PartitionRules, EveryPortOfEveryAddressAndProtocolHasExactlyOneQueue) {
  const std::vector<IpAddr> addrs = {ip("198.18.0.1"), ip("2001:db8::1")};
  const auto rules = partition_rules(addrs, 4);
  EXPECT_EQ(rules.size(), 2u * 2u * 4u);  // addresses x protocols x workers
  for (const IpAddr& a : addrs) {
    for (const uint8_t proto : {kProtoTcp, kProtoUdp}) {
      for (uint32_t p = 0; p < 65536; p += 97) {
        int matches = 0;
        for (const PartitionRule& r : rules) {
          if (r.addr == a && r.proto == proto && (p & r.mask) == r.value) {
            ++matches;
            EXPECT_EQ(r.queue, RssWorkers::partition_owner(uint16_t(p), 4));
          }
        }
        EXPECT_EQ(matches, 1) << "port " << p;
      }
    }
  }
  EXPECT_EQ(partition_rules(addrs, 4, true, false).size(), 2u * 4u);
  EXPECT_EQ(partition_rules(addrs, 1).size(), 2u * 2u);  // one queue takes everything
  EXPECT_TRUE(partition_rules(addrs, 3).empty());         // no mask partitions by three
  EXPECT_TRUE(partition_rules(addrs, 0).empty());
}

TEST(RssWorkers, PartitionedAddressesGoByTheirRulesAndEverythingElseByRss) {
  const IpAddr snat = ip("198.18.0.1");
  RssWorkers steering({PortSteering{rss(4), {snat}, 4}});
  // TCP and UDP to the partitioned address: the rules decide, whatever RSS would say.
  for (uint16_t p = 1024; p < 1200; ++p) {
    EXPECT_EQ(steering.worker_of(reply_to("198.18.0.1", p), 0), p & 3);
    EXPECT_EQ(steering.worker_of(reply_to("198.18.0.1", p, kProtoUdp), 0), p & 3);
  }
  // SCTP (no rule) and other addresses: RSS, as predicted in software.
  const RssSteering model = rss(4);
  for (uint16_t p = 1024; p < 1200; ++p) {
    const FlowKey sctp = reply_to("198.18.0.1", p, kProtoSctp);
    EXPECT_EQ(steering.worker_of(sctp, 0), model.queue_of(sctp));
    const FlowKey other = reply_to("198.18.0.2", p);
    EXPECT_EQ(steering.worker_of(other, 0), model.queue_of(other));
  }
}

TEST(RssWorkers, SourcePortsComeFromTheWorkersOwnShareWithRulesAndFromRssWithout) {
  RssWorkers ruled({PortSteering{rss(4), {ip("198.18.0.1")}, 4}});
  RssWorkers predicted({PortSteering{rss(4), {}, 4}});
  for (uint16_t worker = 0; worker < 4; ++worker) {
    for (uint16_t first = 1024; first < 1124; ++first) {
      for (RssWorkers* s : {&ruled, &predicted}) {
        const FlowKey k = reply_to("198.18.0.1", 0);
        const auto port = s->find_reply_port(k, 0, worker, first, 1024, 65535, always, nullptr, 8);
        ASSERT_TRUE(port.has_value());
        EXPECT_EQ(s->worker_of(reply_to("198.18.0.1", *port), 0), worker);
      }
    }
  }
  // The bound on refusals holds with rules as without.
  const auto none = ruled.find_reply_port(reply_to("198.18.0.1", 0), 0, 1, 1024, 1024, 65535,
                                          [](void*, uint16_t) { return false; }, nullptr, 5);
  EXPECT_FALSE(none.has_value());
}

TEST(SingleWorker, EveryTupleReachesTheOneWorkerAndAnyFreePortWillDo) {
  SingleWorker one(1);
  EXPECT_EQ(one.worker_of(reply_to("198.18.0.1", 5000), 0), 1);
  const auto port = one.find_reply_port(
      reply_to("198.18.0.1", 0), 0, 1, 2000, 1024, 65535,
      [](void*, uint16_t p) { return p >= 2003; }, nullptr, 64);
  ASSERT_TRUE(port.has_value());
  EXPECT_EQ(*port, 2003);
  // Wraps around the range, and gives up after max_checks refusals.
  EXPECT_EQ(one.find_reply_port(reply_to("198.18.0.1", 0), 0, 1, 65535, 1024, 65535,
                                [](void*, uint16_t p) { return p == 1024; }, nullptr, 4),
            std::optional<uint16_t>(1024));
  EXPECT_FALSE(one.find_reply_port(reply_to("198.18.0.1", 0), 0, 1, 2000, 1024, 65535,
                                   [](void*, uint16_t) { return false; }, nullptr, 3)
                   .has_value());
}

}  // namespace
}  // namespace magline::dp
