// Floods and full tables: new flows that nothing confirms must not crowd out real
// connections, a SYN that evicts must not misdirect its burst's frames, and full-NAT's source
// ports must stay cheap to find as they run out.
#include <gtest/gtest.h>

#include <set>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpFin;
using dp::kTcpSyn;

// Floods through a 256-entry table, small enough to fill.
class ForwarderFlood : public ::testing::Test {
 protected:
  ForwarderFlood() : h(small_table()) {}
  static dp::ForwarderConfig small_table() {
    dp::ForwarderConfig c;
    c.flow_capacity = 256;
    return c;
  }
  // The web service (198.18.100.1:80 -> 198.18.1.10:8080), or dns (198.18.100.2:53 ->
  // 198.18.1.20:5353), in the given mode.
  void web(ForwardMode mode) {
    h.add(service("web", "198.18.100.1", 80, Protocol::tcp, mode, {{"198.18.1.10", 8080}}));
    h.neighbor("198.18.1.10", kBackendMac);
  }
  void dns(ForwardMode mode) {
    h.add(service("dns", "198.18.100.2", 53, Protocol::udp, mode, {{"198.18.1.20", 5353}}));
    h.neighbor("198.18.1.20", kBackendMac);
  }
  Harness h;
};

// A real client's connection to the web service in full-NAT after a flood: its handshake, then
// a request that leaves with the source port the handshake got.
void a_real_connection(Harness& h) {
  const uint16_t snat = handshake(h, 40000);
  ASSERT_NE(snat, 0);
  const Outcome data = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(40000, 80, kTcpAck).payload("GET /").bytes());
  ASSERT_EQ(data.verdict, Verdict::tx) << to_string(data);
  EXPECT_EQ(sport_of(data.frame), snat);
}

// An ACK flood of made-up tuples opens entries nothing confirms. They must not fill the table:
// a real connection still gets its entries (full-NAT cannot forward without one), and once
// established it survives the next flood.
TEST_F(ForwarderFlood, AnAckFloodCannotCrowdOutRealConnections) {
  web(ForwardMode::full_nat);
  flood(h, "198.18.100.1", 80, Protocol::tcp, 0);
  const auto& flows = h.forwarder().flows().stats();
  EXPECT_EQ(flows.occupied, flows.capacity);  // full of the flood's entries
  EXPECT_GT(flows.evicted_unconfirmed, 3000u);
  EXPECT_EQ(flows.insert_failures, 0u);

  const uint16_t snat = handshake(h, 40000);
  ASSERT_NE(snat, 0);

  flood(h, "198.18.100.1", 80, Protocol::tcp, 2000);
  const Outcome data = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(40000, 80, kTcpAck).payload("GET /").bytes());
  ASSERT_EQ(data.verdict, Verdict::tx) << to_string(data);
  EXPECT_EQ(sport_of(data.frame), snat);  // the same connection, not a new one
  const Outcome answer = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                                   .tcp(8080, snat, kTcpAck).payload("200 OK").bytes());
  ASSERT_EQ(answer.verdict, Verdict::tx) << to_string(answer);
  EXPECT_EQ(answer.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.1", kClient).ttl(63)
                              .tcp(80, 40000, kTcpAck).payload("200 OK").bytes());
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::flow_table_full)], 0u);
}

// A SYN flood of made-up sources (reliability.md bug class 6) fills the table with half-open
// entries; established connections are never evicted for them and keep their source ports.
TEST_F(ForwarderFlood, ASynFloodCannotEvictEstablishedConnections) {
  web(ForwardMode::full_nat);
  const uint16_t snat = handshake(h, 40000);
  ASSERT_NE(snat, 0);
  flood(h, "198.18.100.1", 80, Protocol::tcp, 0, 2000, kTcpSyn);
  EXPECT_GT(h.forwarder().flows().stats().evicted_half_open, 1000u);

  // A handshake in progress during the flood: half-open entries go nearest their deadline
  // (oldest) first, so a new SYN's entries outlive the flood's older ones until 8 newer SYNs
  // land in their buckets (here 32 buckets take 50 flood SYNs, 1 ms apart, before the
  // SYN-ACK).
  const Outcome syn2 = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(40001, 80, kTcpSyn).bytes(), 3100);
  ASSERT_EQ(syn2.verdict, Verdict::tx) << to_string(syn2);
  flood(h, "198.18.100.1", 80, Protocol::tcp, 2000, 50, kTcpSyn, 3101);
  const Outcome synack2 =
      h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                .tcp(8080, sport_of(syn2.frame), kTcpSyn | kTcpAck).bytes(), 3200);
  ASSERT_EQ(synack2.verdict, Verdict::tx) << to_string(synack2);
  const Outcome data = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(40000, 80, kTcpAck).payload("GET /").bytes());
  ASSERT_EQ(data.verdict, Verdict::tx) << to_string(data);
  EXPECT_EQ(sport_of(data.frame), snat);
  ASSERT_EQ(h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                      .tcp(8080, snat, kTcpAck).payload("200").bytes()).verdict, Verdict::tx);
}

