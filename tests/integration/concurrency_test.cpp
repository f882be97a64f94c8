// The publication primitives across threads: SpscRing (rte_ring element API) and QSBR
// retirement (rte_rcu_qsbr). Neither needs the EAL, so this file runs in two binaries: dpdk_test
// (with the EAL up) and concurrency_test (without it), which is the one to run under
// ThreadSanitizer (see meson.build). Every wait loop is bounded in time.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "dataplane/dpdk/qsbr.hpp"
#include "dataplane/dpdk/ring.hpp"

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

  const auto reader = [&](uint32_t id) {
    auto r = std::move(QsbrReader::create(*q, id)).value();
    r.online();
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

}  // namespace
}  // namespace magline::dpdk
