// Connections whose two directions reach different workers (DNAT: the NIC hashes the client's
// tuple and the backend's reply tuple independently). The worker that sees a direction change
// the connection's state tells the worker holding the other direction's entry.
#include <gtest/gtest.h>

#include <tuple>

#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/harness.hpp"

namespace magline::dp {
inline void PrintTo(FlowState s, std::ostream* os) { *os << flow_state_name(s); }
}  // namespace magline::dp

namespace magline::test {
namespace {

using dp::DropReason;
using dp::FlowState;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpFin;
using dp::kTcpRst;
using dp::kTcpSyn;

constexpr const char* kVip = "198.18.100.2";
constexpr const char* kBackend = "198.18.1.20";

// The NIC of these tests: frames from the backend reach worker 1, all others worker 0.
class SplitSteering final : public dp::Steering {
 public:
  uint16_t worker_of(const dp::FlowKey& k, uint16_t) const noexcept override {
    return k.src == dp::parse_ip(kBackend)->bytes ? 1 : 0;
  }
  std::optional<uint16_t> find_reply_port(const dp::FlowKey&, uint16_t, uint16_t, uint16_t first,
                                          uint16_t, uint16_t, bool (*)(void*, uint16_t), void*,
                                          uint32_t) const noexcept override {
    return first;  // full-NAT is not used here
  }
};

class ForwarderWorkers : public ::testing::Test {
 protected:
  ForwarderWorkers() : w0(config(0), &rss), w1(config(1), &rss) {
    for (Harness* h : {&w0, &w1}) {
      h->add(service("db", kVip, 5432, Protocol::tcp, ForwardMode::dnat, {{kBackend, 5432}}));
      h->add(service("dns", kVip, 53, Protocol::udp, ForwardMode::dnat, {{kBackend, 53}}));
      h->neighbor(kBackend, kBackendMac);
    }
  }
  static dp::ForwarderConfig config(uint16_t worker) {
    dp::ForwarderConfig c;
    c.worker = worker;
    c.workers = 2;
    return c;
  }
  // Delivers what each worker queued for the other (the worker loop does it before each burst).
  void exchange(uint64_t now_ms) {
    for (auto [from, to, worker] : {std::tuple{&w0, &w1, 1}, std::tuple{&w1, &w0, 0}}) {
      for (const auto& [dest, m] : from->peers.sent) {
        EXPECT_EQ(dest, worker);
        to->deliver(m, now_ms);
      }
      from->peers.sent.clear();
    }
  }
  Outcome client(Packet frame, uint64_t now_ms) { return w0.run(frame.bytes(), now_ms); }
  // A whole handshake from kClient:sport to the db service, at t0, t0 + 1 and t0 + 2 ms, each
  // step's messages delivered.
  void handshake(uint16_t sport, uint64_t t0) {
    ASSERT_EQ(client(from_client().tcp(sport, 5432, kTcpSyn), t0).verdict, Verdict::tx);
    exchange(t0);
    ASSERT_EQ(w1.run(from_backend().tcp(5432, sport, kTcpSyn | kTcpAck).bytes(), t0 + 1).verdict,
              Verdict::tx);
    exchange(t0 + 1);
    ASSERT_EQ(client(from_client().tcp(sport, 5432, kTcpAck), t0 + 2).verdict, Verdict::tx);
    exchange(t0 + 2);
  }
  static Packet from_client() { return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kVip); }
  static Packet from_backend() { return Packet().eth(kBackendMac, kLbMac).ipv4(kBackend, kClient); }
  // The state of the entry for the client's tuple on worker 0, or free when it has none.
  FlowState forward_state(uint8_t proto, uint16_t sport, uint16_t dport, uint64_t now_ms) {
    return state_of(w0, kClient, kVip, proto, sport, dport, now_ms);
  }
  FlowState reply_state(uint8_t proto, uint16_t sport, uint16_t dport, uint64_t now_ms) {
    return state_of(w1, kBackend, kClient, proto, sport, dport, now_ms);
  }
  static FlowState state_of(Harness& h, const char* src, const char* dst, uint8_t proto,
                            uint16_t sport, uint16_t dport, uint64_t now_ms) {
    dp::FlowKey k;
    k.family = dp::Family::v4;
    k.proto = proto;
    k.src = dp::parse_ip(src)->bytes;
    k.dst = dp::parse_ip(dst)->bytes;
    k.sport = sport;
    k.dport = dport;
    const dp::FlowTable& flows = h.forwarder().flows();
    const dp::FlowEntry* e = flows.find(k, flows.hash(k), now_ms);
    return e == nullptr ? FlowState::free : flows.state(e);
  }

