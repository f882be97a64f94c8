// Grace periods (rte_rcu_qsbr), the clock of the publication scheme: the control thread asks
// for a token after it has made an update visible, and knows every worker is past it once each
// online worker has reported a quiescent state with that token or a later one. What has to
// happen before an object may be freed, and why two grace periods are needed, is written once,
// in control/publication.hpp. rte_rcu_qsbr needs no rte_eal_init(): usable in unit tests and
// under ThreadSanitizer.
//
// Threads and calls:
// - Qsbr: created and destroyed on the control thread, after every reader has stopped;
//   start() and passed() on the control thread.
// - QsbrReader: one per worker thread, used only by that thread, except construction and
//   destruction (registration is thread-safe; destroy only after the thread stops using it).
//   online() before the first read of shared objects; quiescent() after every turn of the loop
//   (one load and at most one release store); offline() before anything that blocks (a worker
//   with no traffic that sleeps, a syscall that may wait) and online() after it. Offline
//   readers never hold up a grace period.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
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

  // A new grace period's token (rte_rcu_qsbr_start: a release add, so it is ordered after
  // everything the caller wrote before).
  uint64_t start() const noexcept;
  // Whether every reader online now has reported a quiescent state with `token` or a later
  // one. Never blocks (rte_rcu_qsbr_check with wait = false).
  bool passed(uint64_t token) const noexcept;

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

}  // namespace magline::dpdk
