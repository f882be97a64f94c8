// The idle backoff: busy polling while there is work and for `after_idle_us` of idleness, then
// sleeps doubling from 1 us up to the maximum; any busy turn starts over.
#include "dataplane/idle_backoff.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace magline::dp {
namespace {

constexpr uint64_t kTicksPerUs = 3000;  // a 3 GHz TSC

std::vector<uint32_t> idle_turns(IdleBackoff& b, uint64_t from_us, uint64_t step_us, int n) {
  std::vector<uint32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(b.after_turn(false, (from_us + uint64_t(i) * step_us) * kTicksPerUs));
  }
  return out;
}

TEST(IdleBackoff, ZeroMaximumNeverSleeps) {
  IdleBackoff b({.sleep_max_us = 0, .after_idle_us = 0}, kTicksPerUs);
  EXPECT_FALSE(b.enabled());
  EXPECT_EQ(idle_turns(b, 0, 1000, 5), (std::vector<uint32_t>{0, 0, 0, 0, 0}));
}

TEST(IdleBackoff, PollsForTheIdleWindowThenDoublesUpToTheMaximum) {
  IdleBackoff b({.sleep_max_us = 20, .after_idle_us = 200}, kTicksPerUs);
  EXPECT_TRUE(b.enabled());
  // Idle from t=1000 us: nothing until 200 us have passed.
  EXPECT_EQ(idle_turns(b, 1000, 50, 4), (std::vector<uint32_t>{0, 0, 0, 0}));
  EXPECT_EQ(idle_turns(b, 1200, 10, 7), (std::vector<uint32_t>{1, 2, 4, 8, 16, 20, 20}));
}

TEST(IdleBackoff, OneBusyTurnStartsOver) {
  IdleBackoff b({.sleep_max_us = 100, .after_idle_us = 100}, kTicksPerUs);
  EXPECT_EQ(idle_turns(b, 0, 100, 4), (std::vector<uint32_t>{0, 1, 2, 4}));
  EXPECT_EQ(b.after_turn(true, 350 * kTicksPerUs), 0u);
  // The idle window counts again from the first idle turn after the busy one.
  EXPECT_EQ(idle_turns(b, 400, 60, 4), (std::vector<uint32_t>{0, 0, 1, 2}));
}

TEST(IdleBackoff, ZeroWindowSleepsFromTheFirstIdleTurn) {
  IdleBackoff b({.sleep_max_us = 3, .after_idle_us = 0}, kTicksPerUs);
  EXPECT_EQ(idle_turns(b, 5, 0, 4), (std::vector<uint32_t>{1, 2, 3, 3}));
}

TEST(IdleBackoff, AClockStandingStillNeverLeavesTheWindow) {
  // Turns within one tick: still idle for less than the window.
  IdleBackoff b({.sleep_max_us = 50, .after_idle_us = 1}, kTicksPerUs);
  EXPECT_EQ(idle_turns(b, 7, 0, 3), (std::vector<uint32_t>{0, 0, 0}));
}

}  // namespace
}  // namespace magline::dp
