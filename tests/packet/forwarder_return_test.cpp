// DNAT replies for which the node holds no entry (forwarder.hpp, "Several nodes"): another node
// forwarded the connection, and the backends' route back leads here. A backend of exactly one
// DNAT frontend has its replies translated back to that frontend and routed to the client.
#include <gtest/gtest.h>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/forwarder_fixture.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpPsh;

// A client off every on-link subnet, behind the router.
constexpr const char* kFarClient = "198.19.0.10";
constexpr const char* kFarClient6 = "2001:db8:19::10";
constexpr const char* kRouter = "198.18.0.254";
constexpr const char* kRouter6 = "2001:db8::fe";
constexpr Mac kClientMac{0x02, 0, 0, 0, 0, 0x0c};  // an on-link client's

class ReturnTest : public ForwarderTest {
 protected:
  void SetUp() override {
    ForwarderTest::SetUp();
    h.route("198.19.0.0/24", kRouter);
    h.route("2001:db8:19::/64", kRouter6);
    h.neighbor(kRouter, kRouterMac);
    h.neighbor(kRouter6, kRouterMac);
    h.neighbor("198.18.1.50", kBackendMac);
    h.neighbor("2001:db8::50", kBackendMac);
    web_ = &h.add(service("dnat-web", "198.18.100.9", 80, Protocol::tcp, ForwardMode::dnat,
                          {{"198.18.1.50", 8080}}));
    web6_ = &h.add(service("dnat-web6", "2001:db8:100::9", 80, Protocol::tcp, ForwardMode::dnat,
                           {{"2001:db8::50", 8080}}));
    h.dnat_return("198.18.1.50", 8080, Protocol::tcp, web_->frontend_id(0));
    h.dnat_return("2001:db8::50", 8080, Protocol::tcp, web6_->frontend_id(0));
  }

  // A backend's mid-stream segment to a client, as it reaches this node.
  static Bytes from_backend(const char* backend, const char* client, uint16_t sport = 8080) {
    Packet p = Packet().eth(kBackendMac, kLbMac);
    p = dp::parse_ip(client)->family == dp::Family::v6 ? p.ipv6(backend, client)
                                                        : p.ipv4(backend, client);
    return p.tcp(sport, 41000, kTcpAck | kTcpPsh).payload("answer").bytes();
  }

  // The backend's SYN-ACK to the far client (port 41000), translated to web's frontend and
  // routed without an entry.
  void expect_synack_translated() {
    const Outcome synack = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.50", kFarClient)
                                     .tcp(8080, 41000, dp::kTcpSyn | kTcpAck).bytes());
    ASSERT_EQ(synack.verdict, Verdict::tx) << to_string(synack);
    EXPECT_EQ(synack.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.9", kFarClient)
                                .ttl(63).tcp(80, 41000, dp::kTcpSyn | kTcpAck).bytes());
  }

  const dp::ServiceState* web_ = nullptr;
  const dp::ServiceState* web6_ = nullptr;
};

void expect_drop(const Outcome& o, DropReason r) {
  EXPECT_EQ(o.verdict, Verdict::drop) << to_string(o);
  EXPECT_EQ(o.reason, r) << to_string(o);
}

TEST_F(ReturnTest, AReplyWithoutAnEntryIsTranslatedToTheBackendsFrontend) {
  const Outcome a = h.run(from_backend("198.18.1.50", kFarClient));
  ASSERT_EQ(a.verdict, Verdict::tx) << to_string(a);
  EXPECT_EQ(a.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.9", kFarClient).ttl(63)
                         .tcp(80, 41000, kTcpAck | kTcpPsh).payload("answer").bytes());
  const Outcome a6 = h.run(from_backend("2001:db8::50", kFarClient6));
  ASSERT_EQ(a6.verdict, Verdict::tx) << to_string(a6);
  EXPECT_EQ(a6.frame, Packet().eth(kLbMac, kRouterMac).ipv6("2001:db8:100::9", kFarClient6)
                          .ttl(63).tcp(80, 41000, kTcpAck | kTcpPsh).payload("answer").bytes());
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 2u);
  EXPECT_EQ(h.forwarder().counters().replies, 0u);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 0u);  // nothing recorded
}

