#include "dataplane/dpdk/qsbr.hpp"

#include <rte_common.h>
#include <rte_rcu_qsbr.h>

#include <cstdlib>
#include <string>

namespace magline::dpdk {

Result<Qsbr> Qsbr::create(uint32_t max_readers) {
  if (max_readers == 0) return Error{"QSBR variable for 0 readers"};
  const size_t bytes = rte_rcu_qsbr_get_memsize(max_readers);
  const size_t alloc = RTE_ALIGN_CEIL(bytes, RTE_CACHE_LINE_SIZE);
  auto* v = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, alloc));
  if (v == nullptr) return Error{"QSBR variable: no memory"};
  if (rte_rcu_qsbr_init(v, max_readers) != 0) {
    std::free(v);
    return Error{"rte_rcu_qsbr_init failed for " + std::to_string(max_readers) + " readers"};
  }
  return Qsbr(v, max_readers);
}

void Qsbr::Free::operator()(rte_rcu_qsbr* v) const noexcept { std::free(v); }

Result<QsbrReader> QsbrReader::create(const Qsbr& qsbr, uint32_t id) {
  if (id >= qsbr.max_readers()) {
    return Error{"QSBR reader id " + std::to_string(id) + " >= " +
                 std::to_string(qsbr.max_readers())};
  }
  std::atomic<bool>& taken = qsbr.taken_[id];
  if (taken.exchange(true, std::memory_order_acq_rel)) {
    return Error{"QSBR reader id " + std::to_string(id) + " is already registered"};
  }
  rte_rcu_qsbr_thread_register(qsbr.get(), id);  // cannot fail for a valid id
  return QsbrReader(qsbr.get(), &taken, id);
}

QsbrReader::~QsbrReader() {
  if (v_ == nullptr) return;
  rte_rcu_qsbr_thread_offline(v_, id_);
  rte_rcu_qsbr_thread_unregister(v_, id_);
  taken_->store(false, std::memory_order_release);
}

void QsbrReader::online() noexcept { rte_rcu_qsbr_thread_online(v_, id_); }
void QsbrReader::offline() noexcept { rte_rcu_qsbr_thread_offline(v_, id_); }
void QsbrReader::quiescent() noexcept { rte_rcu_qsbr_quiescent(v_, id_); }

uint64_t Qsbr::start() const noexcept { return rte_rcu_qsbr_start(v_.get()); }

bool Qsbr::passed(uint64_t token) const noexcept {
  return rte_rcu_qsbr_check(v_.get(), token, false) == 1;
}

}  // namespace magline::dpdk