  SplitSteering rss;
  Harness w0, w1;
};

// A connection that goes quiet after its handshake (a pooled database connection) keeps its
// reply entry: the client's ACK, seen by worker 0 only, establishes the entry worker 1 holds.
// Before, it stayed half-open and expired after the SYN timeout, and the backend's first frame
// after that was dropped.
TEST_F(ForwarderWorkers, TheClientsAckEstablishesTheReplyEntryOnTheOtherWorker) {
  ASSERT_EQ(client(from_client().tcp(40000, 5432, kTcpSyn), 1000).verdict, Verdict::tx);
  exchange(1000);
  EXPECT_EQ(reply_state(6, 5432, 40000, 1000), FlowState::tcp_syn);
  ASSERT_EQ(w1.run(from_backend().tcp(5432, 40000, kTcpSyn | kTcpAck).bytes(), 1001).verdict,
            Verdict::tx);
  exchange(1001);
  EXPECT_EQ(reply_state(6, 5432, 40000, 1001), FlowState::tcp_syn_answered);
  ASSERT_EQ(client(from_client().tcp(40000, 5432, kTcpAck), 1002).verdict, Verdict::tx);
  EXPECT_EQ(forward_state(6, 40000, 5432, 1002), FlowState::tcp_established);
  exchange(1002);
  EXPECT_EQ(reply_state(6, 5432, 40000, 1002), FlowState::tcp_established);

  // A minute of silence, well past the SYN timeout; then the server speaks first.
  const uint64_t later = 1002 + 60'000;
  const Outcome o = w1.run(from_backend().tcp(5432, 40000, kTcpAck).payload("SELECT 1").bytes(), later);
  EXPECT_EQ(o.verdict, Verdict::tx) << to_string(o);
}

// The backend's RST, seen by worker 1 only, closes the client's entry on worker 0: a connection
// the backend reset must not hold a never-evicted entry for the established timeout (2 h 4 min).
TEST_F(ForwarderWorkers, TheBackendsResetClosesTheForwardEntryOnTheOtherWorker) {
  handshake(40001, 1000);
  ASSERT_EQ(w1.run(from_backend().tcp(5432, 40001, kTcpRst).bytes(), 1003).verdict, Verdict::tx);
  exchange(1003);
  EXPECT_EQ(forward_state(6, 40001, 5432, 1003), FlowState::tcp_closed);

  // And a FIN each way, the client's seen by worker 0 and the backend's by worker 1: both
  // entries end closed.
  handshake(40002, 2000);
  ASSERT_EQ(client(from_client().tcp(40002, 5432, kTcpFin | kTcpAck), 2003).verdict, Verdict::tx);
  exchange(2003);
  EXPECT_EQ(reply_state(6, 5432, 40002, 2003), FlowState::tcp_peer_closing);
  ASSERT_EQ(w1.run(from_backend().tcp(5432, 40002, kTcpFin | kTcpAck).bytes(), 2004).verdict,
            Verdict::tx);
  exchange(2004);
  EXPECT_EQ(reply_state(6, 5432, 40002, 2004), FlowState::tcp_closed);
  EXPECT_EQ(forward_state(6, 40002, 5432, 2004), FlowState::tcp_closed);
}

// A UDP flow's first answer, seen by worker 1, confirms the client's entry on worker 0, so that a
// flood of unanswered datagrams evicts the flood's entries before it.
TEST_F(ForwarderWorkers, TheFirstAnswerConfirmsTheForwardEntryOnTheOtherWorker) {
  ASSERT_EQ(client(from_client().udp(45000, 53), 1000).verdict, Verdict::tx);
  exchange(1000);
  EXPECT_EQ(forward_state(17, 45000, 53, 1000), FlowState::udp_unreplied);
  ASSERT_EQ(w1.run(from_backend().udp(53, 45000).bytes(), 1001).verdict, Verdict::tx);
  exchange(1001);
  EXPECT_EQ(forward_state(17, 45000, 53, 1001), FlowState::udp);
  EXPECT_EQ(reply_state(17, 53, 45000, 1001), FlowState::udp);
  // Told once: the second answer sends nothing.
  ASSERT_EQ(w1.run(from_backend().udp(53, 45000).bytes(), 1002).verdict, Verdict::tx);
  EXPECT_TRUE(w1.peers.sent.empty());
}

// A message about an entry the worker no longer holds (expired, evicted) makes none.
TEST_F(ForwarderWorkers, AStateMessageForAGoneEntryIsIgnored) {
  ASSERT_EQ(client(from_client().tcp(40003, 5432, kTcpSyn), 1000).verdict, Verdict::tx);
  exchange(1000);
  ASSERT_EQ(w1.run(from_backend().tcp(5432, 40003, kTcpSyn | kTcpAck).bytes(), 1001).verdict,
            Verdict::tx);
  w1.peers.sent.clear();
  // The client's SYN, retransmitted, keeps its entry; the reply entry expires (SYN timeout,
  // 30 s from the SYN-ACK). Then the client's ACK.
  ASSERT_EQ(client(from_client().tcp(40003, 5432, kTcpSyn), 20'000).verdict, Verdict::tx);
  const uint64_t late = 32'000;
  ASSERT_EQ(client(from_client().tcp(40003, 5432, kTcpAck), late).verdict, Verdict::tx);
  EXPECT_EQ(forward_state(6, 40003, 5432, late), FlowState::tcp_established);
  ASSERT_EQ(w0.peers.sent.size(), 1u);
  exchange(late);
  EXPECT_EQ(reply_state(6, 5432, 40003, late), FlowState::free);
  EXPECT_EQ(w1.forwarder().flows().stats().inserts, 1u);
}

}  // namespace
}  // namespace magline::test
