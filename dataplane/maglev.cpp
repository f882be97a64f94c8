#include "dataplane/maglev.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>
#include <queue>
#include <string>

#include "dataplane/bytes.hpp"

namespace magline::dp {

bool is_prime(uint32_t n) noexcept {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; uint64_t(d) * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

namespace {

uint64_t hash_id(std::string_view id, uint64_t seed) noexcept {
  return hash_bytes(reinterpret_cast<const uint8_t*>(id.data()), id.size(), seed);
}

// One backend's walk along its permutation (section 3.4): permutation[j] = (offset + j*skip) mod
// M. `next` is the next position to try; advancing by addition avoids a division per probe.
struct Walk {
  uint32_t next;
  uint32_t skip;
  uint32_t skip2, skip3, skip4;  // 2, 3 and 4 skips mod M, for next_free(): computed once
  uint16_t index;  // the backend's index in the caller's array
};

// (a + b) mod m for a, b < m.
uint32_t add_mod(uint32_t a, uint32_t b, uint32_t m) noexcept {
  a += b;
  return a >= m ? a - m : a;
}

// Fills the table's slots. What is taken is read from the slots themselves (a free one holds
// kFree, no backend's index: there are at most kMaxMaglevBackends = 65535) while they fit in a
// core's L2 cache with room to spare, M <= kOwnSlotsMax: one array written per turn, not two;
// beyond, from a byte per slot, half their size. Against a byte map at every size: 3-4%
// faster at M = 65537; at M = 655373 the slots alone were 6% slower (docs/performance.md).
inline constexpr uint32_t kOwnSlotsMax = 1u << 18;  // 512 KiB of slots

template <bool kOwnSlots>
class Filler {
 public:
  static constexpr uint16_t kFree = 0xffff;
  static_assert(kMaxMaglevBackends <= kFree);

  Filler(uint32_t size, std::vector<uint16_t>& slots) : size_(size) {
    if constexpr (kOwnSlots) {
      slots.assign(size, kFree);
    } else {
      slots.resize(size);
      used_.assign(size, 0);
    }
    slots_ = slots.data();
  }

  // Gives backend `w` its next preferred free slot. Terminates because skip and M are coprime
  // (M prime), so the walk visits every slot, and the caller never asks for more than M turns.
  void take(Walk& w) noexcept {
    uint32_t c = w.next;
    if (!is_free(c)) c = next_free(c, w);
    if constexpr (!kOwnSlots) used_[c] = 1;
    slots_[c] = w.index;
    w.next = add_mod(c, w.skip, size_);
  }

 private:
  bool is_free(uint32_t p) const noexcept {
    if constexpr (kOwnSlots) {
      return slots_[p] == kFree;
    } else {
      return used_[p] == 0;
    }
  }

  // Most of a build's probes come late, when few slots are free and a walk passes many taken
  // ones (M ln M probes in all, section 3.4). Probing one position after the other makes each
  // wait for the previous one's; here four positions are computed from the same one, then
  // tested in order. Measured at M = 4093 (a Service of 10 endpoints): 1.8x faster than one
  // position at a time over a bitmap; 1.2-1.3x at M = 65537 (docs/performance.md).
  uint32_t next_free(uint32_t c, const Walk& w) const noexcept {
    const uint32_t skip = w.skip, s2 = w.skip2, s3 = w.skip3, s4 = w.skip4;
    for (;;) {
      const uint32_t p1 = add_mod(c, skip, size_);
      const uint32_t p2 = add_mod(c, s2, size_);
      const uint32_t p3 = add_mod(c, s3, size_);
      const uint32_t p4 = add_mod(c, s4, size_);
      if (is_free(p1)) return p1;
      if (is_free(p2)) return p2;
      if (is_free(p3)) return p3;
      if (is_free(p4)) return p4;
      c = p4;
    }
  }

  uint32_t size_;
  uint16_t* slots_ = nullptr;
  std::vector<uint8_t> used_;  // !kOwnSlots: one byte per slot, no shift or mask per probe
};

// The backends' indices in identity order (bytewise, as std::string_view compares). Each
// identity's first 16 bytes, zero-padded, are compared as two big-endian words first; only
// identities that agree there are compared whole. Identities such as "198.18.1.10:8080" differ
// in those bytes, and a string compare per step of the sort cost as much as a twentieth of a
// build of 65537 slots for 1000 backends (docs/performance.md).
std::vector<uint32_t> identity_order(std::span<const MaglevBackend> backends) {
  struct Key {
    uint64_t hi, lo;
    uint32_t index;
  };
  std::vector<Key> keys(backends.size());
  for (uint32_t i = 0; i < backends.size(); ++i) {
    uint8_t prefix[16] = {};
    const std::string_view id = backends[i].id;
    std::memcpy(prefix, id.data(), std::min(id.size(), sizeof prefix));
    keys[i] = {load_be64(prefix), load_be64(prefix + 8), i};
  }
  std::sort(keys.begin(), keys.end(), [&](const Key& a, const Key& b) {
    if (a.hi != b.hi) return a.hi < b.hi;
    if (a.lo != b.lo) return a.lo < b.lo;
    return backends[a.index].id < backends[b.index].id;
  });
  std::vector<uint32_t> order(backends.size());
  for (size_t k = 0; k < keys.size(); ++k) order[k] = keys[k].index;
  return order;
}

// Largest-remainder apportionment of `size` slots by weight; ties go to the earlier backend.
std::vector<uint32_t> quotas(const std::vector<uint32_t>& weights, uint32_t size) {
  const uint64_t total = std::accumulate(weights.begin(), weights.end(), uint64_t{0});
  std::vector<uint32_t> q(weights.size());
  std::vector<uint64_t> rem(weights.size());
  uint64_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const uint64_t share = uint64_t(size) * weights[i];
    q[i] = static_cast<uint32_t>(share / total);
    rem[i] = share % total;
    given += q[i];
  }
  std::vector<uint32_t> by_rem(weights.size());
  std::iota(by_rem.begin(), by_rem.end(), 0u);
  std::stable_sort(by_rem.begin(), by_rem.end(),
                   [&](uint32_t a, uint32_t b) { return rem[a] > rem[b]; });
  for (uint64_t k = 0; given < size; ++k, ++given) ++q[by_rem[k]];
  return q;
}

// Every slot to a backend: the paper's rounds when the weights are equal, else turns ordered by
// (round, identity order), each backend up to its quota.
template <class F>
void fill(F&& filler, std::vector<Walk>& walks, const std::vector<uint32_t>& weights,
          uint32_t size) {
  const size_t n = walks.size();
  if (std::all_of(weights.begin(), weights.end(), [&](uint32_t w) { return w == weights[0]; })) {
    // The paper's loop: whole rounds, then the first M mod N backends once more.
    for (uint32_t round = 0; round < size / n; ++round) {
      for (Walk& w : walks) filler.take(w);
    }
    for (size_t i = 0; i < size % n; ++i) filler.take(walks[i]);
    return;
  }
  const std::vector<uint32_t> quota = quotas(weights, size);
  const uint64_t w_max = *std::max_element(weights.begin(), weights.end());
  std::vector<uint32_t> taken(n, 0);
  using Turn = uint64_t;  // round << 32 | position in identity order
  std::priority_queue<Turn, std::vector<Turn>, std::greater<>> turns;
  for (uint32_t i = 0; i < n; ++i) {
    if (quota[i] > 0) turns.push(i);
  }
  while (!turns.empty()) {
    const uint32_t i = static_cast<uint32_t>(turns.top());
    turns.pop();
    filler.take(walks[i]);
    if (++taken[i] < quota[i]) {
      const uint64_t round = taken[i] * w_max / weights[i];
      turns.push(round << 32 | i);
    }
  }
}

}  // namespace

Result<MaglevTable> MaglevTable::build(std::span<const MaglevBackend> backends, uint32_t size) {
  if (size < kMinMaglevSize || size > kMaxMaglevSize || !is_prime(size)) {
    return Error{"table size " + std::to_string(size) + " is not a prime between " +
                 std::to_string(kMinMaglevSize) + " and " + std::to_string(kMaxMaglevSize)};
  }
  if (backends.size() > kMaxMaglevBackends) {
    return Error{std::to_string(backends.size()) + " backends: at most " +
                 std::to_string(kMaxMaglevBackends) + " fit a Maglev table"};
  }

  std::vector<uint32_t> order = identity_order(backends);
  for (size_t k = 0; k < order.size(); ++k) {
    const MaglevBackend& b = backends[order[k]];
    if (k > 0 && backends[order[k - 1]].id == b.id) {
      return Error{"backend \"" + std::string(b.id) + "\" appears twice"};
    }
    if (b.weight > kMaxMaglevWeight) {
      return Error{"backend \"" + std::string(b.id) + "\" has weight " +
                   std::to_string(b.weight) + ", above " + std::to_string(kMaxMaglevWeight)};
    }
  }

  MaglevTable table;
  table.size_ = size;
  table.backend_count_ = backends.size();

  // Backends that take new connections, in identity order.
  std::vector<Walk> walks;
  std::vector<uint32_t> weights;
  walks.reserve(order.size());
  weights.reserve(order.size());
  for (uint32_t i : order) {
    if (backends[i].weight == 0) continue;
    const uint32_t offset = static_cast<uint32_t>(hash_id(backends[i].id, kMaglevOffsetSeed) % size);
    const uint32_t skip =
        static_cast<uint32_t>(hash_id(backends[i].id, kMaglevSkipSeed) % (size - 1)) + 1;
    const uint32_t skip2 = add_mod(skip, skip, size);
    const uint32_t skip3 = add_mod(skip2, skip, size);
    walks.push_back(Walk{offset, skip, skip2, skip3, add_mod(skip3, skip, size),
                         static_cast<uint16_t>(i)});
    weights.push_back(backends[i].weight);
  }
  if (walks.empty()) return table;  // explicit "no backends": empty()
  if (walks.size() > size) {
    return Error{std::to_string(walks.size()) + " backends do not fit a table of " +
                 std::to_string(size) + " slots"};
  }

  if (size <= kOwnSlotsMax) {
    fill(Filler<true>(size, table.slots_), walks, weights, size);
  } else {
    fill(Filler<false>(size, table.slots_), walks, weights, size);
  }
  return table;
}

std::vector<uint32_t> MaglevTable::slot_counts() const {
  std::vector<uint32_t> counts(backend_count_, 0);
  for (uint16_t s : slots_) ++counts[s];
  return counts;
}

}  // namespace magline::dp