TEST_F(ReturnTest, AClientOnLinkIsReachedDirectlyAndAnUnknownNeighbourIsResolvedFirst) {
  const Outcome a = h.run(from_backend("198.18.1.50", kClient));
  ASSERT_EQ(a.verdict, Verdict::slow) << to_string(a);
  EXPECT_EQ(a.slow, dp::SlowReason::needs_neighbor);
  EXPECT_EQ(a.next_hop, (dp::NextHop{*dp::parse_ip(kClient), 0}));
  h.neighbor(kClient, kRouterMac);
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kClient)).verdict, Verdict::tx);
}

TEST_F(ReturnTest, AnEntryStillWinsOverTheBackendsFrontend) {
  // A connection from an on-link client whose address is not resolved yet records its reply
  // entry (the way back is the hop its frames came from), and its replies take it: the
  // frontend it was opened on, the client's own MAC.
  ASSERT_EQ(h.run(Packet().eth(kClientMac, kLbMac).ipv4(kClient, "198.18.100.9")
                      .tcp(41000, 80, dp::kTcpSyn).bytes()).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 2u);
  EXPECT_EQ(h.forwarder().counters().one_entry_connections, 0u);
  const Outcome r = h.run(from_backend("198.18.1.50", kClient));
  ASSERT_EQ(r.verdict, Verdict::tx) << to_string(r);
  EXPECT_EQ(r.frame, Packet().eth(kLbMac, kClientMac).ipv4("198.18.100.9", kClient).ttl(63)
                         .tcp(80, 41000, kTcpAck | kTcpPsh).payload("answer").bytes());
  EXPECT_EQ(h.forwarder().counters().replies, 1u);
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 0u);
}

// One entry per DNAT connection (forwarder.hpp): a connection whose replies the map translates
// and whose client a route and a known neighbour lead back to keeps its forward entry alone;
// the replies, and ICMP errors about its forwarded packets, take the map and the route.
TEST_F(ReturnTest, AConnectionWhoseRepliesNeedNoEntryKeepsOne) {
  auto client = [&](uint8_t flags, std::string_view data = {}) {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.9")
                     .tcp(41000, 80, flags).payload(data).bytes());
  };
  const Outcome syn = client(dp::kTcpSyn);
  ASSERT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
  EXPECT_EQ(syn.frame, Packet().eth(kLbMac, kBackendMac).ipv4(kFarClient, "198.18.1.50")
                           .ttl(63).tcp(41000, 8080, dp::kTcpSyn).bytes());
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 1u);
  EXPECT_EQ(h.forwarder().counters().new_connections, 1u);
  EXPECT_EQ(h.forwarder().counters().one_entry_connections, 1u);
  expect_synack_translated();
  EXPECT_EQ(client(kTcpAck, "GET /").verdict, Verdict::tx);
  dp::FlowKey fwd;
  fwd.proto = dp::kProtoTcp;
  fwd.src = dp::parse_ip(kFarClient)->bytes;
  fwd.sport = 41000;
  fwd.dst = dp::parse_ip("198.18.100.9")->bytes;
  fwd.dport = 80;
  const dp::FlowTable& t = h.forwarder().flows();
  const dp::FlowEntry* e = t.find(fwd, t.hash(fwd), 0);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->value.fwd.flags & dp::kFlowOneEntry);
  // Tracked one way, as a direct-return connection: established as the client shows it, and
  // closed by the client's FIN (the backend may still answer: its replies need no entry).
  EXPECT_EQ(t.state(e), dp::FlowState::tcp_one_way);
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kFarClient)).verdict, Verdict::tx);
  EXPECT_EQ(client(kTcpAck | dp::kTcpFin).verdict, Verdict::tx);
  EXPECT_EQ(t.state(e), dp::FlowState::tcp_closed);
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kFarClient)).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 3u);
  EXPECT_EQ(h.forwarder().counters().replies, 0u);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 1u);

  // A router on the backend's side: the forwarded request was too big. To the client, from the
  // frontend, quoting the request as the client sent it, by the route.
  const Outcome too_big = h.run(
      Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.1", kFarClient)
          .icmp_error(3, 4, Packet().ipv4(kFarClient, "198.18.1.50").ttl(63)
                                .tcp(41000, 8080, kTcpAck).payload("GET /"), 48, 1280)
          .bytes());
  ASSERT_EQ(too_big.verdict, Verdict::tx) << to_string(too_big);
  EXPECT_EQ(too_big.frame,
            Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.9", kFarClient).ttl(63)
                .icmp_error(3, 4, Packet().ipv4(kFarClient, "198.18.100.9").ttl(63)
                                      .tcp(41000, 80, kTcpAck).payload("GET /"), 48, 1280)
                .bytes());
  EXPECT_EQ(h.forwarder().counters().icmp_errors, 1u);
}

