// The publication primitives across threads: SpscRing (rte_ring element API) and QSBR
// retirement (rte_rcu_qsbr), then the whole scheme: a Publication (control/publication.hpp) over
// worker threads that run the real Worker loop. None of it needs the EAL, so this file runs in
// two binaries: dpdk_test (with the EAL up) and concurrency_test (without it), which is the one
// to run under ThreadSanitizer (see meson.build). Every wait loop is bounded in time.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/publication.hpp"
#include "control/publisher.hpp"
#include "control/reaper.hpp"
#include "control/worker_link.hpp"
#include "dataplane/dpdk/qsbr.hpp"
#include "dataplane/dpdk/ring.hpp"
#include "dataplane/steering.hpp"
#include "dataplane/wire.hpp"
#include "dataplane/worker.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::dpdk {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPatience = std::chrono::seconds(20);  // a hang, not a slow machine

struct Message {
  uint64_t seq;
  uint64_t check;  // derived from seq: a torn or stale copy shows
  uint32_t payload[4];
};
static_assert(sizeof(Message) % 4 == 0);

uint64_t check_of(uint64_t seq) { return seq * 0x9e3779b97f4a7c15ull ^ 0x5a5a5a5a; }

TEST(SpscRing, CapacityIsExactAndOrderIsFifo) {
  auto ring = SpscRing<Message>::create(100);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->capacity(), 100u);
  std::vector<Message> in(150);
  for (uint64_t i = 0; i < in.size(); ++i) in[i] = {i, check_of(i), {uint32_t(i), 1, 2, 3}};
  EXPECT_EQ(ring->enqueue_burst(in.data(), uint32_t(in.size())), 100u);  // the rest do not fit
  EXPECT_EQ(ring->count(), 100u);
  Message out[64];
  EXPECT_EQ(ring->dequeue_burst(out, 64), 64u);
  for (uint64_t i = 0; i < 64; ++i) EXPECT_EQ(out[i].seq, i);
  Message one;
  EXPECT_TRUE(ring->dequeue(one));
  EXPECT_EQ(one.seq, 64u);
  EXPECT_FALSE(SpscRing<Message>::create(0).ok());
}

TEST(SpscRing, TwoThreadsDeliverEveryMessageInOrder) {
  constexpr uint64_t kMessages = 200000;
  auto ring = SpscRing<Message>::create(256);
  ASSERT_TRUE(ring.ok());
  std::atomic<bool> timed_out{false};
  const auto deadline = Clock::now() + kPatience;

  std::thread producer([&] {
    Message batch[32];
    uint64_t next = 0;
    while (next < kMessages && !timed_out.load(std::memory_order_relaxed)) {
      const uint32_t n = uint32_t(std::min<uint64_t>(32, kMessages - next));
      for (uint32_t i = 0; i < n; ++i) {
        const uint64_t s = next + i;
        batch[i] = {s, check_of(s), {uint32_t(s), uint32_t(s >> 32), 7, 9}};
      }
      uint32_t sent = 0;
      while (sent < n && !timed_out.load(std::memory_order_relaxed)) {
        const uint32_t k = ring->enqueue_burst(batch + sent, n - sent);
        sent += k;
        if (k == 0) std::this_thread::yield();
      }
      next += sent;
    }
  });

  uint64_t expect = 0, bad = 0;
  Message out[32];
  while (expect < kMessages) {
    if (Clock::now() > deadline) {
      timed_out = true;
      break;
    }
    const uint32_t n = ring->dequeue_burst(out, 32);
    if (n == 0) std::this_thread::yield();
    for (uint32_t i = 0; i < n; ++i, ++expect) {
      bad += out[i].seq != expect || out[i].check != check_of(expect) ||
             out[i].payload[0] != uint32_t(expect) || out[i].payload[3] != 9;
    }
  }
  producer.join();
  EXPECT_FALSE(timed_out);
  EXPECT_EQ(expect, kMessages);
  EXPECT_EQ(bad, 0u);
}

// --- QSBR ---------------------------------------------------------------------------------

TEST(Qsbr, ReaderIdsAreCheckedAndExclusive) {
  auto q = Qsbr::create(2);
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(QsbrReader::create(*q, 2).ok());
  auto a = QsbrReader::create(*q, 0);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(QsbrReader::create(*q, 0).ok());  // taken
  {
    auto b = QsbrReader::create(*q, 1);
    EXPECT_TRUE(b.ok());
  }
  EXPECT_TRUE(QsbrReader::create(*q, 1).ok());  // free again once b is gone
  EXPECT_FALSE(Qsbr::create(0).ok());
}

