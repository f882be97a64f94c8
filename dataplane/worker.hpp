// A worker: one forwarder and the loop around it, over any port and any ring. The one burst
// dispatch of the project: `magline run` binds it to lcores and DPDK ports
// (control/dpdk_worker.cpp), `magline replay` to a capture (control/replay.cpp), the packet tests
// and the benchmarks to theirs. Each turn of the loop:
//
//   drain the update ring (apply every update)
//   worker 0: send the control thread's frames (ARP and NDP answers, released frames)
//   for each port: drain the peer rings, receive a burst, forward it, transmit (grouped by
//                  egress port), free the drops, hand slow-path frames to the control thread,
//                  hand frames over to the worker that holds their connection
//   on an idle turn: reclaim expired flows
//
// Peer messages are drained right before every receive: a DNAT connection's reply entry is sent
// before its first packet leaves, so it is in place before any reply can be received. Frames
// other workers handed over travel on the same peer rings and are forwarded as bursts of their
// own (Forwarder::process_handed_off).
//
// The port type `Io` says how frames come and go (ports are numbered as in Node::ports):
//   uint16_t rx(uint16_t port, Packet* out, uint16_t n) noexcept;  // sets Packet::port = port
//   uint16_t tx(uint16_t port, Packet* pkts, uint16_t n) noexcept;  // how many it took
//   void free(const Packet* pkts, uint16_t n) noexcept;
// A ring `Ring<T>` is single-producer single-consumer:
//   uint32_t enqueue_burst(const T*, uint32_t) noexcept;  bool enqueue(const T&) noexcept;
//   uint32_t dequeue_burst(T*, uint32_t) noexcept;
//
// Threads: a Worker belongs to the thread that polls it. poll() and run() never block,
// allocate (past what the rings do) or log. The WorkerShare is how other threads see it.
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "dataplane/flow_table.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/messages.hpp"
#include "dataplane/traffic.hpp"

namespace magline::dp {

// What the loop counts beside the forwarder.
struct WorkerIoCounters {
  uint64_t polls = 0;
  uint64_t idle_polls = 0;
  uint64_t tx_full = 0;       // the device did not take a frame: freed
  uint64_t slow_full = 0;     // the control thread's ring was full: freed
  uint64_t handoff_full = 0;  // another worker's peer ring was full: a handed-off frame freed
  uint64_t idle_sleeps = 0;   // sleeps of an idle loop (dataplane/idle_backoff.hpp)
  uint64_t idle_slept_us = 0; // their length, as measured
};

// Every counter of a worker, copied as one.
struct WorkerCounters {
  ForwarderCounters forwarder;
  FlowTableStats flows;
  WorkerIoCounters io;
};

// What a running worker shares with other threads: how many updates it has applied (the control
// thread's measure of when a publish is in effect), and a copy of its counters it refreshes
// about every 100 ms under a sequence number, so that a reader never sees a torn copy.
class WorkerShare {
 public:
  // Any thread.
  uint64_t applied() const noexcept { return applied_.load(std::memory_order_acquire); }
  WorkerCounters read() const noexcept;
  // Changes whenever a new copy has been published (benchmarks wait for the next).
  uint64_t version() const noexcept { return seq_.load(std::memory_order_acquire); }

  // The worker's thread.
  void add_applied(uint64_t n) noexcept { applied_.fetch_add(n, std::memory_order_release); }
  void publish(const WorkerCounters& c) noexcept;