TEST_F(ReturnTest, ABackendAnotherFrontendGainsKeepsItsFirstFrontendsConnections) {
  // web's connection, one entry; then api gains web's backend. The control thread keeps the
  // map's answer at web (control/publisher.hpp): web's replies go on without an entry, api's
  // connections record theirs, which win.
  ASSERT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.9")
                      .tcp(41000, 80, dp::kTcpSyn).bytes()).verdict, Verdict::tx);
  h.add(service("dnat-api", "198.18.100.10", 443, Protocol::tcp, ForwardMode::dnat,
                {{"198.18.1.50", 8080}}));
  ASSERT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.10")
                      .tcp(41001, 443, dp::kTcpSyn).bytes()).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 3u);  // web's one, api's two
  const Outcome web = h.run(from_backend("198.18.1.50", kFarClient, 8080));
  ASSERT_EQ(web.verdict, Verdict::tx) << to_string(web);
  EXPECT_EQ(web.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.9", kFarClient)
                           .ttl(63).tcp(80, 41000, kTcpAck | kTcpPsh).payload("answer").bytes());
  const Outcome api = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.50", kFarClient)
                                .tcp(8080, 41001, kTcpAck).bytes());
  ASSERT_EQ(api.verdict, Verdict::tx) << to_string(api);
  EXPECT_EQ(api.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.10", kFarClient)
                           .ttl(63).tcp(443, 41001, kTcpAck).bytes());
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 1u);
  EXPECT_EQ(h.forwarder().counters().replies, 1u);
}

TEST_F(ReturnTest, WhatIsNotABackendsReplyIsDroppedAsBefore) {
  // Another port of the backend, another protocol, another address: no service's.
  expect_drop(h.run(from_backend("198.18.1.50", kFarClient, 9090)), DropReason::no_service);
  expect_drop(h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.50", kFarClient)
                        .udp(8080, 41000).payload("x").bytes()), DropReason::no_service);
  expect_drop(h.run(from_backend("198.18.1.51", kFarClient)), DropReason::no_service);
  // To the node itself: the node's, never translated.
  expect_drop(h.run(from_backend("198.18.1.50", kLbIp)), DropReason::no_service);
  h.kernel_interface();
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kLbIp)).slow, dp::SlowReason::kernel);
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 0u);
}

TEST_F(ReturnTest, NoRouteToTheClientAndAmbiguousBackendsAreCountedDrops) {
  expect_drop(h.run(from_backend("198.18.1.50", "203.0.113.7")), DropReason::no_route_to_client);
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, dp::kAmbiguousFrontend);
  expect_drop(h.run(from_backend("198.18.1.50", kFarClient)), DropReason::reply_ambiguous);
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, std::nullopt);  // it serves none any more
  expect_drop(h.run(from_backend("198.18.1.50", kFarClient)), DropReason::no_service);
}

TEST_F(ReturnTest, AnotherNodesConnectionGoesOnHereWhenTheRouterMovesIt) {
  // Replies first (the other node forwards), then the client's segments arrive here too (the
  // other node went): the same backend (Maglev), recorded from its first segment; replies
  // then take the entry.
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kFarClient)).verdict, Verdict::tx);
  const Outcome f = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.9")
                              .tcp(41000, 80, kTcpAck).payload("more").bytes());
  ASSERT_EQ(f.verdict, Verdict::tx) << to_string(f);
  EXPECT_EQ(f.frame, Packet().eth(kLbMac, kBackendMac).ipv4(kFarClient, "198.18.1.50").ttl(63)
                         .tcp(41000, 8080, kTcpAck).payload("more").bytes());
  // Recorded as a connection of one entry: its replies go on without one.
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 1u);
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kFarClient)).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 2u);
  EXPECT_EQ(h.forwarder().counters().replies, 0u);
}

