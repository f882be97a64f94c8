#include "control/dpdk_workers.hpp"

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <sys/prctl.h>

#include <ctime>
#include <optional>

#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/qsbr.hpp"
#include "dataplane/dpdk/ring.hpp"
#include "dataplane/worker.hpp"

namespace magline::control {

namespace {

// A worker's queues: RX and TX queue `queue` of every port.
struct EthdevIo {
  const std::vector<uint16_t>* ports;  // DPDK ids, in Node::ports order
  uint16_t queue = 0;

  uint16_t rx(uint16_t port, dp::Packet* out, uint16_t n) noexcept {
    return dpdk::rx_burst((*ports)[port], queue, out, n, port);
  }
  uint16_t tx(uint16_t port, dp::Packet* pkts, uint16_t n) noexcept {
    return dpdk::tx_burst((*ports)[port], queue, pkts, n);
  }
  void free(const dp::Packet* pkts, uint16_t n) noexcept { dpdk::free_packets(pkts, n); }
};

using LcoreWorker = dp::Worker<EthdevIo, dpdk::SpscRing>;

// Milliseconds from the TSC with a multiply (a 64-bit division costs tens of cycles a turn).
struct TscClock {
  uint64_t ms_per_tick = uint64_t((static_cast<dp::uint128>(1000) << 64) /
                                  std::max<uint64_t>(1000, rte_get_tsc_hz()));
  uint64_t operator()() const noexcept {
    return uint64_t((static_cast<dp::uint128>(rte_get_tsc_cycles()) * ms_per_tick) >> 64);
  }
};

// The idle backoff on the TSC, sleeping with nanosleep. The worker's timer slack is set to 1 ns
// when it may sleep (prctl): the default 50 us would add to every sleep.
class TscIdle {
 public:
  explicit TscIdle(dp::IdleConfig c)
      : tsc_per_us_(std::max<uint64_t>(1, rte_get_tsc_hz() / 1000000)), backoff_(c, tsc_per_us_) {
    if (backoff_.enabled()) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  }
  uint32_t after_turn(bool busy) noexcept {
    if (!backoff_.enabled()) return 0;
    return backoff_.after_turn(busy, busy ? 0 : rte_get_tsc_cycles());
  }
  uint64_t sleep(uint32_t us) noexcept {
    const uint64_t t0 = rte_get_tsc_cycles();
    const timespec ts{0, long(us) * 1000};
    nanosleep(&ts, nullptr);
    return (rte_get_tsc_cycles() - t0) / tsc_per_us_;
  }

 private:
  uint64_t tsc_per_us_;
  dp::IdleBackoff backoff_;
};

// Slow-path buffers from the packet pool.
class MbufPool final : public dp::PacketPool {
 public:
  explicit MbufPool(rte_mempool* mp) : mp_(mp) {}
  bool alloc(dp::Packet& p, uint16_t len) override {
    rte_mbuf* m = rte_pktmbuf_alloc(mp_);
    if (m == nullptr) return false;
    if (rte_pktmbuf_tailroom(m) < len) {
      rte_pktmbuf_free(m);
      return false;
    }
    p = dpdk::to_packet(m, 0);
    p.len = len;
    return true;
  }
  void free(dp::Packet& p) override { dpdk::free_packet(p); }

