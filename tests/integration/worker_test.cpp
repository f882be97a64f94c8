// The real workers as `magline run` builds and launches them (control/dpdk_workers.hpp: the
// core's Worker on lcores, over ethdev queues, with DPDK's rings) on a net_ring port whose rings
// the test holds: updates arrive through the update ring as the control thread sends them,
// frames go in as bytes and come out rewritten, slow-path frames reach the control thread's
// ring, drops are counted with their reasons, frames travel between two workers on the peer
// rings, and the workers stop when told: what the packet tables (tests/packet/) check on one
// worker alone, here through everything around it.
#include <gtest/gtest.h>
#include <rte_dev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ring.h>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "control/dpdk_workers.hpp"
#include "control/publisher.hpp"
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
  static constexpr const char* kName = "net_ring_wl";

  // A net_ring port with one RX and one TX ring per worker, and `workers` workers on lcores
  // 1, 2, ... (not launched).
  void make(uint16_t workers, const dp::Steering& steering) {
    for (uint16_t q = 0; q < workers; ++q) {
      const std::string n = std::to_string(q);
      rx_.push_back(rte_ring_create(("wl_rx" + n).c_str(), 256, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
      tx_.push_back(rte_ring_create(("wl_tx" + n).c_str(), 256, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ));
      ASSERT_NE(rx_.back(), nullptr);
      ASSERT_NE(tx_.back(), nullptr);
    }
    ASSERT_GE(rte_eth_from_rings("wl", rx_.data(), workers, tx_.data(), workers, SOCKET_ID_ANY),
              0);
    auto port = dpdk::Port::open({.device = kName, .rx_queues = workers, .tx_queues = workers,
                                  .rss = dpdk::RssMode::off},
                                 test_pool());
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

    WorkerSetup setup;
    setup.forwarder.flow_capacity = 4096;
    setup.node = &node_;
    setup.steering = &steering;
    setup.port_ids = {port_->id()};
    for (uint16_t w = 0; w < workers; ++w) setup.lcores.push_back(1 + w);
    setup.update_ring = 1024;
    auto built = DpdkWorkers::create(setup, test_pool());
    ASSERT_TRUE(built.ok()) << built.error().message;
    workers_ = std::move(built).value();
  }

  void TearDown() override {
    workers_.reset();  // stops them, frees what is left in their rings
    port_.reset();
    rte_eal_hotplug_remove("vdev", kName);
    void* m;
    for (rte_ring* r : rx_) {
      while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
    }
    for (rte_ring* r : tx_) {
      while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      rte_ring_free(r);
    }
  }

  // Launches the workers with one full-NAT service, 198.18.100.1:80 -> 198.18.1.10:8080, and
  // its backend's neighbour; web_updates_ counts the updates that took.
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
    ASSERT_TRUE(workers_->launch(publisher_->registry()).ok());
    send(ups);
  }

  // Sends updates to every worker as the control thread does and waits until they applied them.
  void send(const std::vector<dp::Update>& ups) {
    for (size_t w = 0; w < workers_->workers(); ++w) {
      const uint64_t want = workers_->applied(w) + ups.size();
      ASSERT_EQ(workers_->send_updates(w, ups.data(), uint32_t(ups.size())), ups.size());
      ASSERT_TRUE(eventually([&] { return workers_->applied(w) >= want; },
                             std::chrono::milliseconds(5000)))
          << "updates not applied by worker " << w;
    }
  }

  // One frame in on worker `queue`'s RX ring; whatever it transmits within `wait` out.
  std::vector<std::vector<uint8_t>> exchange(const std::vector<uint8_t>& frame,
                                             std::chrono::milliseconds wait =
                                                 std::chrono::milliseconds(200),
                                             size_t queue = 0) {
    rte_mbuf* m = test::mbuf_with(test_pool(), frame);
    EXPECT_NE(m, nullptr);
    EXPECT_EQ(rte_ring_enqueue(rx_[queue], m), 0);
    return transmitted(wait, queue);
  }

  // The first frame worker `queue` transmits within `wait` (none if it sends nothing).
  std::vector<std::vector<uint8_t>> transmitted(std::chrono::milliseconds wait,
                                                size_t queue = 0) {
    std::vector<std::vector<uint8_t>> out;
    eventually(
        [&] {
          void* got;
          if (rte_ring_dequeue(tx_[queue], &got) != 0) return false;
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

  dp::WorkerCounters counters(size_t worker) const { return workers_->share(worker).read(); }

  dp::Node node_;
  std::optional<Publisher> publisher_;
  dp::SingleWorker steering_;
  dp::SingleWorker on_worker_one_{1};  // the NIC gives every connection to worker 1
  size_t web_updates_ = 0;
  std::optional<dpdk::Port> port_;
  std::vector<rte_ring*> rx_, tx_;
  std::unique_ptr<DpdkWorkers> workers_;
};

TEST_F(WorkerLoop, ForwardsRepliesSendsArpToTheControlThreadCountsDropsAndStops) {
  make(1, steering_);
  if (HasFatalFailure()) return;
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
  ASSERT_TRUE(eventually([&] { return workers_->receive_slow(0, &sp, 1) == 1; }));
  EXPECT_EQ(sp.reason, dp::SlowReason::arp);
  dpdk::free_packet(sp.pkt);

  // A frame the control thread sends leaves on worker 0's queue as it is.
  dp::Packet frame = dpdk::to_packet(test::mbuf_with(test_pool(), arp), 0);
  ASSERT_TRUE(workers_->send_frame(frame));
  out = transmitted(std::chrono::milliseconds(2000));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], arp);

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

  workers_->stop();
  EXPECT_FALSE(workers_->failed(0));
  const dp::ForwarderCounters c = counters(0).forwarder;
  EXPECT_EQ(c.rx_packets, 5u);
  EXPECT_EQ(c.tx_packets, 2u);
  EXPECT_EQ(c.new_connections, 1u);
  EXPECT_EQ(c.replies, 1u);
  EXPECT_EQ(c.to_slow_path, 1u);
  EXPECT_EQ(c.drops[size_t(dp::DropReason::no_service)], 2u);
  EXPECT_EQ(c.updates_applied, web_updates_ + gone->updates.size());
  // The backend's traffic, in worker 0's row for it.
  EXPECT_EQ(workers_->traffic(0).backend_total(0).packets, 1u);
}

// Two workers on two lcores: an ICMP error about a connection worker 1 holds arrives at worker
// 0 (RSS spreads ICMP by its outer addresses alone), which hands it to worker 1 on their peer
// ring; worker 1 translates it for the client as if it had received it.
TEST_F(WorkerLoop, AFrameHandedToTheWorkerHoldingItsConnectionIsTranslatedThere) {
  make(2, on_worker_one_);
  if (HasFatalFailure()) return;
  start_with_web();
  if (HasFatalFailure()) return;

  // The client's SYN reaches worker 1, which opens the connection.
  const auto syn = test::Packet()
                       .eth(kClientMac, kLbMac)
                       .ipv4("198.18.10.1", "198.18.100.1")
                       .tcp(40000, 80, dp::kTcpSyn)
                       .bytes();
  auto out = exchange(syn, std::chrono::milliseconds(2000), 1);
  ASSERT_EQ(out.size(), 1u);
  dp::Parsed p;
  ASSERT_EQ(dp::parse({out[0].data(), out[0].size()}, p), dp::DropReason::none);
  const uint16_t snat_port = p.key.sport;

  // A router on the backend's side answers the forwarded SYN with "fragmentation needed": it
  // lands on worker 0.
  const auto error = test::Packet()
                         .eth(kBackendMac, kLbMac)
                         .ipv4("198.18.1.1", "198.18.0.1")
                         .icmp_error(3, 4, test::Packet().ipv4("198.18.0.1", "198.18.1.10")
                                               .tcp(snat_port, 8080, dp::kTcpSyn), 48, 1280)
                         .bytes();
  EXPECT_TRUE(exchange(error, std::chrono::milliseconds(50), 0).empty());
  out = transmitted(std::chrono::milliseconds(2000), 1);
  ASSERT_EQ(out.size(), 1u) << "worker 1 did not send the handed-over error on";
  ASSERT_EQ(dp::parse({out[0].data(), out[0].size()}, p), dp::DropReason::none);
  EXPECT_EQ(dp::to_string(p.key.dst_addr()), "198.18.10.1");  // to the client
  EXPECT_TRUE(p.icmp_error);

  workers_->stop();
  EXPECT_EQ(counters(0).forwarder.handoffs_sent, 1u);
  EXPECT_EQ(counters(0).io.handoff_full, 0u);
  EXPECT_EQ(counters(1).forwarder.handoffs_received, 1u);
  EXPECT_EQ(counters(1).forwarder.icmp_errors, 1u);
  EXPECT_EQ(counters(1).forwarder.new_connections, 1u);
}

}  // namespace
}  // namespace magline::control