TEST(DnatReturns, ABackendBeyondTheMapsCapacityIsCountedAndItsRepliesDroppedAsBefore) {
  dp::ForwarderConfig config;
  config.max_dnat_returns = 1;
  Harness h(config);
  h.route("198.19.0.0/24", kRouter);
  h.neighbor(kRouter, kRouterMac);
  const auto& s = h.add(service("dnat-web", "198.18.100.9", 80, Protocol::tcp,
                                ForwardMode::dnat, {{"198.18.1.50", 8080}, {"198.18.1.51", 8080}}));
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, s.frontend_id(0));
  h.dnat_return("198.18.1.51", 8080, Protocol::tcp, s.frontend_id(0));
  EXPECT_EQ(h.forwarder().counters().dnat_returns_refused, 1u);
  auto reply = [&](const char* backend) {
    return h.run(Packet().eth(kBackendMac, kLbMac).ipv4(backend, kFarClient)
                     .tcp(8080, 41000, kTcpAck).bytes());
  };
  EXPECT_EQ(reply("198.18.1.50").verdict, Verdict::tx);
  const Outcome lost = reply("198.18.1.51");
  EXPECT_EQ(lost.verdict, Verdict::drop);
  EXPECT_EQ(lost.reason, DropReason::no_service);
}

// A DNAT frontend, 198.18.100.9:80, whose one backend (198.18.1.50:8080, resolved) the
// backends' map names, and the route to the far clients through the router.
void with_dnat_web(Harness& h) {
  h.route("198.19.0.0/24", kRouter);
  h.neighbor(kRouter, kRouterMac);
  h.neighbor("198.18.1.50", kBackendMac);
  const auto& s = h.add(service("dnat-web", "198.18.100.9", 80, Protocol::tcp,
                                ForwardMode::dnat, {{"198.18.1.50", 8080}}));
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, s.frontend_id(0));
}

// `dataplane.dnat_replies: last_hop` (dnat_one_entry false): every DNAT connection records its
// reply entry, and its replies go back through the router its client's frames came from, even
// where the route to the client names another; what has no entry is still routed.
TEST(DnatReplies, ByTheLastHopEveryConnectionKeepsItsReplyEntry) {
  constexpr Mac kOtherRouterMac{0x02, 0, 0, 0, 0, 0xfd};
  for (const bool one_entry : {true, false}) {
    SCOPED_TRACE(one_entry ? "routed" : "last_hop");
    dp::ForwarderConfig config;
    config.dnat_one_entry = one_entry;
    Harness h(config);
    with_dnat_web(h);
    // The client's frames come through a second router; the route names the first.
    ASSERT_EQ(h.run(Packet().eth(kOtherRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.9")
                        .tcp(41000, 80, dp::kTcpSyn).bytes()).verdict, Verdict::tx);
    EXPECT_EQ(h.forwarder().flows().stats().occupied, one_entry ? 1u : 2u);
    EXPECT_EQ(h.forwarder().counters().one_entry_connections, one_entry ? 1u : 0u);
    const Outcome synack = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.50", kFarClient)
                                     .tcp(8080, 41000, dp::kTcpSyn | kTcpAck).bytes());
    ASSERT_EQ(synack.verdict, Verdict::tx) << to_string(synack);
    EXPECT_EQ(synack.frame,
              Packet().eth(kLbMac, one_entry ? kRouterMac : kOtherRouterMac)
                  .ipv4("198.18.100.9", kFarClient).ttl(63)
                  .tcp(80, 41000, dp::kTcpSyn | kTcpAck).bytes());
    EXPECT_EQ(h.forwarder().counters().replies, one_entry ? 0u : 1u);
    // Another node's connection (no entry here) is routed either way.
    const Outcome other = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.50", kFarClient)
                                    .tcp(8080, 42000, kTcpAck).bytes());
    ASSERT_EQ(other.verdict, Verdict::tx) << to_string(other);
    EXPECT_EQ(other.frame, Packet().eth(kLbMac, kRouterMac).ipv4("198.18.100.9", kFarClient)
                               .ttl(63).tcp(80, 42000, kTcpAck).bytes());
  }
}

