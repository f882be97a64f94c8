// New-connection rate limits per frontend: a token bucket per frontend and per worker.
//
// A service may cap the new connections each of its frontends (address, port, protocol) takes:
// `rate` a second, with bursts of up to `burst` after a quiet spell. RSS spreads connections over
// the workers, so each worker holds an equal share of both (at least one token of burst) and
// never asks the others: no shared state, no atomics on the hot path. The cost is the usual one
// of per-core buckets (DPDK's rte_meter, VPP's policers per thread): when a few clients' flows all
// land on one worker, the frontend takes only that worker's share.
//
// What is charged: a TCP connection's bare SYN, a UDP or SCTP flow's first datagram. What a
// limited connection gets: that frame is dropped and counted (new_connection_limited, and per
// frontend); a TCP client retransmits its SYN, as it would to a busy server. Frames of
// connections already open are never limited, nor TCP frames mid-stream that open an entry
// (connections after a restart or moved from another node: a failover must not stall them).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace magline::dp {

// The largest rate and burst a configuration or annotation may give: far above what a node
// opens (a few million a second), low enough to catch a stray digit.
inline constexpr uint32_t kMaxConnectionRate = 100'000'000;

struct ConnectionLimit {
  uint32_t rate = 0;   // new connections a second per frontend, over all workers; 0: no limit
  uint32_t burst = 0;  // the bucket's depth; 0: one second's worth (= rate)
  bool limited() const noexcept { return rate != 0; }
  friend bool operator==(const ConnectionLimit&, const ConnectionLimit&) = default;
};

// One frontend's bucket on one worker. The worker is its only writer; other threads read
// `refused` (relaxed); a reset (any thread) is ordered before the worker's next use by the publish
// that hands the slot to a frontend again (traffic.hpp).
struct alignas(32) LimitRow {
  uint64_t micro_tokens = 0;  // millionths of a token
  uint64_t stamp = 0;         // the last refill's clock + 1; 0: never used, the bucket is full
  uint64_t refused = 0;       // new connections this worker refused for the frontend
  // Full-NAT's SYN proxy guard (forwarder.hpp): handshakes begun less those completed in the
  // second `second` (its low 31 bits), and whether the second before passed the threshold
  // (bit 31). The worker only.
  uint32_t second = 0;
  int32_t half_open = 0;

  uint64_t refused_total() const noexcept {
    return std::atomic_ref<const uint64_t>(refused).load(std::memory_order_relaxed);
  }
  void reset() noexcept {
    std::atomic_ref<uint64_t>(micro_tokens).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(stamp).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(refused).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint32_t>(second).store(0, std::memory_order_relaxed);
    std::atomic_ref<int32_t>(half_open).store(0, std::memory_order_relaxed);
  }
};
static_assert(sizeof(LimitRow) == 32);

// Takes one token for a new connection at `now_ms` from this worker's share (1/workers) of
// `limit`; false (and counted in row.refused) when the bucket is empty. Precondition:
// limit.limited(), workers > 0, rate and burst at most kMaxConnectionRate.
inline bool take_token(LimitRow& row, const ConnectionLimit& limit, uint16_t workers,
                       uint64_t now_ms) noexcept {
  constexpr uint64_t kToken = 1'000'000;
  const uint64_t burst = limit.burst != 0 ? limit.burst : limit.rate;
  const uint64_t depth = std::max<uint64_t>((burst * kToken + workers - 1) / workers, kToken);
  if (row.stamp == 0) {
    row.micro_tokens = depth;
  } else if (now_ms + 1 > row.stamp) {
    // rate tokens a second = rate * 1000 millionths of a token a millisecond, shared out.
    // A day's refill at most: 8.64e7 ms * 1e11 stays below 2^64.
    const uint64_t per_ms = std::max<uint64_t>(uint64_t(limit.rate) * 1000 / workers, 1);
    const uint64_t elapsed = std::min<uint64_t>(now_ms + 1 - row.stamp, 86'400'000);
    row.micro_tokens = std::min(row.micro_tokens + elapsed * per_ms, depth);
  } else if (row.micro_tokens > depth) {
    row.micro_tokens = depth;  // the limit was lowered
  }
  row.stamp = now_ms + 1;
  if (row.micro_tokens < kToken) {
    std::atomic_ref<uint64_t>(row.refused).store(row.refused + 1, std::memory_order_relaxed);
    return false;
  }
  row.micro_tokens -= kToken;
  return true;
}

}  // namespace magline::dp