// A SYN flood from made-up clients through full-NAT, as it happens: the backend answers every
// SYN with a SYN-ACK (to Magline's address, which sends it on to the made-up client). A SYN-ACK
// alone confirms nothing, so none of the flood's entries may become unevictable: every SYN is
// forwarded, and a real client still gets its connection.
TEST_F(ForwarderFlood, ASynFloodTheBackendAnswersCannotFillTheTable) {
  web(ForwardMode::full_nat);
  for (uint32_t i = 0; i < 2000; ++i) {
    const std::string src = flood_source(i);
    const Outcome syn = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), "198.18.100.1")
                                  .tcp(uint16_t(1024 + i), 80, kTcpSyn).bytes(), 1000 + i);
    ASSERT_EQ(syn.verdict, Verdict::tx) << i << ": " << to_string(syn);
    const Outcome synack = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                                     .tcp(8080, sport_of(syn.frame), kTcpSyn | kTcpAck).bytes(),
                                 1000 + i);
    ASSERT_EQ(synack.verdict, Verdict::tx) << i << ": " << to_string(synack);
  }
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::flow_table_full)], 0u);
  a_real_connection(h);
}

// Under L2 DSR Magline sees only the client's side, so a made-up client's SYN and blind ACK
// look like a real connection (the backend's RST to them bypasses Magline). The SYN writes
// nothing; the ACK's entry is unconfirmed, evicted first when the table is full, so a flood of
// them leaves room for new connections' entries instead of pinning the table for the
// established timeout.
TEST_F(ForwarderFlood, ADsrFloodOfBlindHandshakesLeavesRoomForNewConnections) {
  web(ForwardMode::dsr_l2);
  for (uint32_t i = 0; i < 1000; ++i) {
    const std::string src = flood_source(i);
    for (const uint8_t flags : {kTcpSyn, kTcpAck}) {
      const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), "198.18.100.1")
                                  .tcp(uint16_t(1024 + i), 80, flags).bytes(), 1000 + i);
      ASSERT_EQ(o.verdict, Verdict::tx) << i << ": " << to_string(o);
    }
  }
  EXPECT_GT(h.forwarder().flows().stats().evicted_unconfirmed, 500u);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 1000u);
  EXPECT_EQ(h.forwarder().counters().stateless, 0u);  // every ACK got its entry
}

// An L2 DSR SYN flood writes no state at all: every SYN goes to Maglev's backend for its tuple,
// the table stays empty, and a real client's handshake gets its entry from its ACK, on the
// backend its SYN went to. With session affinity the choice writes the client's record, so
// there the SYN opens the connection as in the other modes.
TEST_F(ForwarderFlood, ADsrSynFloodWritesNoState) {
  const Mac b1{0x02, 0, 0, 0, 0, 0x11}, b2{0x02, 0, 0, 0, 0, 0x12}, b3{0x02, 0, 0, 0, 0, 0x13};
  h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::dsr_l2,
                {{"198.18.1.11", 80}, {"198.18.1.12", 80}, {"198.18.1.13", 80}}));
  h.neighbor("198.18.1.11", b1);
  h.neighbor("198.18.1.12", b2);
  h.neighbor("198.18.1.13", b3);
  std::set<Bytes> macs;
  for (uint32_t i = 0; i < 3000; ++i) {
    const std::string src = flood_source(i);
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), "198.18.100.1")
                                .tcp(uint16_t(1024 + i), 80, kTcpSyn).bytes(), 1000 + i);
    ASSERT_EQ(o.verdict, Verdict::tx) << i << ": " << to_string(o);
    macs.insert(Bytes(o.frame.begin(), o.frame.begin() + 6));
  }
  EXPECT_EQ(macs.size(), 3u);  // spread by Maglev
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 0u);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 3000u);
  EXPECT_EQ(h.forwarder().counters().new_connections, 0u);

  // A real client: SYN, ACK, data, all to one backend; the ACK opened the entry.
  Bytes first;
  for (const uint8_t flags : {kTcpSyn, kTcpAck, uint8_t(kTcpAck | dp::kTcpPsh)}) {
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(40000, 80, flags).payload("x").bytes(), 5000);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    const Bytes mac(o.frame.begin(), o.frame.begin() + 6);
    if (first.empty()) first = mac;
    EXPECT_EQ(mac, first);
  }
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 1u);
  EXPECT_EQ(h.forwarder().counters().new_connections, 1u);

  dp::Service sticky = service("sticky", "198.18.100.2", 80, Protocol::tcp, ForwardMode::dsr_l2,
                               {{"198.18.1.11", 80}});
  sticky.affinity.client_ip = true;
  h.add(sticky);
  ASSERT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.2")
                      .tcp(40001, 80, kTcpSyn).bytes(), 5000).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().new_connections, 2u);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 3001u);  // the flood's and the client's
}