// DNAT under a SYN flood: a bare SYN writes nothing; the backend's SYN-ACK is translated
// without an entry, and the client's ACK opens the connection.
class DnatSynGuardTest : public ReturnTest {
 protected:
  void guard(dp::SynProxy mode) {
    auto spec = service("dnat-web", "198.18.100.9", 80, Protocol::tcp, ForwardMode::dnat,
                        {{"198.18.1.50", 8080}});
    spec.syn_proxy = mode;
    h.add(spec);
  }
  Outcome client(uint8_t flags, uint16_t sport = 41000, const char* from = kFarClient,
                 uint64_t now_ms = 1000) {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(from, "198.18.100.9")
                     .tcp(sport, 80, flags).bytes(), now_ms);
  }
  uint64_t entries() { return h.forwarder().flows().stats().occupied; }
};

TEST_F(DnatSynGuardTest, WhileEngagedASynWritesNothingAndItsAckOpensTheConnection) {
  guard(dp::SynProxy::on);
  const Outcome syn = client(dp::kTcpSyn);
  ASSERT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
  EXPECT_EQ(syn.frame, Packet().eth(kLbMac, kBackendMac).ipv4(kFarClient, "198.18.1.50")
                           .ttl(63).tcp(41000, 8080, dp::kTcpSyn).bytes());
  EXPECT_EQ(entries(), 0u);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 1u);
  EXPECT_EQ(h.forwarder().counters().new_connections, 0u);
  expect_synack_translated();
  EXPECT_EQ(client(kTcpAck).verdict, Verdict::tx);
  EXPECT_EQ(entries(), 1u);  // the connection, of one entry: its replies need none
  EXPECT_EQ(h.forwarder().counters().new_connections, 1u);
  EXPECT_EQ(h.run(from_backend("198.18.1.50", kFarClient)).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().replies, 0u);
  EXPECT_EQ(h.forwarder().counters().stateless_replies, 2u);
}

TEST_F(DnatSynGuardTest, ASynKeepsItsEntriesWhereItsRepliesCouldNotBeTranslated) {
  guard(dp::SynProxy::on);
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, dp::kAmbiguousFrontend);
  EXPECT_EQ(client(dp::kTcpSyn).verdict, Verdict::tx);
  EXPECT_EQ(entries(), 2u);
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, web_->frontend_id(0));
  EXPECT_EQ(client(dp::kTcpSyn, 41001, "203.0.113.7").verdict, Verdict::tx);  // no route back
  EXPECT_EQ(entries(), 4u);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 0u);
  guard(dp::SynProxy::off);
  EXPECT_EQ(client(dp::kTcpSyn, 41002).verdict, Verdict::tx);
  EXPECT_EQ(entries(), 5u);  // a connection of one entry (its replies need none)
}

TEST(DnatSynGuard, AutoEngagesAfterASecondOfHandshakesThatDoNotComplete) {
  dp::ForwarderConfig config;
  config.syn_proxy_threshold = 3;
  Harness h(config);
  with_dnat_web(h);
  auto syn = [&](uint16_t sport, uint64_t now_ms) {
    return h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.9")
                     .tcp(sport, 80, dp::kTcpSyn).bytes(), now_ms);
  };
  // Second 1: five handshakes begun, none completed: above 3.
  for (uint16_t i = 0; i < 5; ++i) ASSERT_EQ(syn(uint16_t(40000 + i), 1100).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 0u);
  // Second 2: engaged, SYNs write nothing (and, only one, leave it below the threshold).
  EXPECT_EQ(syn(40100, 2100).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 1u);
  // Second 3: disengaged again.
  EXPECT_EQ(syn(40200, 3100).verdict, Verdict::tx);
  EXPECT_EQ(h.forwarder().counters().syns_without_state, 1u);
}

}  // namespace
}  // namespace magline::test