 private:
  alignas(64) std::atomic<uint64_t> applied_{0};
  alignas(64) std::atomic<uint64_t> seq_{0};  // odd while a copy is being written
  WorkerCounters copy_;
};

template <template <typename> class Ring>
struct WorkerRings {
  Ring<Update>* updates = nullptr;            // control -> this worker
  std::vector<Ring<PeerMessage>*> peers_in;   // from each worker (nullptr for itself)
  std::vector<Ring<PeerMessage>*> peers_out;  // to each worker (nullptr for itself)
  Ring<SlowPacket>* slow = nullptr;           // this worker -> control
  Ring<Packet>* control_tx = nullptr;         // control -> worker 0, sent on its TX queues
};

template <typename Io>
concept WorkerIo = requires(Io io, Packet* p, uint16_t n) {
  { io.rx(n, p, n) } -> std::same_as<uint16_t>;
  { io.tx(n, p, n) } -> std::same_as<uint16_t>;
  io.free(p, n);
};

template <WorkerIo Io, template <typename> class Ring>
class Worker {
 public:
  // `traffic` and `share` outlive the worker (other threads read them). `burst`: frames per
  // receive, at most kMaxBurst.
  Worker(const ForwarderConfig& config, const Node& node, const FrontendRegistry& registry,
         const Steering& steering, Io& io, WorkerRings<Ring> rings, TrafficRows& traffic,
         WorkerShare& share, uint16_t burst = 32)
      : io_(io),
        rings_(std::move(rings)),
        share_(share),
        peers_(rings_.peers_out),
        fwd_(config, node, registry, steering, peers_, traffic),
        ports_(uint16_t(node.ports.size())),
        burst_(std::min(burst, kMaxBurst)) {}

  // One turn of the loop at `now_ms`. Returns whether it found anything to do.
  bool poll(uint64_t now_ms) noexcept {
    apply_updates();
    bool busy = transmit_for_control();
    for (uint16_t p = 0; p < ports_; ++p) busy |= poll_port(p, now_ms);
    ++io_counters_.polls;
    if (!busy) {
      ++io_counters_.idle_polls;
      fwd_.expire(now_ms);
    }
    return busy;
  }

  // The lcore loop: turns until `stop`, reporting a quiescent state (QSBR) after every turn and
  // publishing its counters about every 100 ms. `now_ms()` reads the clock; `q` has online(),
  // quiescent() and offline(). The updates still in the ring when it stops are applied.
  // `idle` says after each turn whether to sleep (`uint32_t after_turn(bool busy) noexcept`, in
  // microseconds) and sleeps (`uint64_t sleep(uint32_t us) noexcept`: how long it slept); a
  // sleep comes after the quiescent state, so it holds no grace period up for long.
  template <typename Clock, typename Quiescence, typename Idle>
  void run(const std::atomic<bool>& stop, Clock now_ms, Quiescence& q, Idle& idle) noexcept {
    q.online();
    uint64_t next_publish = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const uint64_t now = now_ms();
      const bool busy = poll(now);
      q.quiescent();
      if (const uint32_t us = idle.after_turn(busy)) {
        ++io_counters_.idle_sleeps;
        io_counters_.idle_slept_us += idle.sleep(us);
      }
      if (now >= next_publish) {
        share_.publish(counters());
        next_publish = now + 100;
      }
    }
    apply_updates();
    release_held();
    q.offline();
    share_.publish(counters());
  }

  // Frees the frames the forwarder holds (a stopping worker's last act).
  void release_held() noexcept {
    Packet held[kMaxBurst];
    while (const size_t n = fwd_.take_held(held, kMaxBurst)) io_.free(held, uint16_t(n));
  }

  // Busy polling: never sleeps.
  template <typename Clock, typename Quiescence>
  void run(const std::atomic<bool>& stop, Clock now_ms, Quiescence& q) noexcept {
    struct Never {
      uint32_t after_turn(bool) noexcept { return 0; }
      uint64_t sleep(uint32_t) noexcept { return 0; }
    } never;
    run(stop, now_ms, q, never);
  }

  Forwarder& forwarder() noexcept { return fwd_; }
  const Forwarder& forwarder() const noexcept { return fwd_; }
  const WorkerIoCounters& io_counters() const noexcept { return io_counters_; }
  WorkerCounters counters() const noexcept {
    return {fwd_.counters(), fwd_.flows().stats(), io_counters_};
  }

 private:
  class RingPeers final : public PeerLink {
   public:
    explicit RingPeers(const std::vector<Ring<PeerMessage>*>& out) : out_(out) {}
    bool send(uint16_t worker, const PeerMessage& m) noexcept override {
      return worker < out_.size() && out_[worker] != nullptr && out_[worker]->enqueue(m);
    }

   private:
    const std::vector<Ring<PeerMessage>*>& out_;
  };

  void apply_updates() noexcept {
    uint64_t applied = 0;
    while (const uint32_t n = rings_.updates->dequeue_burst(ups_, kUpdateBurst)) {
      for (uint32_t i = 0; i < n; ++i) fwd_.apply(ups_[i]);
      applied += n;
    }
    if (applied) share_.add_applied(applied);
  }