// A connection shutting down (the client's FIN seen, the backend's data and FIN+ACK still to
// come: a half-closed TCP connection may carry data for a long time) keeps both entries through
// a SYN flood: the flood's half-open entries go first. Closed ones (FINs both ways) go before.
TEST_F(ForwarderFlood, ASynFloodCannotEvictAConnectionShuttingDown) {
  web(ForwardMode::full_nat);
  const uint16_t snat = handshake(h, 40000);
  ASSERT_NE(snat, 0);
  const Outcome fin = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(40000, 80, kTcpFin | kTcpAck).bytes());
  ASSERT_EQ(fin.verdict, Verdict::tx) << to_string(fin);
  flood(h, "198.18.100.1", 80, Protocol::tcp, 0, 2000, kTcpSyn);
  EXPECT_GT(h.forwarder().flows().stats().evicted_half_open, 1000u);
  EXPECT_EQ(h.forwarder().flows().stats().evicted_half_closed, 0u);
  for (const uint8_t flags : {kTcpAck, uint8_t(kTcpFin | kTcpAck)}) {
    const Outcome answer =
        h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                  .tcp(8080, snat, flags).payload("rest").bytes(), 3100);
    ASSERT_EQ(answer.verdict, Verdict::tx) << to_string(answer);
    EXPECT_EQ(answer.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.1", kClient)
                                .ttl(63).tcp(80, 40000, flags).payload("rest").bytes());
  }
  const Outcome last = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(40000, 80, kTcpAck).bytes(), 3101);
  ASSERT_EQ(last.verdict, Verdict::tx) << to_string(last);
  EXPECT_EQ(sport_of(last.frame), snat);

  // Now closed both ways: the next SYNs take its entries before any half-open one.
  const uint64_t half_open = h.forwarder().flows().stats().evicted_half_open;
  flood(h, "198.18.100.1", 80, Protocol::tcp, 2000, 200, kTcpSyn, 3102);
  EXPECT_EQ(h.forwarder().flows().stats().evicted_closed, 2u);
  EXPECT_GT(h.forwarder().flows().stats().evicted_half_open, half_open);
}

// A SYN flood from made-up clients to a ClientIP-affinity service: each SYN also records its
// client's backend, for the affinity timeout (3 h here, Kubernetes' default). Those records
// must not fill the table: they go before anything live (a client whose record is gone gets
// the same Maglev choice over its address while the backends are unchanged), the flood's SYNs
// are all forwarded, and a real client still gets its connection's entries.
TEST_F(ForwarderFlood, ASynFloodCannotFillTheTableWithAffinityRecords) {
  dp::Service spec = service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                             {{"198.18.1.10", 8080}});
  spec.affinity = {true, 10800};
  h.add(spec);
  h.neighbor("198.18.1.10", kBackendMac);
  flood(h, "198.18.100.1", 80, Protocol::tcp, 0, 2000, kTcpSyn);
  EXPECT_GT(h.forwarder().flows().stats().evicted_affinity, 500u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::flow_table_full)], 0u);
  a_real_connection(h);
}

