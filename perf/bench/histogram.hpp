// Latency in TSC cycles, kept as a log-linear histogram: 16 sub-buckets per power of two (a
// value is placed within 1/16 = 6% of itself), 64 powers. Adding a sample is a bit scan, a shift
// and an increment: no allocation, no division. Quantiles are read after the run.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace magline::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSub = 4;  // log2 of sub-buckets per power of two

  void add(uint64_t cycles) noexcept {
    ++buckets_[index(cycles)];
    ++count_;
    if (cycles > max_) max_ = cycles;
  }
  void clear() noexcept { *this = LatencyHistogram{}; }
  uint64_t count() const noexcept { return count_; }
  uint64_t max() const noexcept { return max_; }

  // The q-quantile (0..1) in cycles: the middle of the bucket it falls in; 0 without samples.
  double quantile(double q) const noexcept {
    if (count_ == 0) return 0;
    const uint64_t want = uint64_t(q * double(count_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= want) return (double(lower(i)) + double(lower(i + 1))) / 2;
    }
    return double(max_);
  }

 private:
  static size_t index(uint64_t v) noexcept {
    if (v < (1u << kSub)) return size_t(v);
    const unsigned msb = 63u - unsigned(std::countl_zero(v));
    const unsigned shift = msb - kSub;
    return (size_t(shift + 1) << kSub) + size_t((v >> shift) & ((1u << kSub) - 1));
  }
  static uint64_t lower(size_t i) noexcept {
    if (i < (1u << kSub)) return i;
    const unsigned shift = unsigned(i >> kSub) - 1;
    const uint64_t sub = i & ((1u << kSub) - 1);
    return ((uint64_t(1) << kSub) | sub) << shift;
  }

  std::array<uint64_t, (64 - kSub + 1) << kSub> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace magline::bench