  bool transmit_for_control() noexcept {
    if (rings_.control_tx == nullptr) return false;
    out_.n_tx = uint16_t(rings_.control_tx->dequeue_burst(out_.tx.data(), kMaxBurst));
    if (out_.n_tx == 0) return false;
    transmit();
    return true;
  }

  // Peer messages, and frames other workers handed here (forwarded in bursts of their own).
  void drain_peers(uint64_t now) noexcept {
    uint16_t frames = 0;
    for (Ring<PeerMessage>* ring : rings_.peers_in) {
      if (ring == nullptr) continue;
      while (const uint32_t n = ring->dequeue_burst(msgs_, kPeerBurst)) {
        for (uint32_t i = 0; i < n; ++i) {
          if (msgs_[i].kind != PeerMessage::Kind::frame) {
            fwd_.receive(msgs_[i], now);
            continue;
          }
          handed_[frames++] = msgs_[i].pkt;
          if (frames == kMaxBurst) {
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

  bool poll_port(uint16_t port, uint64_t now) noexcept {
    drain_peers(now);
    const uint16_t n = io_.rx(port, pkts_, burst_);
    if (n == 0) return false;
    fwd_.process(pkts_, n, now, out_);
    finish_burst();
    return true;
  }

  // Every frame of a forwarded burst to where its verdict sends it.
  void finish_burst() noexcept {
    transmit();
    if (out_.n_drop) io_.free(out_.drop.data(), out_.n_drop);
    for (uint16_t i = 0; i < out_.n_slow; ++i) {
      if (!rings_.slow->enqueue(out_.slow[i])) {
        ++io_counters_.slow_full;
        io_.free(&out_.slow[i].pkt, 1);
      }
    }
    for (uint16_t i = 0; i < out_.n_handoff; ++i) {
      PeerMessage m;
      m.kind = PeerMessage::Kind::frame;
      m.pkt = out_.handoff[i].pkt;
      if (!peers_.send(out_.handoff[i].worker, m)) {
        ++io_counters_.handoff_full;
        io_.free(&m.pkt, 1);
      }
    }
  }

  // Sends the burst's frames, grouped by egress port. Frames the device does not take are
  // freed and counted: the next burst will not wait for them.
  void transmit() noexcept {
    if (ports_ == 1) {  // one port: the burst as it is
      send(0, out_.tx.data(), out_.n_tx);
      return;
    }
    for (uint16_t p = 0; p < ports_; ++p) {
      uint16_t k = 0;
      for (uint16_t i = 0; i < out_.n_tx; ++i) {
        if (out_.tx[i].port == p) group_[k++] = out_.tx[i];
      }
      if (k > 0) send(p, group_, k);
    }
  }

  // In device bursts of at most kMaxBurst (a burst's frames may give up to twice as many).
  void send(uint16_t port, Packet* pkts, uint16_t n) noexcept {
    while (n > 0) {
      const uint16_t chunk = std::min(n, kMaxBurst);
      const uint16_t sent = io_.tx(port, pkts, chunk);
      if (sent < chunk) {
        io_counters_.tx_full += n - sent;
        io_.free(pkts + sent, uint16_t(n - sent));
        return;
      }
      pkts += chunk;
      n = uint16_t(n - chunk);
    }
  }

  static constexpr uint32_t kUpdateBurst = 64;
  static constexpr uint32_t kPeerBurst = 32;

  Io& io_;
  WorkerRings<Ring> rings_;
  WorkerShare& share_;
  RingPeers peers_;
  Forwarder fwd_;
  uint16_t ports_;
  uint16_t burst_;
  WorkerIoCounters io_counters_;
  // Buffers are members, so that no turn pays for constructing them (6 KiB of zeroes).
  Packet pkts_[kMaxBurst];
  Packet handed_[kMaxBurst];  // frames other workers handed here
  Packet group_[2 * kMaxBurst];  // one egress port's share of a burst
  Update ups_[kUpdateBurst];
  PeerMessage msgs_[kPeerBurst];
  BurstOut out_;
};

}  // namespace magline::dp