// A burst's new connections may evict, in a full table, the entry another frame of the same
// burst has already found (the flow-table lookup runs for the whole burst first). That frame
// must not then be forwarded with the new connection's translation: it is handled as a miss.
TEST_F(ForwarderFlood, AFrameWhoseEntryASynOfItsBurstEvictedIsNotForwardedWithTheNewOne) {
  web(ForwardMode::full_nat);
  // A burst of new connections to another service first, of eight backends: each frame's
  // scratch then holds the plans made for one of them (its Maglev choice among the eight, a
  // foreseen source port and its reply key's hash), which a frame of a later burst whose entry
  // is evicted under it must not inherit (web has one backend).
  std::vector<std::pair<const char*, uint16_t>> eight;
  const char* addrs[] = {"198.18.1.51", "198.18.1.52", "198.18.1.53", "198.18.1.54",
                         "198.18.1.55", "198.18.1.56", "198.18.1.57", "198.18.1.58"};
  for (const char* a : addrs) {
    eight.push_back({a, 8080});
    h.neighbor(a, kBackendMac);
  }
  h.add(service("wide", "198.18.100.3", 80, Protocol::tcp, ForwardMode::full_nat, eight));
  std::vector<Bytes> others;
  for (uint32_t i = 0; i < 32; ++i) {
    others.push_back(Packet().eth(kRouterMac, kLbMac).ipv4(("198.19.200." + std::to_string(i))
                                                              .c_str(), "198.18.100.3")
                         .tcp(2048, 80, kTcpSyn).bytes());
  }
  for (const Outcome& o : h.run_burst(others, 900)) ASSERT_EQ(o.verdict, Verdict::tx);
  // Half-open connections from 198.19.0.x, recorded with the source port each SYN was given.
  const auto src_of = flood_source;
  std::vector<uint16_t> snat_of;
  for (uint32_t i = 0; i < 400; ++i) {
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(src_of(i).c_str(), "198.18.100.1")
                                .tcp(1024, 80, kTcpSyn).bytes(), 1000 + i);
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    snat_of.push_back(sport_of(o.frame));
  }
  // The oldest connections still in the table: the first a new SYN evicts from its bucket.
  const dp::FlowTable& flows = h.forwarder().flows();
  std::vector<uint32_t> live;
  for (uint32_t i = 0; i < 400 && live.size() < 24; ++i) {
    dp::FlowKey k;
    k.family = dp::Family::v4;
    k.proto = 6;
    const auto src = dp::parse_ip(src_of(i));
    const auto dst = dp::parse_ip("198.18.100.1");
    k.src = src->bytes;
    k.dst = dst->bytes;
    k.sport = 1024;
    k.dport = 80;
    if (flows.find(k, flows.hash(k), 1500) != nullptr) live.push_back(i);
  }
  ASSERT_EQ(live.size(), 24u);

  // One burst: 8 new connections, then the ACKs of those 24.
  std::vector<Bytes> burst;
  for (uint32_t i = 1000; i < 1008; ++i) {
    burst.push_back(Packet().eth(kRouterMac, kLbMac).ipv4(src_of(i).c_str(), "198.18.100.1")
                        .tcp(1024, 80, kTcpSyn).bytes());
  }
  for (uint32_t i : live) {
    burst.push_back(Packet().eth(kRouterMac, kLbMac).ipv4(src_of(i).c_str(), "198.18.100.1")
                        .tcp(1024, 80, kTcpAck).bytes());
  }
  const std::vector<Outcome> out = h.run_burst(burst, 1500);
  ASSERT_EQ(out.size(), burst.size());
  std::set<uint16_t> new_ports;
  for (size_t j = 0; j < 8; ++j) {
    ASSERT_EQ(out[j].verdict, Verdict::tx) << to_string(out[j]);
    new_ports.insert(sport_of(out[j].frame));
  }
  size_t evicted_in_burst = 0;
  for (size_t j = 8; j < out.size(); ++j) {
    ASSERT_EQ(out[j].verdict, Verdict::tx) << to_string(out[j]);
    const uint16_t port = sport_of(out[j].frame);
    EXPECT_EQ(new_ports.count(port), 0u) << "ACK of connection " << live[j - 8]
                                         << " forwarded as a new connection of its burst";
    evicted_in_burst += port != snat_of[live[j - 8]];  // reopened: its entry went in the burst
  }
  EXPECT_GT(evicted_in_burst, 0u) << "no entry found by the burst's lookup was evicted in it";
  // A reopened connection's reply entry is its own: the backend's answer to its new source port
  // goes back to its client (not lost under another connection's reply hash).
  size_t answered = 0;
  for (size_t j = 8; j < out.size(); ++j) {
    const uint16_t port = sport_of(out[j].frame);
    if (port == snat_of[live[j - 8]]) continue;
    const Outcome back = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                                   .tcp(8080, port, kTcpAck).bytes(), 1501);
    if (back.verdict != Verdict::tx) continue;  // its entries evicted by a later one: allowed
    ++answered;
    dp::Parsed p;
    ASSERT_EQ(dp::parse({back.frame.data(), back.frame.size()}, p), DropReason::none);
    EXPECT_EQ(dp::to_string(p.key.dst_addr()), src_of(live[j - 8])) << j;
  }
  EXPECT_GT(answered, 0u);
}

