// A fixed-size, zero-filled array of trivially copyable objects for large per-worker tables.
// Memory comes straight from mmap, asking for transparent huge pages: a 1M-flow table spans
// 64 MiB, and with 4 KiB pages nearly every lookup would also miss the TLB. Allocation happens
// once, at construction, on the control path.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>

namespace magline::dp {

void* big_alloc(size_t bytes);  // zeroed, 2 MiB aligned when large; throws std::bad_alloc
void big_free(void* p, size_t bytes) noexcept;

template <typename T>
class BigArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  explicit BigArray(size_t n) : n_(n), p_(static_cast<T*>(big_alloc(n * sizeof(T)))) {}
  ~BigArray() { big_free(p_, n_ * sizeof(T)); }
  BigArray(const BigArray&) = delete;
  BigArray& operator=(const BigArray&) = delete;

  T& operator[](size_t i) noexcept { return p_[i]; }
  const T& operator[](size_t i) const noexcept { return p_[i]; }
  T* get() noexcept { return p_; }
  const T* get() const noexcept { return p_; }
  size_t size() const noexcept { return n_; }

 private:
  size_t n_;
  T* p_;
};

}  // namespace magline::dp
