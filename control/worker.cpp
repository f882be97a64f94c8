#include "control/worker.hpp"

#include <rte_cycles.h>

#include <memory>

#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/hash.hpp"

namespace magline::control {

namespace {

// Counter structs are arrays of uint64_t; copies between threads go word by word through
// relaxed atomics (a seqlock then tells the reader whether the copy is whole).
template <typename T>
void copy_words(T& dst, const T& src) noexcept {
  static_assert(sizeof(T) % sizeof(uint64_t) == 0 && std::is_trivially_copyable_v<T>);
  auto* d = reinterpret_cast<uint64_t*>(&dst);
  const auto* s = reinterpret_cast<const uint64_t*>(&src);
  for (size_t i = 0; i < sizeof(T) / sizeof(uint64_t); ++i) {
    std::atomic_ref<uint64_t>(d[i]).store(
        std::atomic_ref<const uint64_t>(s[i]).load(std::memory_order_relaxed),
        std::memory_order_relaxed);
  }
}

class RingPeers final : public dp::PeerLink {
 public:
  explicit RingPeers(const std::vector<PeerRing*>& out) : out_(out) {}
  bool send(uint16_t worker, const dp::PeerMessage& m) noexcept override {
    return worker < out_.size() && out_[worker] != nullptr && out_[worker]->enqueue(m);
  }

 private:
  const std::vector<PeerRing*>& out_;
};

class Loop {
 public:
  Loop(WorkerContext& ctx, dpdk::QsbrReader reader)
      : ctx_(ctx),
        peers_(ctx.peers_out),
        fwd_(ctx.config, *ctx.node, *ctx.registry, *ctx.steering, peers_, *ctx.traffic),
        reader_(std::move(reader)),
        ms_per_tick_(ms_per_tick()) {}

  void run() noexcept {
    reader_.online();
    uint64_t next_publish = 0;
    while (!ctx_.stop->load(std::memory_order_relaxed)) {
      // TSC cycles to milliseconds with a multiply (a 64-bit division costs tens of cycles).
      const uint64_t now =
          uint64_t((static_cast<dp::uint128>(rte_get_tsc_cycles()) * ms_per_tick_) >> 64);
      apply_updates();
      bool busy = transmit_for_control();
      for (uint16_t p = 0; p < ctx_.ports.size(); ++p) busy |= poll(p, now);
      ++ctx_.io.polls;
      if (!busy) {
        ++ctx_.io.idle_polls;
        fwd_.expire(now);
      }
      reader_.quiescent();
      if (now >= next_publish) {
        publish();
        next_publish = now + 100;
      }
    }
    apply_updates();
    reader_.offline();
    ctx_.counters = fwd_.counters();
    ctx_.flows = fwd_.flows().stats();
    publish();
  }

 private:
  void apply_updates() noexcept {
    uint64_t applied = 0;
    while (const uint32_t n = ctx_.updates->dequeue_burst(ups_, kUpdateBurst)) {
      for (uint32_t i = 0; i < n; ++i) fwd_.apply(ups_[i]);
      applied += n;
    }
    if (applied) ctx_.applied.fetch_add(applied, std::memory_order_release);
  }

  bool transmit_for_control() noexcept {
    if (ctx_.control_tx == nullptr) return false;
    out_.n_tx = uint16_t(ctx_.control_tx->dequeue_burst(out_.tx.data(), dp::kMaxBurst));
    if (out_.n_tx == 0) return false;
    transmit();
    return true;
  }

  // Peer messages, and frames other workers handed here (forwarded in bursts of their own).
  void drain_peers(uint64_t now) noexcept {
    uint16_t frames = 0;
    for (PeerRing* ring : ctx_.peers_in) {
      if (ring == nullptr) continue;
      while (const uint32_t n = ring->dequeue_burst(msgs_, kPeerBurst)) {
        for (uint32_t i = 0; i < n; ++i) {
          if (msgs_[i].kind != dp::PeerMessage::Kind::frame) {
            fwd_.receive(msgs_[i], now);
            continue;
          }
          handed_[frames++] = msgs_[i].pkt;
          if (frames == dp::kMaxBurst) {
            fwd_.process_handed_off(handed_, frames, now, out_);
            finish_burst();
            frames = 0;
          }
        }
      }
    }
    if (frames > 0) {
      fwd_.process_handed_off(handed_, frames, now, out_);
      finish_burst();
    }
  }

  // `node_port` indexes Node::ports (what the forwarder speaks); ctx_.ports maps it to DPDK's id.
  bool poll(uint16_t node_port, uint64_t now) noexcept {
    drain_peers(now);
    const uint16_t n =
        dpdk::rx_burst(ctx_.ports[node_port], ctx_.index, pkts_, ctx_.burst, node_port);
    if (n == 0) return false;
    fwd_.process(pkts_, n, now, out_);
    finish_burst();
    return true;
  }