// The same with UDP, where every flow starts without a handshake: a flood of one-frame flows
// must not crowd out a full-NAT UDP service's answered flows (DNS through a LoadBalancer).
TEST_F(ForwarderFlood, AUdpFloodCannotCrowdOutAnsweredFlows) {
  dns(ForwardMode::full_nat);
  auto query = [&](uint16_t sport) {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.2").udp(sport, 53)
                     .payload("query").bytes());
  };
  const Outcome q = query(41000);
  ASSERT_EQ(q.verdict, Verdict::tx) << to_string(q);
  const uint16_t snat = sport_of(q.frame);
  const Outcome a = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.20", kLbIp)
                              .udp(5353, snat).payload("answer").bytes());
  ASSERT_EQ(a.verdict, Verdict::tx) << to_string(a);  // answered: both entries confirmed

  flood(h, "198.18.100.2", 53, Protocol::udp, 0);
  EXPECT_GT(h.forwarder().flows().stats().evicted_unconfirmed, 1000u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::flow_table_full)], 0u);

  // The answered flow kept its source port and its reply translation.
  const Outcome again = query(41000);
  ASSERT_EQ(again.verdict, Verdict::tx) << to_string(again);
  EXPECT_EQ(sport_of(again.frame), snat);
  const Outcome answer = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.20", kLbIp)
                                   .udp(5353, snat).payload("answer").bytes());
  ASSERT_EQ(answer.verdict, Verdict::tx) << to_string(answer);
  EXPECT_EQ(answer.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.2", kClient).ttl(63)
                              .udp(53, 41000).payload("answer").bytes());
}

// The same for SCTP: an association's entries stay evictable until the backend answers, so a
// flood of made-up associations cannot fill the table, and an answered one survives it.
TEST_F(ForwarderFlood, AnSctpFloodCannotCrowdOutAnsweredAssociations) {
  h.add(service("diameter", "198.18.100.4", 3868, Protocol::sctp, ForwardMode::full_nat,
                {{"198.18.1.40", 3868}}));
  h.neighbor("198.18.1.40", kBackendMac);
  auto init = [&] {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.4")
                     .sctp(41000, 3868).bytes());
  };
  const Outcome i = init();
  ASSERT_EQ(i.verdict, Verdict::tx) << to_string(i);
  const uint16_t snat = sport_of(i.frame);
  const Outcome a = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.40", kLbIp)
                              .sctp(3868, snat).bytes());
  ASSERT_EQ(a.verdict, Verdict::tx) << to_string(a);  // answered: both entries confirmed

  flood(h, "198.18.100.4", 3868, Protocol::sctp, 0);
  EXPECT_GT(h.forwarder().flows().stats().evicted_unconfirmed, 1000u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::flow_table_full)], 0u);

  const Outcome again = init();
  ASSERT_EQ(again.verdict, Verdict::tx) << to_string(again);
  EXPECT_EQ(sport_of(again.frame), snat);
  const Outcome answer = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.40", kLbIp)
                                   .sctp(3868, snat).bytes());
  ASSERT_EQ(answer.verdict, Verdict::tx) << to_string(answer);
  const Bytes want = Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.4", kClient).ttl(63)
                        .sctp(3868, 41000).bytes();
  EXPECT_EQ(answer.frame, want);
}

