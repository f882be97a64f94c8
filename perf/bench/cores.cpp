#include "perf/bench/cores.hpp"

#include <rte_cycles.h>
#include <rte_launch.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

namespace magline::bench {

namespace {

struct PingPong {
  alignas(64) std::atomic<uint32_t> turn{0};  // odd: the main lcore's store; even: the other's
  uint32_t rounds = 0;
};

// The far side: answers each odd turn with the next even one.
int pong_main(void* arg) {
  auto& pp = *static_cast<PingPong*>(arg);
  for (uint32_t i = 0; i <= pp.rounds; ++i) {
    while (pp.turn.load(std::memory_order_acquire) != 2 * i + 1) {
    }
    pp.turn.store(2 * i + 2, std::memory_order_release);
  }
  return 0;
}

}  // namespace

double line_round_trip_cycles(unsigned lcore) {
  constexpr uint32_t kRounds = 4096, kPerSample = 64;
  PingPong pp;
  pp.rounds = kRounds;
  if (rte_eal_remote_launch(pong_main, &pp, lcore) != 0) return 0;
  // Round 0 waits for the far side to start; the timed rounds follow, kPerSample at a time.
  std::vector<double> samples;
  uint64_t start = 0;
  for (uint32_t i = 0; i <= kRounds; ++i) {
    if (i % kPerSample == 1) start = rte_rdtsc();
    pp.turn.store(2 * i + 1, std::memory_order_release);
    while (pp.turn.load(std::memory_order_acquire) != 2 * i + 2) {
    }
    if (i % kPerSample == 0 && i > 0) samples.push_back(double(rte_rdtsc() - start) / kPerSample);
  }
  rte_eal_wait_lcore(lcore);
  std::sort(samples.begin(), samples.end());
  return samples.empty() ? 0 : samples[samples.size() / 2];
}

}  // namespace magline::bench
