// The real worker loop (control/worker.cpp: worker_main) on a net_ring port, fed and drained
// through the rings the test holds: updates arrive through the update ring as `magline run`
// sends them, frames go in as bytes and come out rewritten, slow-path frames reach the control
// ring, drops are counted with their reasons, and the worker stops when told: what the packet
// tables (tests/packet/) check on the Forwarder alone, here through everything around it.
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

#include "control/publisher.hpp"
#include "control/worker.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/port.hpp"
#include "tests/integration/eal_env.hpp"
#include "tests/integration/mbuf_helpers.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::control {
namespace {

using test::kBackendMac;
using test::kClientMac;
using test::kLbMac;
using test::test_pool;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

class WorkerLoop : public ::testing::Test {
 protected:
  static constexpr const char* kRings = "wl";
  static constexpr const char* kName = "net_ring_wl";

  void SetUp() override {
    rx_ = rte_ring_create("wl_rx", 256, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    tx_ = rte_ring_create("wl_tx", 256, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    ASSERT_NE(rx_, nullptr);
    ASSERT_NE(tx_, nullptr);
    ASSERT_GE(rte_eth_from_rings(kRings, &rx_, 1, &tx_, 1, SOCKET_ID_ANY), 0);
    auto port = dpdk::Port::open({.device = kName, .rss = dpdk::RssMode::off}, test_pool());
    ASSERT_TRUE(port.ok()) << port.error().message;
    port_.emplace(std::move(port).value());
    ASSERT_TRUE(port_->start().ok());

    dp::NodePort p;
    p.id = 0;
    p.name = "lan0";
    p.mac = dp::MacAddr{kLbMac};
    p.addrs = {{ip("198.18.0.1"), 16}};
    node_.ports.push_back(p);
    publisher_.emplace(node_);

    auto qsbr = dpdk::Qsbr::create(1);
    auto updates = UpdateRing::create(1024, "wl_updates");
    auto slow = SlowRing::create(256, "wl_slow");
    ASSERT_TRUE(qsbr.ok() && updates.ok() && slow.ok());
    qsbr_.emplace(std::move(qsbr).value());
    updates_.emplace(std::move(updates).value());
    slow_.emplace(std::move(slow).value());

    ctx_.index = 0;
    ctx_.traffic = std::make_unique<dp::TrafficRows>();
    ctx_.config.flow_capacity = 4096;
    ctx_.node = &node_;
    ctx_.registry = &publisher_->registry();
    ctx_.steering = &steering_;
    ctx_.ports = {port_->id()};
    ctx_.updates = &*updates_;
    ctx_.peers_in = {nullptr};
    ctx_.peers_out = {nullptr};
    ctx_.slow = &*slow_;
    ctx_.qsbr = &*qsbr_;
    ctx_.stop = &stop_;
  }

  void TearDown() override {
    stop();
    dp::SlowPacket sp;
    while (slow_ && slow_->dequeue(sp)) dpdk::free_packet(sp.pkt);
    port_.reset();
    rte_eal_hotplug_remove("vdev", kName);
    void* m;
    while (rte_ring_dequeue(rx_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    while (rte_ring_dequeue(tx_, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    rte_ring_free(rx_);
    rte_ring_free(tx_);
  }

  void start() {
    thread_ = std::thread([this] { result_ = worker_main(&ctx_); });
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  // Starts the worker with one full-NAT service, 198.18.100.1:80 -> 198.18.1.10:8080, and its
  // backend's neighbour; web_updates_ counts the updates that took.
  void start_with_web() {
    dp::Service web;
    web.name = "web";
    web.frontends = {
        {ip("198.18.100.1"), 80, dp::Protocol::tcp, dp::FrontendKind::load_balancer}};
    web.backends = {{ip("198.18.1.10"), 8080, 1, {}}};
    web.table_size = 251;
    auto change = publisher_->update({web}, {}, 0);
    ASSERT_TRUE(change.ok()) << change.error().message;
    dp::Update neighbor;
    neighbor.kind = dp::Update::Kind::neighbor;
    neighbor.neighbor = {ip("198.18.1.10"), dp::MacAddr{kBackendMac}, 0, true};
    std::vector<dp::Update> ups = change->updates;
    ups.push_back(neighbor);
    web_updates_ = ups.size();
    start();
    send(ups);
  }

  // Sends updates as the control thread does and waits until the worker applied them.
  void send(const std::vector<dp::Update>& ups) {
    const uint64_t want = ctx_.applied.load() + ups.size();
    ASSERT_EQ(updates_->enqueue_burst(ups.data(), uint32_t(ups.size())), ups.size());
    ASSERT_TRUE(eventually([&] { return ctx_.applied.load(std::memory_order_acquire) >= want; },
                           std::chrono::milliseconds(5000)))
        << "updates not applied";
  }

  // One frame in; whatever the worker transmits within `wait` out.
  std::vector<std::vector<uint8_t>> exchange(const std::vector<uint8_t>& frame,
                                             std::chrono::milliseconds wait =
                                                 std::chrono::milliseconds(200)) {
    rte_mbuf* m = test::mbuf_with(test_pool(), frame);
    EXPECT_NE(m, nullptr);
    EXPECT_EQ(rte_ring_enqueue(rx_, m), 0);
    return transmitted(wait);
  }

  // The first frame the worker transmits within `wait` (none if it sends nothing).
  std::vector<std::vector<uint8_t>> transmitted(std::chrono::milliseconds wait) {
    std::vector<std::vector<uint8_t>> out;
    eventually(
        [&] {
          void* got;
          if (rte_ring_dequeue(tx_, &got) != 0) return false;
          auto* mb = static_cast<rte_mbuf*>(got);
          out.emplace_back(rte_pktmbuf_mtod(mb, uint8_t*),
                           rte_pktmbuf_mtod(mb, uint8_t*) + mb->data_len);
          rte_pktmbuf_free(mb);
          return true;
        },
        wait);
    return out;
  }

  // Polls `done` until it holds or `wait` has passed; returns whether it held.
  template <typename F>
  static bool eventually(F&& done,
                         std::chrono::milliseconds wait = std::chrono::milliseconds(2000)) {
    const auto end = std::chrono::steady_clock::now() + wait;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      std::this_thread::yield();
    }
    return true;
  }

  dp::Node node_;
  std::optional<Publisher> publisher_;
  dp::SingleWorker steering_;
  dp::SingleWorker on_worker_one_{1};  // the NIC gives every connection to worker 1 (the test)
  std::deque<PeerRing> rings_;  // peer rings of two-worker tests
  size_t web_updates_ = 0;
  std::optional<dpdk::Qsbr> qsbr_;
  std::optional<UpdateRing> updates_;
  std::optional<SlowRing> slow_;
  std::optional<dpdk::Port> port_;
  rte_ring* rx_ = nullptr;
  rte_ring* tx_ = nullptr;
  WorkerContext ctx_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int result_ = -1;
};

TEST_F(WorkerLoop, ForwardsRepliesSendsArpToTheControlThreadCountsDropsAndStops) {
  start_with_web();
  if (HasFatalFailure()) return;

  // A SYN to the VIP leaves for the backend, full-NAT: from Magline's address, to the backend's
  // MAC.
  const auto syn = test::Packet()
                       .eth(kClientMac, kLbMac)
                       .ipv4("198.18.10.1", "198.18.100.1")
                       .tcp(40000, 80, dp::kTcpSyn)
                       .bytes();
  auto out = exchange(syn);
  ASSERT_EQ(out.size(), 1u);
  dp::Parsed p;
  ASSERT_EQ(dp::parse({out[0].data(), out[0].size()}, p), dp::DropReason::none);
  EXPECT_EQ(dp::to_string(p.key.dst_addr()), "198.18.1.10");
  EXPECT_EQ(p.key.dport, 8080);
  EXPECT_EQ(dp::to_string(p.key.src_addr()), "198.18.0.1");
  const uint16_t snat_port = p.key.sport;
  EXPECT_TRUE(std::equal(kBackendMac.begin(), kBackendMac.end(), out[0].begin()));

  // The backend's SYN-ACK goes back to the client, from the VIP, to the MAC it came from.
  const auto syn_ack = test::Packet()
                           .eth(kBackendMac, kLbMac)
                           .ipv4("198.18.1.10", "198.18.0.1")
                           .tcp(8080, snat_port, dp::kTcpSyn | dp::kTcpAck)
                           .bytes();
  out = exchange(syn_ack);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(dp::parse({out[0].data(), out[0].size()}, p), dp::DropReason::none);
  EXPECT_EQ(dp::to_string(p.key.src_addr()), "198.18.100.1");
  EXPECT_EQ(p.key.sport, 80);
  EXPECT_EQ(dp::to_string(p.key.dst_addr()), "198.18.10.1");
  EXPECT_EQ(p.key.dport, 40000);
  EXPECT_TRUE(std::equal(kClientMac.begin(), kClientMac.end(), out[0].begin()));

  // ARP for the VIP is the control thread's: it arrives on the slow ring, nothing is sent.
  const auto arp = test::Packet()
                       .arp(1, kClientMac, "198.18.10.1", {}, "198.18.100.1")
                       .bytes();
  EXPECT_TRUE(exchange(arp, std::chrono::milliseconds(50)).empty());
  dp::SlowPacket sp;
  ASSERT_TRUE(eventually([&] { return slow_->dequeue(sp); }));
  EXPECT_EQ(sp.reason, dp::SlowReason::arp);
  dpdk::free_packet(sp.pkt);

  // Nothing listens on port 81: dropped, counted.
  const auto stray = test::Packet()
                         .eth(kClientMac, kLbMac)
                         .ipv4("198.18.10.1", "198.18.100.1")
                         .tcp(40001, 81, dp::kTcpSyn)
                         .bytes();
  EXPECT_TRUE(exchange(stray, std::chrono::milliseconds(50)).empty());

  // The service goes: its connection's next frame finds no service and is dropped.
  auto gone = publisher_->update({}, {"web"}, 0);
  ASSERT_TRUE(gone.ok());
  send(gone->updates);
  const auto ack = test::Packet()
                       .eth(kClientMac, kLbMac)
                       .ipv4("198.18.10.1", "198.18.100.1")
                       .tcp(40000, 80, dp::kTcpAck)
                       .bytes();
  out = exchange(ack);
  EXPECT_TRUE(out.empty()) << "a frame for a removed service was forwarded";

  stop();
  EXPECT_EQ(result_, 0);
  EXPECT_EQ(ctx_.counters.rx_packets, 5u);
  EXPECT_EQ(ctx_.counters.tx_packets, 2u);
  EXPECT_EQ(ctx_.counters.new_connections, 1u);
  EXPECT_EQ(ctx_.counters.replies, 1u);
  EXPECT_EQ(ctx_.counters.to_slow_path, 1u);
  EXPECT_EQ(ctx_.counters.drops[size_t(dp::DropReason::no_service)], 2u);
  EXPECT_EQ(ctx_.counters.updates_applied, web_updates_ + gone->updates.size());
}

// Frames handed between workers ride the peer rings: an ICMP error about a connection worker 1
// holds leaves worker 0 on its ring to worker 1, unchanged; a frame worker 1 hands over is
// forwarded by worker 0 as if received, counted apart from what it received.
TEST_F(WorkerLoop, HandsFramesToTheWorkerHoldingTheirConnectionAndTakesFramesHandedToIt) {
  // Members, so that they outlive the worker thread if an assertion returns early.
  auto created_to1 = PeerRing::create(64, "wl_to1");
  auto created_from1 = PeerRing::create(64, "wl_from1");
  ASSERT_TRUE(created_to1.ok() && created_from1.ok());
  auto& to1 = rings_.emplace_back(std::move(created_to1).value());
  auto& from1 = rings_.emplace_back(std::move(created_from1).value());
  ctx_.steering = &on_worker_one_;
  ctx_.config.workers = 2;
  ctx_.peers_in = {nullptr, &from1};
  ctx_.peers_out = {nullptr, &to1};
  start_with_web();
  if (HasFatalFailure()) return;

  // Worker 0 receives an error about a connection it does not hold: onto the ring to worker 1.
  const auto error = test::Packet()
                         .eth(kBackendMac, kLbMac)
                         .ipv4("198.18.1.1", "198.18.0.1")
                         .icmp_error(3, 4, test::Packet().ipv4("198.18.0.1", "198.18.1.10")
                                               .tcp(1234, 8080, dp::kTcpAck), 48, 1280)
                         .bytes();
  EXPECT_TRUE(exchange(error, std::chrono::milliseconds(50)).empty());
  dp::PeerMessage m;
  ASSERT_TRUE(eventually([&] { return to1.dequeue(m); }));
  ASSERT_EQ(m.kind, dp::PeerMessage::Kind::frame);
  EXPECT_EQ(std::vector<uint8_t>(m.pkt.data, m.pkt.data + m.pkt.len), error);
  dpdk::free_packet(m.pkt);

  // Worker 1 hands worker 0 a SYN: forwarded to the backend.
  const auto syn = test::Packet()
                       .eth(kClientMac, kLbMac)
                       .ipv4("198.18.10.1", "198.18.100.1")
                       .tcp(40000, 80, dp::kTcpSyn)
                       .bytes();
  dp::PeerMessage handed;
  handed.kind = dp::PeerMessage::Kind::frame;
  handed.pkt = dpdk::to_packet(test::mbuf_with(test_pool(), syn), 0);
  ASSERT_TRUE(from1.enqueue(handed));
  const auto out = transmitted(std::chrono::milliseconds(2000));
  ASSERT_EQ(out.size(), 1u) << "the handed-off SYN was not forwarded";
  const std::vector<uint8_t>& sent = out[0];
  dp::Parsed p;
  ASSERT_EQ(dp::parse({sent.data(), sent.size()}, p), dp::DropReason::none);
  EXPECT_EQ(dp::to_string(p.key.dst_addr()), "198.18.1.10");
  EXPECT_EQ(p.key.dport, 8080);

  stop();
  while (to1.dequeue(m)) {  // the SYN's reply entry, sent to worker 1 (its replies' owner)
    EXPECT_NE(m.kind, dp::PeerMessage::Kind::frame);
  }
  EXPECT_EQ(result_, 0);
  EXPECT_EQ(ctx_.counters.rx_packets, 1u);
  EXPECT_EQ(ctx_.counters.handoffs_sent, 1u);
  EXPECT_EQ(ctx_.counters.handoffs_received, 1u);
  EXPECT_EQ(ctx_.counters.new_connections, 1u);
  EXPECT_EQ(ctx_.counters.tx_packets, 1u);
  EXPECT_EQ(ctx_.io.handoff_full, 0u);
}

}  // namespace
}  // namespace magline::control