// Deterministic: both readers on this thread (QSBR tracks ids, not OS threads). A grace period
// has passed only once every online reader has been quiescent after it started, and passed()
// answers at once while a reader holds it open.
TEST(Qsbr, AGracePeriodPassesOnlyAfterEveryOnlineReaderWasQuiescent) {
  auto q = Qsbr::create(2);
  ASSERT_TRUE(q.ok());
  auto r0 = std::move(QsbrReader::create(*q, 0)).value();
  auto r1 = std::move(QsbrReader::create(*q, 1)).value();
  r0.online();
  r1.online();

  const uint64_t t1 = q->start();
  EXPECT_FALSE(q->passed(t1));  // returns although neither reader has moved on
  r0.quiescent();
  EXPECT_FALSE(q->passed(t1));  // r1 may still hold the old pointer
  r1.quiescent();
  EXPECT_TRUE(q->passed(t1));

  // Quiescent states from before a grace period do not count for it.
  r0.quiescent();
  r1.quiescent();
  const uint64_t t2 = q->start();
  EXPECT_FALSE(q->passed(t2));

  // An offline reader does not hold grace periods up.
  r1.offline();
  r0.quiescent();
  EXPECT_TRUE(q->passed(t2));

  // A later token passes only after the earlier ones.
  const uint64_t t3 = q->start();
  const uint64_t t4 = q->start();
  EXPECT_LT(t3, t4);
  r0.quiescent();
  EXPECT_TRUE(q->passed(t3) && q->passed(t4));
  r0.offline();
}

// Two reader threads dereference the current object, as workers do, while the control thread
// swaps and retires objects. A retired object is marked dead when "freed" (and deleted only at
// the end), so a reader that could still see it would count a violation; under ASan/TSan the
// real deletes in the other tests cover use-after-free and races.
struct Snapshot {
  static constexpr uint64_t kAlive = 0xa11fe, kDead = 0xdead;
  std::atomic<uint64_t> state{kAlive};
  uint64_t version = 0;
};

TEST(Qsbr, TwoReaderThreadsNeverSeeAFreedObject) {
  constexpr int kSwaps = 2000;
  auto q = Qsbr::create(2);
  ASSERT_TRUE(q.ok());
  std::vector<std::unique_ptr<Snapshot>> graveyard;
  graveyard.push_back(std::make_unique<Snapshot>());
  std::atomic<Snapshot*> current{graveyard.back().get()};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> violations{0}, reads{0};
  std::atomic<int> online{0};

  const auto reader = [&](uint32_t id) {
    auto r = std::move(QsbrReader::create(*q, id)).value();
    r.online();
    ++online;
    uint64_t last_version = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 16; ++i) {  // one "burst"
        const Snapshot* s = current.load(std::memory_order_acquire);
        if (s->state.load(std::memory_order_relaxed) != Snapshot::kAlive) ++violations;
        if (s->version < last_version) ++violations;  // versions only move forward
        last_version = s->version;
      }
      reads.fetch_add(16, std::memory_order_relaxed);
      r.quiescent();
    }
    r.offline();
  };
  std::thread t0(reader, 0), t1(reader, 1);

  {
    // Retired objects, each with the token of the grace period that must pass before it dies.
    std::deque<std::pair<uint64_t, Snapshot*>> retired;
    const auto bury = [&] {
      while (!retired.empty() && q->passed(retired.front().first)) {
        retired.front().second->state.store(Snapshot::kDead, std::memory_order_relaxed);
        retired.pop_front();
      }
    };
    const auto deadline = Clock::now() + kPatience;
    // Both readers online before the first swap: otherwise a loaded machine lets every grace
    // period pass before they start, and nothing is tested.
    while (online.load() < 2 && Clock::now() < deadline)
      std::this_thread::yield();
    for (int i = 1; i <= kSwaps && Clock::now() < deadline; ++i) {
      auto next = std::make_unique<Snapshot>();
      next->version = uint64_t(i);
      Snapshot* old = current.exchange(next.get(), std::memory_order_acq_rel);
      graveyard.push_back(std::move(next));
      retired.emplace_back(q->start(), old);
      bury();
      if (i % 64 == 0) std::this_thread::yield();
    }
    // Wait (bounded) for the readers to let everything go; passed() never blocks.
    while (!retired.empty() && Clock::now() < deadline) {
      bury();
      std::this_thread::yield();
    }
    EXPECT_TRUE(retired.empty());
    stop = true;
    t0.join();
    t1.join();
  }
  EXPECT_EQ(violations.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  for (const auto& s : graveyard) {
    if (s.get() != current.load()) {
      EXPECT_EQ(s->state.load(), Snapshot::kDead);
    }
  }
}

