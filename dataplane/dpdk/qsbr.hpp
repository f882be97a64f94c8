// Grace periods for the publication scheme (docs: DESIGN "Publishing"): the control thread
// builds immutable objects and hands workers pointers to them; once it swaps in a replacement it
// *retires* the old object, which is freed only after every worker has reported a quiescent
// state (finished a burst, so it holds no pointer from before the swap). Built on rte_rcu_qsbr,
// which needs no rte_eal_init(): usable in unit tests and under ThreadSanitizer.
//
// Threads and calls:
// - Qsbr: created and destroyed on the control thread, after every reader has stopped.
// - QsbrReader: one per worker thread, used only by that thread, except construction and
//   destruction (registration is thread-safe; destroy only after the thread stops using it).
//   online() before the first read of shared objects; quiescent() after every burst (one load
//   and at most one release store); offline() before anything that blocks (a worker with no
//   traffic that sleeps, a syscall that may wait) and online() after it. Offline readers never
//   hold up a grace period.
// - Retirer: the control thread only. retire() takes a token (rte_rcu_qsbr_start, one atomic
//   add); poll() frees, in retirement order, every object whose token all online readers have
//   passed, never blocking (rte_rcu_qsbr_check with wait = false).
//
// Why this is safe with update rings: the control thread enqueues the update that replaces an
// object to every worker *before* retiring it, and each worker, per iteration, drains its ring
// (swapping pointers) before touching shared objects and reports quiescent after the burst. A
// worker that reports the retirement's token has loaded it with acquire, which synchronises
// with the release add in rte_rcu_qsbr_start; the enqueue came before that add, so the worker's
// next drain sees the update and it never uses the old pointer after the report. A worker must
// therefore keep no pointer to shared objects across iterations other than the ones its ring
// updates.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "dataplane/result.hpp"

struct rte_rcu_qsbr;

namespace magline::dpdk {

class Qsbr {
 public:
  // A variable for readers with ids 0 .. max_readers-1. Errors: max_readers 0, no memory.
  static Result<Qsbr> create(uint32_t max_readers);

  rte_rcu_qsbr* get() const noexcept { return v_.get(); }
  uint32_t max_readers() const noexcept { return max_readers_; }

 private:
  struct Free {
    void operator()(rte_rcu_qsbr* v) const noexcept;
  };
  friend class QsbrReader;
  Qsbr(rte_rcu_qsbr* v, uint32_t n)
      : v_(v), max_readers_(n), taken_(std::make_unique<std::atomic<bool>[]>(n)) {}

  std::unique_ptr<rte_rcu_qsbr, Free> v_;
  uint32_t max_readers_;
  // DPDK accepts registering an id twice; these flags refuse it, so two workers cannot share an
  // id by mistake (that would end grace periods early).
  std::unique_ptr<std::atomic<bool>[]> taken_;
};

class QsbrReader {
 public:
  // Registers reader `id` (offline until online()). Errors: id >= max_readers, or taken.
  static Result<QsbrReader> create(const Qsbr& qsbr, uint32_t id);

  QsbrReader(QsbrReader&& o) noexcept : v_(o.v_), taken_(o.taken_), id_(o.id_) {
    o.v_ = nullptr;
  }
  QsbrReader& operator=(QsbrReader&&) = delete;
  // Goes offline and unregisters.
  ~QsbrReader();

  void online() noexcept;
  void offline() noexcept;
  void quiescent() noexcept;
  uint32_t id() const noexcept { return id_; }

 private:
  QsbrReader(rte_rcu_qsbr* v, std::atomic<bool>* taken, uint32_t id)
      : v_(v), taken_(taken), id_(id) {}

  rte_rcu_qsbr* v_;
  std::atomic<bool>* taken_;
  uint32_t id_;
};

class Retirer {
 public:
  explicit Retirer(const Qsbr& qsbr) : v_(qsbr.get()) {}
  Retirer(const Retirer&) = delete;
  Retirer& operator=(const Retirer&) = delete;
  // Frees everything still pending. Precondition: no reader is online any more (workers
  // stopped), so nobody can hold a pointer to a retired object.
  ~Retirer();

  // Frees `obj` with `free_fn(obj)` once every reader online now has been quiescent.
  void retire(void* obj, void (*free_fn)(void*));
  template <typename T>
  void retire(std::unique_ptr<T> obj) {
    retire(obj.release(), [](void* p) { delete static_cast<T*>(p); });
  }
  // Drops this reference after the grace period (the object dies if it was the last one).
  template <typename T>
  void retire(std::shared_ptr<T> obj) {
    retire(new std::shared_ptr<T>(std::move(obj)),
           [](void* p) { delete static_cast<std::shared_ptr<T>*>(p); });
  }

  // Frees every object whose grace period has ended; returns how many. Never blocks.
  size_t poll() noexcept;
  size_t pending() const noexcept { return pending_.size(); }

 private:
  struct Retired {
    uint64_t token;
    void* obj;
    void (*free_fn)(void*);
  };

  rte_rcu_qsbr* v_;
  std::deque<Retired> pending_;  // tokens increase front to back
};

}  // namespace magline::dpdk