// Floods whose every flow the backend answers, as a DNS server answers each query of a flood
// from made-up sources, and as an SCTP server answers each INIT: an answer proves nothing about
// the client, so the flood's answered flows are evicted (last, oldest first) rather than kept
// for their timeout, every flow is forwarded, and a real TCP connection still gets its entries.
TEST_F(ForwarderFlood, FloodsTheBackendAnswersCannotFillTheTable) {
  web(ForwardMode::full_nat);
  dns(ForwardMode::full_nat);
  h.add(service("diameter", "198.18.100.4", 3868, Protocol::sctp, ForwardMode::full_nat,
                {{"198.18.1.40", 3868}}));
  h.neighbor("198.18.1.40", kBackendMac);
  for (uint32_t i = 0; i < 2000; ++i) {
    const std::string src = flood_source(i);
    const bool sctp = i % 2 == 1;
    Packet q = Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), sctp ? "198.18.100.4"
                                                                     : "198.18.100.2");
    if (sctp) {
      q.sctp(uint16_t(1024 + i), 3868, i + 1);
    } else {
      q.udp(uint16_t(1024 + i), 53).payload("query");
    }
    const Outcome query = h.run(q.bytes(), 1000 + i);
    ASSERT_EQ(query.verdict, Verdict::tx) << i << ": " << to_string(query);
    Packet a = Packet().eth(kBackendMac, kLbMac).ipv4(sctp ? "198.18.1.40" : "198.18.1.20", kLbIp);
    if (sctp) {
      a.sctp(3868, sport_of(query.frame), i + 1);
    } else {
      a.udp(5353, sport_of(query.frame)).payload("answer");
    }
    const Outcome answer = h.run(a.bytes(), 1000 + i);
    ASSERT_EQ(answer.verdict, Verdict::tx) << i << ": " << to_string(answer);
  }
  EXPECT_GT(h.forwarder().flows().stats().evicted_answered, 1000u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::flow_table_full)], 0u);
  a_real_connection(h);
}

// Where a backend's source ports are nearly all taken, a SYN costs a bounded number of
// flow-table lookups and is dropped, counted, rather than searched port by port.
TEST(ForwarderSnat, AnExhaustedSourcePortRangeCostsABoundedSearch) {
  dp::ForwarderConfig config;
  config.flow_capacity = 4096;
  config.snat_port_lo = 2000;
  config.snat_port_hi = 2199;  // 200 ports
  Harness h(config);
  h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                {{"198.18.1.10", 8080}}));
  h.neighbor("198.18.1.10", kBackendMac);
  std::set<uint16_t> ports;
  uint64_t refused = 0;
  size_t given_at_first_refusal = 0;
  for (uint32_t n = 0; n < 400; ++n) {
    const std::string src = "198.19.0." + std::to_string(n % 250 + 1);
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), "198.18.100.1")
                                .tcp(uint16_t(10000 + n), 80, kTcpSyn).bytes());
    if (o.verdict == Verdict::tx) {
      ports.insert(sport_of(o.frame));
    } else {
      ASSERT_EQ(o.reason, DropReason::snat_ports_exhausted) << to_string(o);
      if (refused++ == 0) given_at_first_refusal = ports.size();
    }
  }
  // Most of the range is used before SYNs are refused; none is given twice.
  EXPECT_GT(ports.size(), 180u);
  EXPECT_LE(ports.size(), 200u);
  EXPECT_EQ(refused, 400u - ports.size());
  // The first refusal came with free ports left: the search gave up after its bound (an
  // unbounded search refuses nothing before all 200 are taken).
  std::printf("  %zu of 200 ports given at the first refusal, %zu in all\n",
              given_at_first_refusal, ports.size());
  EXPECT_LT(given_at_first_refusal, 200u);
  for (uint16_t p : ports) {
    EXPECT_GE(p, 2000);
    EXPECT_LE(p, 2199);
  }
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::snat_ports_exhausted)], refused);
}