// --- A Publication over worker threads ----------------------------------------------------

// Frames in heap buffers, so that any thread may free one; `live` counts those not yet freed.
struct HeapFrames {
  static constexpr uint16_t kHeadroom = 128;
  std::atomic<int64_t> live{0};

  dp::Packet make(const test::Bytes& frame, uint16_t port) noexcept {
    auto* buf = new uint8_t[kHeadroom + frame.size()];
    std::copy(frame.begin(), frame.end(), buf + kHeadroom);
    live.fetch_add(1, std::memory_order_relaxed);
    return dp::Packet{buf, buf + kHeadroom, uint16_t(frame.size()), kHeadroom, port, 0};
  }
  void release(const dp::Packet& p) noexcept {
    delete[] static_cast<uint8_t*>(p.handle);
    live.fetch_sub(1, std::memory_order_relaxed);
  }
};

// A worker's port: every receive brings `per_turn` frames, cycling through `frames` (SYNs, then
// ACKs of the same connections, to the services' VIPs); what is sent or dropped is freed.
// Yields once a turn, so that three busy threads share two cores.
struct GenIo {
  const std::vector<test::Bytes>* frames = nullptr;
  HeapFrames* heap = nullptr;
  uint16_t per_turn = 4;
  size_t next = 0;
  uint64_t received = 0, sent = 0, freed = 0;

  uint16_t rx(uint16_t port, dp::Packet* out, uint16_t n) noexcept {
    std::this_thread::yield();
    const uint16_t k = std::min(n, per_turn);
    for (uint16_t i = 0; i < k; ++i) out[i] = heap->make((*frames)[next++ % frames->size()], port);
    received += k;
    return k;
  }
  uint16_t tx(uint16_t, dp::Packet* pkts, uint16_t n) noexcept {
    for (uint16_t i = 0; i < n; ++i) heap->release(pkts[i]);
    sent += n;
    return n;
  }
  void free(const dp::Packet* pkts, uint16_t n) noexcept {
    for (uint16_t i = 0; i < n; ++i) heap->release(pkts[i]);
    freed += n;
  }
};

// The control thread's side of worker threads: SpscRing update rings and slow rings, a real
// Qsbr, each worker's WorkerShare and counter rows. As control/dpdk_workers.cpp, without lcores.
class ThreadLink final : public control::WorkerLink {
 public:
  ThreadLink(size_t workers, uint32_t update_ring, HeapFrames& heap)
      : qsbr_(std::move(Qsbr::create(uint32_t(workers))).value()), heap_(heap) {
    for (size_t w = 0; w < workers; ++w) {
      updates_.push_back(std::make_unique<SpscRing<dp::Update>>(
          SpscRing<dp::Update>::create(update_ring).value()));
      slow_.push_back(std::make_unique<SpscRing<dp::SlowPacket>>(
          SpscRing<dp::SlowPacket>::create(256).value()));
      shares_.push_back(std::make_unique<dp::WorkerShare>());
      traffic_.push_back(std::make_unique<dp::TrafficRows>(4096, 4096));
    }
  }

  size_t workers() const noexcept override { return updates_.size(); }
  uint32_t send_updates(size_t w, const dp::Update* ups, uint32_t n) noexcept override {
    return updates_[w]->enqueue_burst(ups, n);
  }
  uint64_t applied(size_t w) const noexcept override { return shares_[w]->applied(); }
  uint64_t grace_start() noexcept override { return qsbr_.start(); }
  bool grace_passed(uint64_t token) noexcept override { return qsbr_.passed(token); }
  uint32_t receive_slow(size_t w, dp::SlowPacket* out, uint32_t n) noexcept override {
    return slow_[w]->dequeue_burst(out, n);
  }
  bool send_frame(const dp::Packet&) noexcept override { return false; }
  dp::PacketPool& packets() noexcept override { return pool_; }
  const dp::WorkerShare& share(size_t w) const noexcept override { return *shares_[w]; }
  dp::TrafficRows& traffic(size_t w) noexcept override { return *traffic_[w]; }