 private:
  rte_mempool* mp_;
};

}  // namespace

struct DpdkWorkers::Rings {
  std::vector<std::unique_ptr<dpdk::SpscRing<dp::Update>>> updates;
  std::vector<std::unique_ptr<dpdk::SpscRing<dp::SlowPacket>>> slow;
  std::vector<std::unique_ptr<dpdk::SpscRing<dp::PeerMessage>>> peers;  // [from * W + to]
  std::unique_ptr<dpdk::SpscRing<dp::Packet>> control_tx;
  std::optional<dpdk::Qsbr> qsbr;
  std::unique_ptr<MbufPool> mbufs;
};

struct DpdkWorkers::Context {
  uint16_t index = 0;
  const WorkerSetup* setup = nullptr;
  // Registered and online from create() on: before any update can be in the worker's ring, so
  // that a worker still starting (faulting its flow table in) holds grace periods up rather
  // than letting the states its ring names be freed (control/publication.hpp).
  std::optional<dpdk::QsbrReader> reader;
  const std::atomic<bool>* stop = nullptr;
  const dp::FrontendRegistry* registry = nullptr;
  dp::ForwarderConfig config;
  EthdevIo io;
  dp::WorkerRings<dpdk::SpscRing> rings;
  dp::WorkerShare share;
  std::unique_ptr<dp::TrafficRows> traffic;
  std::unique_ptr<LcoreWorker> worker;  // built on the worker's lcore
};

namespace {

template <typename T>
Result<std::unique_ptr<dpdk::SpscRing<T>>> ring(uint32_t capacity) {
  auto r = dpdk::SpscRing<T>::create(capacity);
  if (!r) return r.error();
  return std::make_unique<dpdk::SpscRing<T>>(std::move(r).value());
}

// The lcore entry point (rte_lcore_function_t).
int lcore_main(void* arg) {
  auto& ctx = *static_cast<DpdkWorkers::Context*>(arg);
  const WorkerSetup& setup = *ctx.setup;
  ctx.worker = std::make_unique<LcoreWorker>(ctx.config, *setup.node, *ctx.registry,
                                             *setup.steering, ctx.io, ctx.rings, *ctx.traffic,
                                             ctx.share, setup.burst);
  TscIdle idle(setup.idle);
  ctx.worker->run(*ctx.stop, TscClock{}, *ctx.reader, idle);
  return 0;
}

}  // namespace

Result<std::unique_ptr<DpdkWorkers>> DpdkWorkers::create(WorkerSetup setup, rte_mempool* pool) {
  const size_t n = setup.lcores.size();
  if (n == 0) return Error{"no worker core"};
  std::unique_ptr<DpdkWorkers> self(new DpdkWorkers);
  self->setup_ = std::move(setup);
  const WorkerSetup& s = self->setup_;
  auto rings = std::make_unique<Rings>();
  auto qsbr = dpdk::Qsbr::create(uint32_t(n));
  if (!qsbr) return qsbr.error();
  rings->qsbr.emplace(std::move(qsbr).value());
  rings->mbufs = std::make_unique<MbufPool>(pool);
  for (size_t w = 0; w < n; ++w) {
    auto up = ring<dp::Update>(s.update_ring);
    auto slow = ring<dp::SlowPacket>(s.slow_ring);
    if (!up || !slow) return Error{"cannot allocate the workers' rings"};
    rings->updates.push_back(std::move(up).value());
    rings->slow.push_back(std::move(slow).value());
  }
  auto control_tx = ring<dp::Packet>(s.control_tx_ring);
  if (!control_tx) return Error{"cannot allocate the workers' rings"};
  rings->control_tx = std::move(control_tx).value();
  rings->peers.resize(n * n);
  for (size_t from = 0; from < n; ++from) {
    for (size_t to = 0; to < n; ++to) {
      if (from == to) continue;
      auto r = ring<dp::PeerMessage>(s.peer_ring);
      if (!r) return Error{"cannot allocate the workers' rings"};
      rings->peers[from * n + to] = std::move(r).value();
    }
  }
  for (size_t w = 0; w < n; ++w) {
    auto ctx = std::make_unique<Context>();
    ctx->index = uint16_t(w);
    ctx->setup = &self->setup_;
    auto reader = dpdk::QsbrReader::create(*rings->qsbr, uint32_t(w));
    if (!reader) return reader.error();
    ctx->reader.emplace(std::move(reader).value());
    ctx->reader->online();
    ctx->stop = &self->stop_;
    ctx->config = s.forwarder;
    ctx->config.worker = uint16_t(w);
    ctx->config.workers = uint16_t(n);
    // The flow table's hash seed: per process and worker, so that a remote sender cannot aim
    // keys at one bucket.
    ctx->config.flow_seed = rte_rdtsc() * 0x9e3779b97f4a7c15ull + w;
    ctx->io = EthdevIo{&self->setup_.port_ids, uint16_t(w)};
    ctx->rings.updates = rings->updates[w].get();
    ctx->rings.slow = rings->slow[w].get();
    if (w == 0) ctx->rings.control_tx = rings->control_tx.get();
    for (size_t o = 0; o < n; ++o) {
      ctx->rings.peers_in.push_back(rings->peers[o * n + w].get());
      ctx->rings.peers_out.push_back(rings->peers[w * n + o].get());
    }
    ctx->traffic = std::make_unique<dp::TrafficRows>();
    self->contexts_.push_back(std::move(ctx));
  }
  self->rings_ = std::move(rings);
  return self;
}

DpdkWorkers::~DpdkWorkers() {
  stop();
  contexts_.clear();  // the workers' flow tables, and their held frames, go first
  if (!rings_) return;
  // Frames still on their way between threads go back to their pools.
  dp::Packet p;
  while (rings_->control_tx->dequeue(p)) dpdk::free_packet(p);
  dp::SlowPacket sp;
  for (auto& r : rings_->slow) {
    while (r->dequeue(sp)) dpdk::free_packet(sp.pkt);
  }
  dp::PeerMessage m;
  for (auto& r : rings_->peers) {
    while (r && r->dequeue(m)) {
      if (m.kind == dp::PeerMessage::Kind::frame) dpdk::free_packet(m.pkt);
    }
  }
}

Result<void> DpdkWorkers::launch(const dp::FrontendRegistry& registry) {
  for (size_t w = 0; w < contexts_.size(); ++w) {
    contexts_[w]->registry = &registry;
    if (rte_eal_remote_launch(lcore_main, contexts_[w].get(), setup_.lcores[w]) != 0) {
      stop();
      return Error{"cannot launch worker " + std::to_string(w) + " on lcore " +
                   std::to_string(setup_.lcores[w]) + ": it is not a free worker lcore"};
    }
    launched_ = true;
  }
  return {};
}

void DpdkWorkers::stop() {
  if (!launched_) return;
  stop_.store(true);
  for (unsigned lcore : setup_.lcores) rte_eal_wait_lcore(lcore);
  launched_ = false;
}

bool DpdkWorkers::failed(size_t worker) const noexcept {
  return launched_ && !stop_.load() && rte_eal_get_lcore_state(setup_.lcores[worker]) != RUNNING;
}

uint32_t DpdkWorkers::send_updates(size_t worker, const dp::Update* ups, uint32_t n) noexcept {
  return rings_->updates[worker]->enqueue_burst(ups, n);
}

uint64_t DpdkWorkers::applied(size_t worker) const noexcept {
  return contexts_[worker]->share.applied();
}

uint64_t DpdkWorkers::grace_start() noexcept { return rings_->qsbr->start(); }
bool DpdkWorkers::grace_passed(uint64_t token) noexcept { return rings_->qsbr->passed(token); }

uint32_t DpdkWorkers::receive_slow(size_t worker, dp::SlowPacket* out, uint32_t n) noexcept {
  return rings_->slow[worker]->dequeue_burst(out, n);
}

bool DpdkWorkers::send_frame(const dp::Packet& p) noexcept {
  return rings_->control_tx->enqueue(p);
}

dp::PacketPool& DpdkWorkers::packets() noexcept { return *rings_->mbufs; }

const dp::WorkerShare& DpdkWorkers::share(size_t worker) const noexcept {
  return contexts_[worker]->share;
}

dp::TrafficRows& DpdkWorkers::traffic(size_t worker) noexcept {
  return *contexts_[worker]->traffic;
}

}  // namespace magline::control
