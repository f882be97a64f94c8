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
  // A huge page needs a 2 MiB-aligned address: map one huge page more and return the slack on
  // both sides (mmap aligns only to 4 KiB, and the kernel only sometimes better).
  const size_t slack = size >= kHugePage ? kHugePage : 0;
  void* m = mmap(nullptr, size + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  auto* p = static_cast<uint8_t*>(m);
  if (slack != 0) {
    const size_t head = (kHugePage - reinterpret_cast<uintptr_t>(p) % kHugePage) % kHugePage;
    if (head != 0) munmap(p, head);
    if (slack - head != 0) munmap(p + head + size, slack - head);
    p += head;
  }
  // Advice only: without transparent huge pages the table still works, with more TLB misses.
  madvise(p, size, MADV_HUGEPAGE);
  // Fault every page in now, by writing (a read would map the shared zero page, and the first
  // write fault again): the data path must never stop for the kernel to find it memory.
  volatile uint8_t* page = p;
  for (size_t off = 0; off < size; off += kPage) page[off] = 0;
  return p;
}

void big_free(void* p, size_t bytes) noexcept {
  if (p != nullptr) munmap(p, mapped_size(bytes));
}

}  // namespace magline::dp
