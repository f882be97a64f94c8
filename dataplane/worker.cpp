#include "dataplane/worker.hpp"

namespace magline::dp {

namespace {

// Counter structs are arrays of uint64_t; copies between threads go word by word through relaxed
// atomics (the sequence number then tells the reader whether the copy is whole).
void copy_words(WorkerCounters& dst, const WorkerCounters& src) noexcept {
  static_assert(sizeof(WorkerCounters) % sizeof(uint64_t) == 0 &&
                std::is_trivially_copyable_v<WorkerCounters>);
  auto* d = reinterpret_cast<uint64_t*>(&dst);
  const auto* s = reinterpret_cast<const uint64_t*>(&src);
  for (size_t i = 0; i < sizeof(WorkerCounters) / sizeof(uint64_t); ++i) {
    std::atomic_ref<uint64_t>(d[i]).store(
        std::atomic_ref<const uint64_t>(s[i]).load(std::memory_order_relaxed),
        std::memory_order_relaxed);
  }
}

}  // namespace

void WorkerShare::publish(const WorkerCounters& c) noexcept {
  seq_.fetch_add(1, std::memory_order_acq_rel);  // odd: writing
  copy_words(copy_, c);
  seq_.fetch_add(1, std::memory_order_release);  // even: whole
}

WorkerCounters WorkerShare::read() const noexcept {
  WorkerCounters c;
  for (;;) {
    const uint64_t before = seq_.load(std::memory_order_acquire);
    if (before % 2 == 0) {
      copy_words(c, copy_);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == before) return c;
    }
  }
}

}  // namespace magline::dp