  // Frees whatever the workers handed to the slow path (nobody answers here).
  void drop_slow() {
    dp::SlowPacket sp[32];
    for (size_t w = 0; w < workers(); ++w) {
      while (const uint32_t n = receive_slow(w, sp, 32)) {
        for (uint32_t i = 0; i < n; ++i) heap_.release(sp[i].pkt);
      }
    }
  }

  const Qsbr& qsbr() const noexcept { return qsbr_; }
  dp::WorkerRings<SpscRing> rings(size_t w) {
    dp::WorkerRings<SpscRing> r;
    r.updates = updates_[w].get();
    r.peers_in.assign(workers(), nullptr);  // every connection stays on its worker
    r.peers_out.assign(workers(), nullptr);
    r.slow = slow_[w].get();
    return r;
  }
  dp::WorkerShare& share_of(size_t w) { return *shares_[w]; }

 private:
  class NoPool final : public dp::PacketPool {
    bool alloc(dp::Packet&, uint16_t) override { return false; }
    void free(dp::Packet&) override {}
  };
  Qsbr qsbr_;
  HeapFrames& heap_;
  std::vector<std::unique_ptr<SpscRing<dp::Update>>> updates_;
  std::vector<std::unique_ptr<SpscRing<dp::SlowPacket>>> slow_;
  std::vector<std::unique_ptr<dp::WorkerShare>> shares_;
  std::vector<std::unique_ptr<dp::TrafficRows>> traffic_;
  NoPool pool_;
};

dp::IpAddr ip(const std::string& s) { return *dp::parse_ip(s); }

// Service k on VIP 198.18.100.(k+1):80, with `n` of the backends 198.18.1.10 .. 198.18.1.17
// from `first` on (so that each change keeps some backends and replaces others).
dp::Service churn_service(int k, int first, int n) {
  dp::Service s;
  s.name = "svc" + std::to_string(k);
  s.frontends = {{ip("198.18.100." + std::to_string(k + 1)), 80, dp::Protocol::tcp,
                  dp::FrontendKind::load_balancer}};
  for (int i = 0; i < n; ++i) {
    s.backends.push_back({ip("198.18.1." + std::to_string(10 + (first + i) % 8)), 8080, 1, {}});
  }
  s.table_size = 251;
  return s;
}

