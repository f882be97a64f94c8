// When a worker that finds nothing to do sleeps, and for how long: busy polling while traffic
// flows, short sleeps once the queues have been empty for a while, so that a small machine can
// run other work (a second Magline, the tests) beside an idle worker. VPP's adaptive polling and
// DPDK's l3fwd-power are the anchors; Magline sleeps (nanosleep) rather than waiting for an
// interrupt, which every driver supports.
//
// After a turn of the loop, after_turn() says how many microseconds to sleep: 0 while busy and
// for the first `after_idle_us` of idleness, then 1, 2, 4 ... up to `sleep_max_us`. One busy
// turn starts over. A frame that arrives during a sleep waits at most `sleep_max_us` plus the
// kernel's wake-up latency (docs/performance.md, "Idle backoff").
//
// Pure: the caller reads the clock (in ticks) and sleeps.
#pragma once

#include <algorithm>
#include <cstdint>

namespace magline::dp {

struct IdleConfig {
  uint32_t sleep_max_us = 0;    // 0: never sleep (busy polling)
  uint32_t after_idle_us = 200;

  friend bool operator==(const IdleConfig&, const IdleConfig&) = default;
};

class IdleBackoff {
 public:
  IdleBackoff(IdleConfig config, uint64_t ticks_per_us) noexcept
      : max_us_(config.sleep_max_us),
        after_ticks_(uint64_t(config.after_idle_us) * std::max<uint64_t>(ticks_per_us, 1)) {}

  bool enabled() const noexcept { return max_us_ != 0; }

  // After a turn that found work (`busy`) or none, at `now` (ticks).
  uint32_t after_turn(bool busy, uint64_t now) noexcept {
    if (busy || max_us_ == 0) {
      idle_ = false;
      next_us_ = 1;
      return 0;
    }
    if (!idle_) {
      idle_ = true;
      idle_since_ = now;
    }
    if (now - idle_since_ < after_ticks_) return 0;
    const uint32_t us = next_us_;
    next_us_ = std::min(max_us_, next_us_ * 2);
    return us;
  }

 private:
  uint32_t max_us_;
  uint64_t after_ticks_;
  bool idle_ = false;
  uint64_t idle_since_ = 0;
  uint32_t next_us_ = 1;
};

}  // namespace magline::dp
