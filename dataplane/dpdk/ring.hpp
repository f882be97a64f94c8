// A single-producer / single-consumer ring of fixed-size messages: rte_ring's element API
// (messages are copied into the ring's own slots, no pointer per message, no message pool).
//
// The ring lives in ordinary aligned heap memory initialised with rte_ring_init(), not in an EAL
// memzone (rte_ring_create_elem), so it needs no rte_eal_init(): unit tests and ThreadSanitizer
// builds use it as is. It is not registered in DPDK's ring list (rte_ring_lookup cannot find it)
// and must not be passed to rte_ring_free().
//
// Threads: exactly one producer thread calls enqueue*, exactly one consumer thread dequeue*;
// either may change over time only with a happens-before edge between the old and the new one
// (e.g. thread start/join). Both sides are wait-free and allocation-free. Ordering: a dequeued
// message's bytes happen-before the dequeue returns (the producer publishes its tail with a
// release store and the consumer reads it with an acquire load; on x86 DPDK's default "generic"
// ring gets the same from the CPU's store ordering plus compiler barriers).
#pragma once

#include <rte_common.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>

#include "dataplane/result.hpp"

namespace magline::dpdk {

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "messages are copied bytewise");
  static_assert(sizeof(T) % 4 == 0, "rte_ring element sizes are multiples of 4 bytes");

 public:
  // A ring that holds exactly `capacity` messages (RING_F_EXACT_SZ: the slot array is the next
  // power of two above it). Control thread; allocates. Errors: capacity 0 or too large.
  static Result<SpscRing> create(uint32_t capacity, const char* name = "magline_spsc") {
    if (capacity == 0 || capacity > RTE_RING_SZ_MASK / 2) {
      return Error{"ring capacity " + std::to_string(capacity) + " out of range"};
    }
    const unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ;
    const ssize_t bytes = rte_ring_get_memsize_elem(sizeof(T), rte_align32pow2(capacity + 1));
    if (bytes < 0) return Error{"ring of " + std::to_string(capacity) + " messages: bad size"};
    const size_t alloc = (size_t(bytes) + alignof(rte_ring) - 1) / alignof(rte_ring) *
                         alignof(rte_ring);
    auto* r = static_cast<rte_ring*>(std::aligned_alloc(alignof(rte_ring), alloc));
    if (r == nullptr) return Error{"ring of " + std::to_string(capacity) + " messages: no memory"};
    if (int rc = rte_ring_init(r, name, capacity, flags); rc != 0) {
      std::free(r);
      return Error{"rte_ring_init failed (" + std::to_string(rc) + ")"};
    }
    return SpscRing(r);
  }

  // Producer thread. Copies up to n messages in; returns how many fit.
  uint32_t enqueue_burst(const T* msgs, uint32_t n) noexcept {
    return rte_ring_sp_enqueue_burst_elem(ring_.get(), msgs, sizeof(T), n, nullptr);
  }
  bool enqueue(const T& msg) noexcept { return enqueue_burst(&msg, 1) == 1; }

  // Consumer thread. Copies up to n messages out, oldest first; returns how many.
  uint32_t dequeue_burst(T* out, uint32_t n) noexcept {
    return rte_ring_sc_dequeue_burst_elem(ring_.get(), out, sizeof(T), n, nullptr);
  }
  bool dequeue(T& out) noexcept { return dequeue_burst(&out, 1) == 1; }

  uint32_t capacity() const noexcept { return rte_ring_get_capacity(ring_.get()); }
  // Messages waiting. Exact only on the producer or consumer thread while the other is idle;
  // elsewhere a snapshot for statistics (it reads both indices without synchronisation).
  uint32_t count() const noexcept { return rte_ring_count(ring_.get()); }

 private:
  struct Free {
    void operator()(rte_ring* r) const noexcept { std::free(r); }
  };
  explicit SpscRing(rte_ring* r) : ring_(r) {}

  std::unique_ptr<rte_ring, Free> ring_;
};

}  // namespace magline::dpdk
