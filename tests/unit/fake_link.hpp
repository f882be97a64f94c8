// A WorkerLink with no worker behind it, for the control thread's unit tests
// (publication_test, control_thread_test): the test plays the workers, one step at a time.
//
// Per worker: an update ring of bounded capacity (what does not fit is refused, as a full
// rte_ring refuses it), the count of updates applied (in its WorkerShare, as a real worker
// counts them), a ring of slow-path frames the test fills, and its counter rows (small: 4096
// slots of each kind). Grace periods follow QSBR: grace_start() returns the next token, a
// worker's quiescent() records the newest token taken so far, and a token has passed once every
// online worker has recorded it or a later one. Frames the control thread sends are kept in
// `sent_frames`; buffers come from a heap pool that counts what is outstanding.
//
// Single-threaded: no part of it is safe across threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "control/worker_link.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {

// Frames in heap buffers with headroom, as control/replay.cpp's Buffers; `live` counts the
// buffers not yet freed.
class HeapPool final : public dp::PacketPool {
 public:
  static constexpr uint16_t kHeadroom = 128;

  bool alloc(dp::Packet& p, uint16_t len) override {
    auto* buf = new uint8_t[kHeadroom + len]();
    p = dp::Packet{buf, buf + kHeadroom, len, kHeadroom, 0, 0};
    ++live;
    return true;
  }
  void free(dp::Packet& p) override {
    delete[] static_cast<uint8_t*>(p.handle);
    p = {};
    --live;
  }
  // A received frame in a buffer of its own, as a worker hands it over.
  dp::Packet received(const Bytes& frame, uint16_t port) {
    dp::Packet p;
    alloc(p, uint16_t(frame.size()));
    std::copy(frame.begin(), frame.end(), p.data);
    p.port = port;
    return p;
  }

  int64_t live = 0;
};

struct SentFrame {
  uint16_t port;
  Bytes frame;
  friend bool operator==(const SentFrame&, const SentFrame&) = default;
};

class FakeLink final : public control::WorkerLink {
 public:
  // `capacity`: each worker's update ring.
  explicit FakeLink(size_t workers, uint32_t capacity = 1024) {
    for (size_t w = 0; w < workers; ++w) {
      auto s = std::make_unique<Slot>();
      s->capacity = capacity;
      slots_.push_back(std::move(s));
    }
  }
  ~FakeLink() override {
    for (auto& s : slots_) {
      for (dp::SlowPacket& sp : s->slow) pool.free(sp.pkt);
    }
  }

  // --- WorkerLink ---
  size_t workers() const noexcept override { return slots_.size(); }
  uint32_t send_updates(size_t w, const dp::Update* ups, uint32_t n) noexcept override {
    Slot& s = *slots_[w];
    uint32_t i = 0;
    for (; i < n && s.ring.size() < s.capacity; ++i) s.ring.push_back(ups[i]);
    return i;
  }
  uint64_t applied(size_t w) const noexcept override { return slots_[w]->share.applied(); }
  uint64_t grace_start() noexcept override { return ++token_; }
  bool grace_passed(uint64_t token) noexcept override {
    ++grace_checks;
    return std::all_of(slots_.begin(), slots_.end(),
                       [&](const auto& s) { return !s->online || s->reported >= token; });
  }
  uint32_t receive_slow(size_t w, dp::SlowPacket* out, uint32_t n) noexcept override {
    Slot& s = *slots_[w];
    uint32_t i = 0;
    for (; i < n && !s.slow.empty(); ++i) {
      out[i] = s.slow.front();
      s.slow.pop_front();
    }
    return i;
  }
  bool send_frame(const dp::Packet& p) noexcept override {
    if (refuse_frames) return false;
    sent_frames.push_back({p.port, Bytes(p.data, p.data + p.len)});
    dp::Packet copy = p;
    pool.free(copy);  // worker 0 would send it, and its device free it
    return true;
  }
  dp::PacketPool& packets() noexcept override { return pool; }
  const dp::WorkerShare& share(size_t w) const noexcept override { return slots_[w]->share; }
  dp::TrafficRows& traffic(size_t w) noexcept override { return slots_[w]->traffic; }

  // --- The test, as the workers ---
  // Worker w drains its ring (the start of a turn): returns what it applied, in order.
  std::vector<dp::Update> drain(size_t w) {
    Slot& s = *slots_[w];
    std::vector<dp::Update> got(s.ring.begin(), s.ring.end());
    s.ring.clear();
    s.log.insert(s.log.end(), got.begin(), got.end());
    if (!got.empty()) s.share.add_applied(got.size());
    return got;
  }
  // Worker w reports a quiescent state (the end of a turn).
  void quiescent(size_t w) { slots_[w]->reported = token_; }
  // A whole turn: drain, then report.
  void turn(size_t w) {
    drain(w);
    quiescent(w);
  }
  void turn_all() {
    for (size_t w = 0; w < workers(); ++w) turn(w);
  }
  void set_online(size_t w, bool online) { slots_[w]->online = online; }
  void set_capacity(size_t w, uint32_t capacity) { slots_[w]->capacity = capacity; }
  // Updates in worker w's ring, not yet drained.
  const std::deque<dp::Update>& ring(size_t w) const { return slots_[w]->ring; }
  // Everything worker w has applied so far, in order.
  const std::vector<dp::Update>& log(size_t w) const { return slots_[w]->log; }
  // A frame worker w hands to the control thread.
  void hand_slow(size_t w, const Bytes& frame, dp::SlowReason why, uint16_t port,
                 dp::NextHop hop = {}) {
    slots_[w]->slow.push_back({pool.received(frame, port), why, hop});
  }
  uint64_t tokens_taken() const { return token_; }

  HeapPool pool;
  std::vector<SentFrame> sent_frames;
  bool refuse_frames = false;
  uint64_t grace_checks = 0;

 private:
  struct Slot {
    uint32_t capacity = 0;
    std::deque<dp::Update> ring;
    std::vector<dp::Update> log;
    std::deque<dp::SlowPacket> slow;
    uint64_t reported = 0;
    bool online = true;
    dp::WorkerShare share;
    dp::TrafficRows traffic{4096, 4096};
  };
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t token_ = 0;
};

}  // namespace magline::test
