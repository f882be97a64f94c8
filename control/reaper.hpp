// Frees what it is given on a thread of its own at the lowest priority, so that a large free is
// off the path of whoever gave it. The watch's relists
// are the case: at a restart, freeing the JSON trees of 10,000 Services and their
// EndpointSlices (millions of small allocations, and glibc's consolidation of them) took the
// control thread 0.2-0.3 s between the lists' arrival and forwarding (docs/performance.md).
//
// Bounded: while more than `max_pending` gifts wait (the CPU never idle), give() frees at once,
// in the caller, as if there were no reaper.
//
// Threads: give() from one thread (or several); the destructor frees what is left and joins.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace magline::control {

template <typename T>
class Reaper {
 public:
  explicit Reaper(const char* thread_name = "reaper", size_t max_pending = 8)
      : max_pending_(max_pending), thread_([this] { run(); }) {
    pthread_setname_np(thread_.native_handle(), thread_name);
  }
  ~Reaper() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // Takes `garbage` to free it later; frees it now when too much is waiting.
  void give(T garbage) {
    {
      std::lock_guard lock(mu_);
      if (pending_.size() < max_pending_) {
        pending_.push_back(std::move(garbage));
        cv_.notify_one();
        return;
      }
    }
    T gone = std::move(garbage);  // freed here, outside the lock
  }

 private:
  void run() {
    // The lowest priority of the normal class (nice 19: about 1.5% of a CPU another thread
    // wants), not SCHED_IDLE: freeing takes the allocator's locks, and a thread that never runs
    // while the CPU is busy could hold one the giver waits for. Should the kernel refuse, the
    // thread runs at the giver's priority: freeing still leaves the giver.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19);
    std::vector<T> taken;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
        if (pending_.empty()) return;  // stopping, nothing left
        taken.swap(pending_);
      }
      taken.clear();
    }
  }

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> pending_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once everything above is built
};

}  // namespace magline::control
