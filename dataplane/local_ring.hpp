// A bounded FIFO of messages with the ring interface the worker loop speaks (worker.hpp), for a
// worker that runs on the same thread as everything around it: `magline replay` and the packet
// tests. Not thread-safe: across threads the rings are DPDK's (dataplane/dpdk/ring.hpp).
//
// `refuse` makes every enqueue fail, as a full ring does (tests of what a lost message costs).
#pragma once

#include <cstdint>
#include <deque>

namespace magline::dp {

template <typename T>
class LocalRing {
 public:
  explicit LocalRing(uint32_t capacity = 4096) : capacity_(capacity) {}

  uint32_t enqueue_burst(const T* msgs, uint32_t n) noexcept {
    uint32_t i = 0;
    for (; i < n && !refuse && q_.size() < capacity_; ++i) q_.push_back(msgs[i]);
    return i;
  }
  bool enqueue(const T& msg) noexcept { return enqueue_burst(&msg, 1) == 1; }
  uint32_t dequeue_burst(T* out, uint32_t n) noexcept {
    uint32_t i = 0;
    for (; i < n && !q_.empty(); ++i) {
      out[i] = q_.front();
      q_.pop_front();
    }
    return i;
  }
  bool dequeue(T& out) noexcept { return dequeue_burst(&out, 1) == 1; }
  uint32_t count() const noexcept { return uint32_t(q_.size()); }
  bool empty() const noexcept { return q_.empty(); }

  bool refuse = false;

 private:
  uint32_t capacity_;
  std::deque<T> q_;
};

}  // namespace magline::dp