// Every address a port has on the backend's subnet is a full-NAT source address: connections
// spread over them, and one whose ports are all taken leaves the others to new connections. Each
// connection keeps its address, and replies to any of them find their way back. An address on
// another subnet (the port's 198.19.0.1/16 here) is not used: the backend may not route to it.
TEST(ForwarderSnat, SeveralSourceAddressesMultiplyTheSourcePorts) {
  dp::ForwarderConfig config;
  config.snat_port_lo = 2000;
  config.snat_port_hi = 2009;  // 10 ports per address and backend
  Harness h(config, nullptr, {"198.19.0.1", "198.18.0.2", "2001:db8::2"});
  h.add(service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                {{"198.18.1.10", 8080}}));
  h.neighbor("198.18.1.10", kBackendMac);
  auto src_of = [](const Bytes& f) {  // IPv4 source of an Ethernet frame, dotted
    return std::to_string(f[26]) + "." + std::to_string(f[27]) + "." + std::to_string(f[28]) +
           "." + std::to_string(f[29]);
  };
  struct Conn {
    uint16_t client_port;
    std::string snat_ip;
    uint16_t snat_port;
  };
  std::vector<Conn> conns;
  std::set<std::pair<std::string, uint16_t>> used;
  for (uint16_t n = 0; n < 24; ++n) {
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(uint16_t(30000 + n), 80, kTcpSyn).bytes());
    if (o.verdict != Verdict::tx) {
      EXPECT_EQ(o.reason, DropReason::snat_ports_exhausted) << to_string(o);
      continue;
    }
    conns.push_back({uint16_t(30000 + n), src_of(o.frame), sport_of(o.frame)});
    EXPECT_TRUE(used.insert({conns.back().snat_ip, conns.back().snat_port}).second);
  }
  // Both addresses were used, and between them all 20 ports (a search refuses only after its
  // bound: a few of the last may go unused).
  size_t first = 0, second = 0;
  for (const Conn& c : conns) {
    first += c.snat_ip == kLbIp;
    second += c.snat_ip == "198.18.0.2";
  }
  std::printf("  %zu connections from %s, %zu from 198.18.0.2\n", first, kLbIp, second);
  EXPECT_EQ(first + second, conns.size());
  EXPECT_GE(first, 8u);
  EXPECT_GE(second, 8u);
  EXPECT_GT(conns.size(), 16u);
  EXPECT_LE(conns.size(), 20u);

  // Every connection's later frames keep their address and port; replies to either address
  // reach the right client.
  for (const Conn& c : conns) {
    const Outcome data = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                   .tcp(c.client_port, 80, kTcpAck).payload("GET").bytes());
    ASSERT_EQ(data.verdict, Verdict::tx) << to_string(data);
    EXPECT_EQ(src_of(data.frame), c.snat_ip);
    EXPECT_EQ(sport_of(data.frame), c.snat_port);
    const Outcome answer =
        h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", c.snat_ip.c_str())
                  .tcp(8080, c.snat_port, kTcpAck).payload("200").bytes());
    ASSERT_EQ(answer.verdict, Verdict::tx) << to_string(answer);
    EXPECT_EQ(answer.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.1", kClient)
                                .ttl(63).tcp(80, c.client_port, kTcpAck).payload("200").bytes());
  }
}

// A backend's answer confirms a connection joined mid-stream: its reply entry is then never
// evicted for new ones, and the backend's frames keep reaching the client through a flood.
TEST_F(ForwarderFlood, AReplyConfirmsAConnectionJoinedMidStream) {
  web(ForwardMode::dnat);
  const Outcome ack = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(45000, 80, kTcpAck).payload("more").bytes());
  ASSERT_EQ(ack.verdict, Verdict::tx) << to_string(ack);
  auto answer = [&] {
    return h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kClient)
                     .tcp(8080, 45000, kTcpAck).payload("200 OK").bytes());
  };
  ASSERT_EQ(answer().verdict, Verdict::tx);  // confirms it
  flood(h, "198.18.100.1", 80, Protocol::tcp, 0);
  const Outcome later = answer();
  ASSERT_EQ(later.verdict, Verdict::tx) << to_string(later);
  EXPECT_EQ(later.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.1", kClient).ttl(63)
                             .tcp(80, 45000, kTcpAck).payload("200 OK").bytes());
  EXPECT_GT(h.forwarder().flows().stats().evicted_unconfirmed, 1000u);
}

// How many of `n` one-frame flows from made-up sources (as flood()) at `now_ms` were forwarded;
// the others must have been dropped as new_connection_limited.
int admitted(Harness& h, const char* vip, uint16_t port, dp::Protocol proto, uint32_t base,
             uint32_t n, uint64_t now_ms) {
  int tx = 0;
  for (uint32_t i = base; i < base + n; ++i) {
    const std::string src = flood_source(i);
    Packet f = Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), vip);
    if (proto == Protocol::tcp) {
      f.tcp(uint16_t(1024 + i), port, kTcpSyn);
    } else {
      f.udp(uint16_t(1024 + i), port);
    }
    const Outcome o = h.run(f.bytes(), now_ms);
    if (o.verdict == Verdict::tx) {
      ++tx;
    } else {
      EXPECT_EQ(o.reason, DropReason::new_connection_limited) << i << ": " << to_string(o);
    }
  }
  return tx;
}