// The control thread (this one) replaces, removes and re-adds services as fast as it can while
// two workers forward frames to them; every state it retires is really freed (the Publication
// holds its last reference) while the workers run. A state freed too early would be read by a
// worker after its delete: a race TSan reports (a use after free ASan reports). The counts say
// the run was not vacuous: many states freed, frames forwarded, every update applied.
TEST(PublicationThreads, RetiredStatesAreFreedWhileWorkersForwardAndNeverUsedAfter) {
  constexpr size_t kWorkers = 2;
  constexpr int kServices = 4;
  constexpr auto kChurn = std::chrono::milliseconds(1000);
  constexpr auto kDrain = std::chrono::seconds(3);  // for the last batches to retire

  dp::Node node;
  node.ports.push_back({0, "lan0", dp::MacAddr{test::kLbMac}, {{ip("198.18.0.1"), 16}}, 1500});
  HeapFrames heap;
  ThreadLink link(kWorkers, 64, heap);  // small rings: the Publication's queue is used too
  control::Publisher pub(node, 4096, 4096);
  pub.set_builder_threads(1);
  control::Publication publication(link);

  const auto now_ms = [] {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        Clock::now().time_since_epoch())
                        .count());
  };
  const auto reset_rows = [&](bool backend, uint32_t slot) {
    for (size_t w = 0; w < kWorkers; ++w) {
      if (backend) {
        link.traffic(w).reset_backend(slot);
      } else {
        link.traffic(w).reset_frontend(slot);
      }
    }
  };
  uint64_t sent = 0;  // updates sent to each worker
  const auto send = [&](control::Change c) {
    sent += c.updates.size();
    publication.send(std::move(c));
  };

  // Every backend's MAC first, then the services.
  std::vector<dp::Update> neighbors;
  for (int i = 0; i < 8; ++i) {
    dp::Update u;
    u.kind = dp::Update::Kind::neighbor;
    u.neighbor = {ip("198.18.1." + std::to_string(10 + i)), dp::MacAddr{test::kBackendMac}, 0,
                  true};
    neighbors.push_back(u);
  }
  sent += neighbors.size();
  publication.send(neighbors);
  std::vector<dp::Service> initial;
  for (int k = 0; k < kServices; ++k) initial.push_back(churn_service(k, k, 3));
  auto first = pub.update(std::move(initial), {}, now_ms());
  ASSERT_TRUE(first.ok()) << first.error().message;
  send(std::move(first).value());

  // Each worker's traffic: 32 connections, SYN then ACK, spread over the VIPs.
  std::vector<std::vector<test::Bytes>> frames(kWorkers);
  for (size_t w = 0; w < kWorkers; ++w) {
    const std::string client = "198.18.200." + std::to_string(w + 1);
    for (const uint8_t flags : {dp::kTcpSyn, dp::kTcpAck}) {
      for (int c = 0; c < 32; ++c) {
        const std::string vip = "198.18.100." + std::to_string(c % kServices + 1);
        frames[w].push_back(test::Packet()
                                .eth(test::kClientMac, test::kLbMac)
                                .ipv4(client, vip)
                                .tcp(uint16_t(20000 + c), 80, flags)
                                .payload("x")
                                .bytes());
      }
    }
  }

  using ThreadWorker = dp::Worker<GenIo, SpscRing>;
  std::vector<GenIo> ios(kWorkers);
  std::vector<std::unique_ptr<dp::SingleWorker>> steering;
  std::vector<std::unique_ptr<ThreadWorker>> workers;
  for (size_t w = 0; w < kWorkers; ++w) {
    ios[w].frames = &frames[w];
    ios[w].heap = &heap;
    dp::ForwarderConfig fc;
    fc.worker = uint16_t(w);
    fc.workers = uint16_t(kWorkers);
    fc.flow_capacity = 1 << 12;
    fc.flow_seed = w + 1;
    steering.push_back(std::make_unique<dp::SingleWorker>(uint16_t(w)));
    workers.push_back(std::make_unique<ThreadWorker>(fc, node, pub.registry(), *steering[w],
                                                     ios[w], link.rings(w), link.traffic(w),
                                                     link.share_of(w)));
  }
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> reader_failures{0};
  // Every reader is online before any update can reach its worker, as DpdkWorkers does: a
  // worker that has not started yet holds grace periods up instead of letting them pass.
  std::vector<std::optional<QsbrReader>> readers;
  for (size_t w = 0; w < kWorkers; ++w) {
    auto reader = QsbrReader::create(link.qsbr(), uint32_t(w));
    if (!reader) {
      reader_failures.fetch_add(1);
      readers.emplace_back();
      continue;
    }
    readers.emplace_back(std::move(reader).value());
    readers.back()->online();
  }
  std::vector<std::thread> threads;
  for (size_t w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      if (readers[w]) workers[w]->run(stop, now_ms, *readers[w]);
    });
  }

  // The churn: one change a step; a service is removed every tenth step, and comes back at its
  // next one.
  size_t retired = 0, freed = 0, slots_reset = 0, steps = 0;
  std::vector<std::weak_ptr<const dp::ServiceState>> watched;
  std::vector<bool> present(kServices, true);
  const auto start = Clock::now();
  while (Clock::now() - start < kChurn) {
    const int k = int(steps % kServices);
    std::vector<dp::Service> upserts;
    std::vector<std::string> removals;
    if (!present[k]) {
      upserts.push_back(churn_service(k, int(steps), 3));
    } else if (steps % 10 == 9) {
      removals.push_back("svc" + std::to_string(k));
    } else {
      upserts.push_back(churn_service(k, int(steps), 2 + int(steps % 3)));
    }
    present[k] = removals.empty();
    auto change = pub.update(std::move(upserts), removals, now_ms());
    if (!change.ok()) {  // not ASSERT: the workers must be stopped first
      ADD_FAILURE() << change.error().message;
      break;
    }
    for (const auto& s : change->retired) watched.push_back(s);
    retired += change->retired.empty() ? 0 : 1;
    send(std::move(change).value());
    freed += publication.poll();
    slots_reset += pub.reclaim(reset_rows);
    link.drop_slow();
    ++steps;
    std::this_thread::yield();  // the workers take turns between changes
  }
  // Everything retires and takes effect while the workers still run.
  while ((publication.retiring() > 0 || !publication.in_effect()) &&
         Clock::now() - start < kChurn + kDrain) {
    freed += publication.poll();
    slots_reset += pub.reclaim(reset_rows);
    link.drop_slow();
    std::this_thread::yield();
  }
  const bool in_effect = publication.in_effect();
  stop = true;
  for (std::thread& t : threads) t.join();
  link.drop_slow();
  slots_reset += pub.reclaim(reset_rows);

  EXPECT_EQ(reader_failures.load(), 0u);
  EXPECT_EQ(publication.retiring(), 0u);
  EXPECT_EQ(freed, retired);
  EXPECT_GT(freed, 20u) << steps << " steps";
  size_t alive = 0;
  for (const auto& w : watched) alive += !w.expired();
  EXPECT_EQ(alive, 0u);
  EXPECT_GT(slots_reset, 0u);  // removed backends' rows were reset while the workers ran
  EXPECT_TRUE(in_effect);
  for (size_t w = 0; w < kWorkers; ++w) {
    SCOPED_TRACE(w);
    EXPECT_EQ(link.share(w).applied(), sent);
    EXPECT_EQ(workers[w]->forwarder().counters().updates_applied, sent);
    EXPECT_GT(ios[w].received, 0u);
    EXPECT_GT(ios[w].sent, 0u);  // frames did reach backends through the states
    EXPECT_EQ(workers[w]->io_counters().tx_full, 0u);
  }
  workers.clear();  // their flow tables hold no frames; every buffer is back
  EXPECT_EQ(heap.live.load(), 0);
}

