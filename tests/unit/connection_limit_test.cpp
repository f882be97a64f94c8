// New-connection rate limits: each worker's token bucket for a frontend, a 1/workers share of
// the rate and of the burst, refilled by the millisecond clock.
#include "dataplane/connection_limit.hpp"

#include <gtest/gtest.h>

namespace magline::dp {
namespace {

// How many of `n` connections at `now_ms` the bucket lets through.
int taken(LimitRow& row, const ConnectionLimit& limit, uint16_t workers, uint64_t now_ms, int n) {
  int got = 0;
  for (int i = 0; i < n; ++i) got += take_token(row, limit, workers, now_ms);
  return got;
}

TEST(ConnectionLimit, AFreshBucketIsFullThenRefillsAtTheRate) {
  LimitRow row;
  const ConnectionLimit limit{.rate = 100, .burst = 10};
  EXPECT_EQ(taken(row, limit, 1, 5000, 50), 10);  // the burst, then nothing
  EXPECT_EQ(row.refused_total(), 40u);
  EXPECT_EQ(taken(row, limit, 1, 5009, 5), 0);    // 100/s: one every 10 ms
  EXPECT_EQ(taken(row, limit, 1, 5010, 5), 1);
  EXPECT_EQ(taken(row, limit, 1, 5050, 10), 4);
  EXPECT_EQ(taken(row, limit, 1, 60000, 50), 10);  // a quiet minute refills the burst only
}

TEST(ConnectionLimit, TheBurstDefaultsToOneSecondsWorth) {
  LimitRow row;
  EXPECT_EQ(taken(row, {.rate = 250}, 1, 0, 1000), 250);
  EXPECT_EQ(taken(row, {.rate = 250}, 1, 1000, 1000), 250);
}

// Over a long stretch the bucket admits the rate, whatever the arrival pattern, to within the
// burst: here 1000/s offered at 3000/s, one attempt every 1/3 ms (rounded to the ms clock).
TEST(ConnectionLimit, AdmitsTheRateOverTime) {
  LimitRow row;
  const ConnectionLimit limit{.rate = 1000, .burst = 50};
  int admitted = 0;
  for (uint64_t ms = 0; ms < 10'000; ++ms) admitted += taken(row, limit, 1, ms, 3);
  EXPECT_GE(admitted, 10'000);
  EXPECT_LE(admitted, 10'000 + 50);
}

// Each worker holds a share: together the workers admit the rate and the burst.
TEST(ConnectionLimit, WorkersShareTheRateAndTheBurst) {
  const ConnectionLimit limit{.rate = 900, .burst = 90};
  LimitRow rows[3];
  int first = 0;
  for (LimitRow& r : rows) first += taken(r, limit, 3, 0, 100);
  EXPECT_EQ(first, 90);
  int second = 0;
  for (LimitRow& r : rows) second += taken(r, limit, 3, 1000, 1000);
  EXPECT_EQ(second, 90);  // a second's refill, capped at the burst
  int over_time = 0;
  for (uint64_t ms = 1001; ms <= 11'000; ++ms) {
    for (LimitRow& r : rows) over_time += taken(r, limit, 3, ms, 1);
  }
  EXPECT_NEAR(over_time, 9000, 3);  // 300/s on each worker, 10 s
}

// Every worker holds at least one token of burst, and a rate below the worker count still
// refills: 1 a second over 4 workers is one every 4 s on each.
TEST(ConnectionLimit, TinyLimitsStillAdmit) {
  const ConnectionLimit limit{.rate = 1, .burst = 1};
  LimitRow row;
  EXPECT_EQ(taken(row, limit, 4, 0, 5), 1);
  EXPECT_EQ(taken(row, limit, 4, 3999, 5), 0);
  EXPECT_EQ(taken(row, limit, 4, 4000, 5), 1);
}

TEST(ConnectionLimit, ALoweredBurstTakesEffectAtOnce) {
  LimitRow row;
  EXPECT_EQ(taken(row, {.rate = 10, .burst = 1000}, 1, 0, 1), 1);  // 999 left
  EXPECT_EQ(taken(row, {.rate = 10, .burst = 5}, 1, 0, 100), 5);
}

TEST(ConnectionLimit, TheLargestLimitsAndClocksDoNotOverflow) {
  const ConnectionLimit big{.rate = kMaxConnectionRate, .burst = kMaxConnectionRate};
  LimitRow row;
  EXPECT_EQ(taken(row, big, 1, 0, 3), 3);
  EXPECT_EQ(row.micro_tokens, uint64_t(kMaxConnectionRate - 3) * 1'000'000);
  EXPECT_EQ(taken(row, big, 1, UINT64_MAX - 1, 1), 1);  // years later: full, not wrapped
  EXPECT_EQ(row.micro_tokens, uint64_t(kMaxConnectionRate - 1) * 1'000'000);
}

TEST(ConnectionLimit, AResetRowIsFullAgain) {
  LimitRow row;
  EXPECT_EQ(taken(row, {.rate = 5, .burst = 5}, 1, 100, 10), 5);
  EXPECT_EQ(row.refused_total(), 5u);
  row.reset();
  EXPECT_EQ(row.refused_total(), 0u);
  EXPECT_EQ(taken(row, {.rate = 5, .burst = 5}, 1, 100, 10), 5);
}

}  // namespace
}  // namespace magline::dp