namespace magline::test {
namespace {

// The set-up's two lookups are remembered (Forwarder::returns_alone(), hop_known()): every
// change of the backends' map, of the neighbours and of the service is seen by the next SYN.
TEST_F(ReturnTest, TheOneEntryChoiceFollowsEveryChangeOfTheMapNeighboursAndService) {
  uint16_t port = 41000;
  // Whether the next SYN from the far client kept one entry.
  auto one_entry = [&] {
    const uint64_t before = h.forwarder().counters().one_entry_connections;
    const size_t occupied = h.forwarder().flows().stats().occupied;
    const Outcome syn = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kFarClient, "198.18.100.9")
                                  .tcp(port++, 80, dp::kTcpSyn).bytes());
    EXPECT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
    const bool one = h.forwarder().counters().one_entry_connections == before + 1;
    EXPECT_EQ(h.forwarder().flows().stats().occupied, occupied + (one ? 1 : 2));
    return one;
  };
  EXPECT_TRUE(one_entry());
  EXPECT_TRUE(one_entry());
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, dp::kAmbiguousFrontend);
  EXPECT_FALSE(one_entry());
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, web_->frontend_id(0));
  EXPECT_TRUE(one_entry());
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, std::nullopt);
  EXPECT_FALSE(one_entry());
  h.dnat_return("198.18.1.50", 8080, Protocol::tcp, web_->frontend_id(0));
  EXPECT_TRUE(one_entry());
  h.forget_neighbor(kRouter);  // the way back is the last hop's until the router is known
  EXPECT_FALSE(one_entry());
  h.neighbor(kRouter, kRouterMac);
  EXPECT_TRUE(one_entry());
  // The service replaced: its backend now one the map does not name.
  h.neighbor("198.18.1.51", kBackendMac);
  web_ = &h.add(service("dnat-web", "198.18.100.9", 80, Protocol::tcp, ForwardMode::dnat,
                        {{"198.18.1.51", 8080}}));
  EXPECT_FALSE(one_entry());
  h.dnat_return("198.18.1.51", 8080, Protocol::tcp, web_->frontend_id(0));
  EXPECT_TRUE(one_entry());
}

// More backends than the memo has places: backends whose slots share a place are told apart.
TEST(DnatReplies, TheOneEntryChoiceIsEachBackendsOwnAmongMoreBackendsThanTheMemoHolds) {
  dp::ForwarderConfig config;
  config.flow_capacity = 1 << 16;  // every connection keeps its entries
  Harness h(config);
  h.route("198.19.0.0/24", kRouter);
  h.neighbor(kRouter, kRouterMac);
  constexpr int kBackends = 1100;
  std::vector<std::string> addrs;
  for (int i = 0; i < kBackends; ++i) {
    addrs.push_back("198.18." + std::to_string(4 + i / 250) + "." + std::to_string(1 + i % 250));
  }
  std::vector<std::pair<const char*, uint16_t>> backends;
  for (const std::string& a : addrs) {
    backends.push_back({a.c_str(), 8080});
    h.neighbor(a.c_str(), kBackendMac);
  }
  dp::Service many = service("dnat-many", "198.18.100.9", 80, Protocol::tcp, ForwardMode::dnat,
                             backends);
  many.table_size = 65537;
  const auto& s = h.add(std::move(many));
  // Every third backend's replies can be translated from the backend alone (so that two
  // backends 1024 slots apart answer differently).
  for (int i = 0; i < kBackends; i += 3) {
    h.dnat_return(addrs[size_t(i)].c_str(), 8080, Protocol::tcp, s.frontend_id(0));
  }
  std::map<std::string, int> index;
  for (int i = 0; i < kBackends; ++i) index[addrs[size_t(i)]] = i;
  int one = 0, two = 0;
  for (int round = 0; round < 2; ++round) {  // the second round answers from the memo
    for (uint16_t port = 20000; port < 23000; ++port) {
      const uint64_t before = h.forwarder().counters().one_entry_connections;
      const Outcome syn = h.run(Packet().eth(kRouterMac, kLbMac)
                                    .ipv4(round == 0 ? kFarClient : "198.19.0.11", "198.18.100.9")
                                    .tcp(port, 80, dp::kTcpSyn).bytes());
      ASSERT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
      const dp::IpAddr to = dp::IpAddr::v4(dp::load_be32(syn.frame.data() + 30));
      const int i = index.at(dp::to_string(to));
      const bool kept_one = h.forwarder().counters().one_entry_connections == before + 1;
      ASSERT_EQ(kept_one, i % 3 == 0) << "backend " << i << " port " << port;
      (kept_one ? one : two) += 1;
    }
  }
  EXPECT_GT(one, 1500);
  EXPECT_GT(two, 3000);
}

}  // namespace
}  // namespace magline::test