// --- Reaper (control/reaper.hpp) ---------------------------------------------------------------

// Counts its destructions and the threads they ran on; one with a gate is freed only once the
// gate opens.
struct Gift {
  std::atomic<int>* freed;
  std::thread::id* freed_on;
  std::atomic<bool>* gate = nullptr;
  Gift(std::atomic<int>* f, std::thread::id* on, std::atomic<bool>* g = nullptr)
      : freed(f), freed_on(on), gate(g) {}
  Gift(Gift&& o) noexcept
      : freed(std::exchange(o.freed, nullptr)), freed_on(o.freed_on), gate(o.gate) {}
  Gift& operator=(Gift&&) = delete;
  ~Gift() {
    if (freed == nullptr) return;
    while (gate != nullptr && !gate->load()) std::this_thread::yield();
    *freed_on = std::this_thread::get_id();
    freed->fetch_add(1);
  }
};

TEST(Reaper, FreesWhatItIsGivenOnItsOwnThread) {
  std::atomic<int> freed{0};
  std::thread::id on;
  {
    control::Reaper<Gift> reaper("test-reaper");
    reaper.give(Gift(&freed, &on));
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (freed.load() == 0 && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(freed.load(), 1);
    EXPECT_NE(on, std::this_thread::get_id());
  }
  EXPECT_EQ(freed.load(), 1);
}

// While the reaper is busy (its first gift holds it), at most `max_pending` wait: the giver frees
// the rest itself. The destructor frees whatever is left; nothing is lost or freed twice. Of 64
// gifts, at most 4 are not the giver's: up to 2 the reaper took in its one swap (the gated one
// first) and up to 2 waiting behind it.
TEST(Reaper, TooMuchWaitingIsFreedByTheGiverAndTheRestAtTheEnd) {
  std::atomic<int> freed{0};
  std::atomic<bool> gate{false};
  std::vector<std::thread::id> on(64);
  {
    control::Reaper<Gift> reaper("test-reaper", 2);
    reaper.give(Gift(&freed, &on[0], &gate));
    for (size_t i = 1; i < on.size(); ++i)
      reaper.give(Gift(&freed, &on[i]));
    EXPECT_GE(freed.load(), 60);
    gate = true;
  }
  EXPECT_EQ(freed.load(), 64);
  EXPECT_NE(on[0], std::this_thread::get_id());
  EXPECT_GE(std::count(on.begin(), on.end(), std::this_thread::get_id()), 60);
}

}  // namespace
}  // namespace magline::dpdk
