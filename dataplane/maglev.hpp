// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4), with weights.
//
// A table of M slots (M prime) maps a flow hash to a backend. Built on the control thread, then
// immutable: workers only call lookup(). Slots hold the backend's index in the caller's array
// (uint16_t: 2 bytes per slot; the build marks a free slot 0xffff, so up to 65535 backends).
//
// Determinism: the table depends only on the set of (identity, weight) pairs and M, never on
// input order, the machine or the run. Backends are ordered by identity (bytewise) and each
// one's permutation comes from hashing its identity with fixed seeds, so every edge node and
// every restart builds the same table.
//
// Weights: backend i gets exactly q_i slots, where q_i is its weighted share M*w_i/W rounded by
// the largest-remainder method (ties to the earlier identity), so every backend is within one
// slot of its share. Backends take turns to claim their next preferred free slot, as in the
// paper; backend i's k-th turn comes in round floor(k * w_max / w_i), and within a round turns go
// in identity order. With equal weights this is exactly the paper's algorithm. Weight 0 means
// "no new connections" (draining): such a backend holds no slot.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "dataplane/hash.hpp"
#include "dataplane/result.hpp"

namespace magline::dp {

inline constexpr uint32_t kDefaultMaglevSize = 65537;
inline constexpr uint32_t kMinMaglevSize = 3;
inline constexpr uint32_t kMaxMaglevSize = 16777213;  // largest prime below 2^24
inline constexpr uint32_t kMaxMaglevWeight = 65535;
inline constexpr size_t kMaxMaglevBackends = 65535;

// Seeds of the two hashes of section 3.4 (offset and skip). Changing them moves every flow.
inline constexpr uint64_t kMaglevOffsetSeed = 0x6d61676c65762d6full;  // "maglev-o"
inline constexpr uint64_t kMaglevSkipSeed = 0x6d61676c65762d73ull;    // "maglev-s"

struct MaglevBackend {
  std::string_view id;  // stable identity, e.g. "198.18.1.10:8080"; must be unique
  uint32_t weight = 1;
};

bool is_prime(uint32_t n) noexcept;

class MaglevTable {
 public:
  // Builds the table. Errors: M not prime or outside [kMinMaglevSize, kMaxMaglevSize]; more
  // backends than kMaxMaglevBackends or than M slots; a duplicate identity; a weight above
  // kMaxMaglevWeight. A set with no backend of positive weight gives an empty() table.
  // Runs in O(M log M) on average (section 3.4), O(M log N) more with unequal weights.
  static Result<MaglevTable> build(std::span<const MaglevBackend> backends, uint32_t size);

  // True when no backend can take new connections; lookup() must not be called then.
  bool empty() const noexcept { return slots_.empty(); }
  uint32_t size() const noexcept { return size_; }
  size_t backend_count() const noexcept { return backend_count_; }

  // The backend index for a flow hash. Uses the hash's high 32 bits. Precondition: !empty().
  uint16_t lookup(uint64_t flow_hash) const noexcept {
    return slots_[reduce32(static_cast<uint32_t>(flow_hash >> 32), size_)];
  }

  // Starts loading the slot lookup(flow_hash) reads.
  void prefetch(uint64_t flow_hash) const noexcept {
    __builtin_prefetch(&slots_[reduce32(static_cast<uint32_t>(flow_hash >> 32), size_)]);
  }

  std::span<const uint16_t> slots() const noexcept { return slots_; }

  // Slots held by each backend, indexed like the input.
  std::vector<uint32_t> slot_counts() const;

 private:
  uint32_t size_ = 0;
  size_t backend_count_ = 0;
  std::vector<uint16_t> slots_;
};

}  // namespace magline::dp
