// The worker's own loop (Worker::run) and its idle backoff: a turn that received frames is busy,
// the turns after it idle; the loop sleeps as long as its Idle says and counts what it slept.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

// Stops the loop after `turns` turns; asks for `sleep_us` after each idle one.
struct ScriptedIdle final : Harness::LoopIdle {
  ScriptedIdle(std::atomic<bool>& stop, size_t turns, uint32_t sleep_us)
      : stop(stop), turns(turns), sleep_us(sleep_us) {}
  uint32_t after_turn(bool busy) noexcept override {
    seen.push_back(busy);
    if (seen.size() == turns) stop.store(true);
    return busy ? 0 : sleep_us;
  }
  uint64_t sleep(uint32_t us) noexcept override {
    asked.push_back(us);
    return us + 1;  // a sleep overshoots; the loop counts what it was told
  }
  std::atomic<bool>& stop;
  size_t turns;
  uint32_t sleep_us;
  std::vector<bool> seen;
  std::vector<uint32_t> asked;
};

TEST(WorkerLoop, SleepsOnlyAfterIdleTurnsAndCountsTheTimeSlept) {
  Harness h;
  std::atomic<bool> stop{false};
  ScriptedIdle idle(stop, 4, 7);
  // 70 frames: two turns' receive bursts (64 at most), then nothing.
  const dp::WorkerIoCounters c = h.loop(std::vector<Bytes>(70, Bytes(60, 0)), idle, stop);
  EXPECT_EQ(idle.seen, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(idle.asked, (std::vector<uint32_t>{7, 7}));
  EXPECT_EQ(c.polls, 4u);
  EXPECT_EQ(c.idle_polls, 2u);
  EXPECT_EQ(c.idle_sleeps, 2u);
  EXPECT_EQ(c.idle_slept_us, 16u);
}

TEST(WorkerLoop, ABusyLoopNeverSleeps) {
  Harness h;
  std::atomic<bool> stop{false};
  ScriptedIdle idle(stop, 1, 7);
  const dp::WorkerIoCounters c = h.loop({Bytes(60, 0)}, idle, stop);
  EXPECT_EQ(idle.seen, (std::vector<bool>{true}));
  EXPECT_TRUE(idle.asked.empty());
  EXPECT_EQ(c.idle_sleeps, 0u);
}

}  // namespace
}  // namespace magline::test