// A frontend's new-connection limit (100 a second, bursts of 10) caps a SYN flood; the
// connection already open goes on, and the bucket refills at the rate.
TEST_F(ForwarderFlood, ANewConnectionLimitCapsASynFloodNotOpenConnections) {
  dp::Service web = service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::full_nat,
                            {{"198.18.1.10", 8080}});
  web.new_connections = {.rate = 100, .burst = 10};
  h.add(web);
  h.neighbor("198.18.1.10", kBackendMac);
  const uint16_t snat = handshake(h, 40000);  // at 1000 ms: one token of ten
  ASSERT_NE(snat, 0);

  EXPECT_EQ(admitted(h, "198.18.100.1", 80, Protocol::tcp, 0, 100, 1000), 9);
  const Outcome data = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                 .tcp(40000, 80, kTcpAck).payload("GET /").bytes(), 1000);
  ASSERT_EQ(data.verdict, Verdict::tx) << to_string(data);
  EXPECT_EQ(sport_of(data.frame), snat);
  EXPECT_EQ(admitted(h, "198.18.100.1", 80, Protocol::tcp, 100, 50, 1050), 5);
  EXPECT_EQ(admitted(h, "198.18.100.1", 80, Protocol::tcp, 150, 50, 5000), 10);  // the burst
  // A refused SYN's retransmission is a new connection like any other: let in once refilled.
  EXPECT_EQ(admitted(h, "198.18.100.1", 80, Protocol::tcp, 0, 1, 5010), 1);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::new_connection_limited)],
            91u + 45 + 40);
  // The bucket is empty, but TCP frames mid-stream are not new connections: connections after
  // a restart, or moved here from another node, go on.
  for (uint16_t port = 50000; port < 50010; ++port) {
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(port, 80, kTcpAck).payload("more").bytes(), 5010);
    EXPECT_EQ(o.verdict, Verdict::tx) << to_string(o);
  }
}

// L2 DSR: the SYN pays (it opens no entry), the handshake's ACK that opens the entry does not,
// so a limit of N admits N whole handshakes.
TEST_F(ForwarderFlood, ANewConnectionLimitChargesADsrHandshakeOnce) {
  dp::Service web = service("web", "198.18.100.1", 80, Protocol::tcp, ForwardMode::dsr_l2,
                            {{"198.18.1.10", 80}});
  web.new_connections = {.rate = 1, .burst = 3};
  h.add(web);
  h.neighbor("198.18.1.10", kBackendMac);
  int established = 0;
  for (uint16_t port = 40000; port < 40006; ++port) {
    const auto send = [&](uint8_t flags) {
      return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                       .tcp(port, 80, flags).bytes(), 1000).verdict;
    };
    if (send(kTcpSyn) != Verdict::tx) continue;
    established += send(kTcpAck) == Verdict::tx;
  }
  EXPECT_EQ(established, 3);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 3u);
  EXPECT_EQ(h.forwarder().counters().drops[size_t(DropReason::new_connection_limited)], 3u);
}

// UDP flows: the limit counts flows, not datagrams. And a service without backends answers
// only as many new connections as the limit lets in, so a flood cannot turn it into a reflector
// of resets.
TEST_F(ForwarderFlood, ANewConnectionLimitCountsFlowsAndBoundsRejections) {
  dp::Service dns = service("dns", "198.18.100.2", 53, Protocol::udp, ForwardMode::dnat,
                            {{"198.18.1.20", 5353}});
  dns.new_connections = {.rate = 1000, .burst = 3};
  h.add(dns);
  h.neighbor("198.18.1.20", kBackendMac);
  EXPECT_EQ(admitted(h, "198.18.100.2", 53, Protocol::udp, 0, 3, 1000), 3);
  EXPECT_EQ(admitted(h, "198.18.100.2", 53, Protocol::udp, 0, 3, 1000), 3);  // the same flows
  EXPECT_EQ(admitted(h, "198.18.100.2", 53, Protocol::udp, 3, 3, 1000), 0);

  dp::Service dark = service("dark", "198.18.100.3", 80, Protocol::tcp, ForwardMode::full_nat, {});
  dark.new_connections = {.rate = 1000, .burst = 4};
  h.add(dark);
  int resets = 0;
  for (uint16_t i = 0; i < 20; ++i) {
    const Outcome o = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.3")
                                .tcp(uint16_t(2000 + i), 80, kTcpSyn).bytes(), 1000);
    resets += o.verdict == Verdict::tx;
  }
  EXPECT_EQ(resets, 4);
  EXPECT_EQ(h.forwarder().counters().rejected, 4u);
}

}  // namespace
}  // namespace magline::test