  // Every frame of a forwarded burst to where its verdict sends it.
  void finish_burst() noexcept {
    transmit();
    if (out_.n_drop) dpdk::free_packets(out_.drop.data(), out_.n_drop);
    for (uint16_t i = 0; i < out_.n_slow; ++i) {
      if (!ctx_.slow->enqueue(out_.slow[i])) {
        ++ctx_.io.slow_full;
        dpdk::free_packet(out_.slow[i].pkt);
      }
    }
    for (uint16_t i = 0; i < out_.n_handoff; ++i) {
      dp::PeerMessage m;
      m.kind = dp::PeerMessage::Kind::frame;
      m.pkt = out_.handoff[i].pkt;
      if (!peers_.send(out_.handoff[i].worker, m)) {
        ++ctx_.io.handoff_full;
        dpdk::free_packet(m.pkt);
      }
    }
  }

  // Sends the burst's frames, grouped by egress port, on this worker's TX queue. Frames the
  // device does not take are freed and counted: the next burst will not wait for them.
  void transmit() noexcept {
    if (ctx_.ports.size() == 1) {  // one port: the burst as it is
      const uint16_t sent = dpdk::tx_burst(ctx_.ports[0], ctx_.index, out_.tx.data(), out_.n_tx);
      if (sent < out_.n_tx) {
        ctx_.io.tx_full += out_.n_tx - sent;
        dpdk::free_packets(out_.tx.data() + sent, uint16_t(out_.n_tx - sent));
      }
      return;
    }
    for (uint16_t p = 0; p < ctx_.ports.size(); ++p) {
      uint16_t k = 0;
      for (uint16_t i = 0; i < out_.n_tx; ++i) {
        if (out_.tx[i].port == p) group_[k++] = out_.tx[i];
      }
      if (k == 0) continue;
      const uint16_t sent = dpdk::tx_burst(ctx_.ports[p], ctx_.index, group_, k);
      if (sent < k) {
        ctx_.io.tx_full += k - sent;
        dpdk::free_packets(group_ + sent, uint16_t(k - sent));
      }
    }
  }

  void publish() noexcept {
    ctx_.published_seq.fetch_add(1, std::memory_order_acq_rel);  // odd: writing
    copy_words(ctx_.published_counters, fwd_.counters());
    copy_words(ctx_.published_flows, fwd_.flows().stats());
    copy_words(ctx_.published_io, ctx_.io);
    ctx_.published_seq.fetch_add(1, std::memory_order_release);  // even: whole
  }

  WorkerContext& ctx_;
  RingPeers peers_;
  dp::Forwarder fwd_;
  dpdk::QsbrReader reader_;
  // Milliseconds per TSC cycle in units of 2^-64.
  static uint64_t ms_per_tick() noexcept {
    const uint64_t hz = std::max<uint64_t>(1000, rte_get_tsc_hz());
    return uint64_t((static_cast<dp::uint128>(1000) << 64) / hz);
  }
  uint64_t ms_per_tick_;
  dp::Packet pkts_[dp::kMaxBurst];
  dp::Packet handed_[dp::kMaxBurst];  // frames other workers handed here
  // Dequeue buffers, members so that no loop pays for constructing them (6 KiB of zeroes).
  static constexpr uint32_t kUpdateBurst = 64;
  static constexpr uint32_t kPeerBurst = 32;
  dp::Packet group_[dp::kMaxBurst];  // one egress port's share of a burst
  dp::Update ups_[kUpdateBurst];
  dp::PeerMessage msgs_[kPeerBurst];
  dp::BurstOut out_;
};

}  // namespace

int worker_main(void* arg) {
  auto& ctx = *static_cast<WorkerContext*>(arg);
  auto reader = dpdk::QsbrReader::create(*ctx.qsbr, ctx.index);
  if (!reader) return -1;
  // Built here, on the worker's core, so that the flow table's pages are first touched (and
  // placed) on this core's NUMA node.
  auto loop = std::make_unique<Loop>(ctx, std::move(reader).value());
  loop->run();
  return 0;
}

void read_worker_counters(const WorkerContext& w, dp::ForwarderCounters& counters,
                          dp::FlowTableStats& flows, WorkerIoCounters& io) {
  for (;;) {
    const uint64_t before = w.published_seq.load(std::memory_order_acquire);
    if (before % 2 == 0) {
      copy_words(counters, w.published_counters);
      copy_words(flows, w.published_flows);
      copy_words(io, w.published_io);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (w.published_seq.load(std::memory_order_relaxed) == before) return;
    }
  }
}

}  // namespace magline::control
