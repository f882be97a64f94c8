#include "dataplane/big_array.hpp"

#include <sys/mman.h>

#include <cstdint>

namespace magline::dp {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kPage = 4096;

// Whole huge pages for a large array; whole small pages below one huge page, where a huge page
// would only add memory to fault in (a replay's or a test's few counter rows).
size_t mapped_size(size_t bytes) noexcept {
  const size_t unit = bytes >= kHugePage ? kHugePage : kPage;
  return bytes == 0 ? kPage : (bytes + unit - 1) / unit * unit;
}
}  // namespace

void* big_alloc(size_t bytes) {
  const size_t size = mapped_size(bytes);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // Advice only: without transparent huge pages the table still works, with more TLB misses.
  madvise(p, size, MADV_HUGEPAGE);
  // Fault every page in now, by writing (a read would map the shared zero page, and the first
  // write fault again): the data path must never stop for the kernel to find it memory.
  volatile uint8_t* page = static_cast<uint8_t*>(p);
  for (size_t off = 0; off < size; off += kPage) page[off] = 0;
  return p;
}

void big_free(void* p, size_t bytes) noexcept {
  if (p != nullptr) munmap(p, mapped_size(bytes));
}

}  // namespace magline::dp
