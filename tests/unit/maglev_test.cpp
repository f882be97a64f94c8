#include "dataplane/maglev.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/maglev_reference.hpp"

namespace magline::dp {
namespace {

using test::RefBackend;

std::vector<RefBackend> make_backends(size_t n, const std::vector<uint32_t>& weights = {}) {
  std::vector<RefBackend> v;
  for (size_t i = 0; i < n; ++i) {
    v.push_back({"198.18." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ":8080",
                 weights.empty() ? 1u : weights[i % weights.size()]});
  }
  return v;
}

std::vector<MaglevBackend> view(const std::vector<RefBackend>& v) {
  std::vector<MaglevBackend> out;
  for (const auto& b : v) out.push_back({b.id, b.weight});
  return out;
}

MaglevTable build_ok(const std::vector<RefBackend>& v, uint32_t m) {
  auto t = MaglevTable::build(view(v), m);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return std::move(t).value();
}

// Identity per slot: comparable between tables built from differently ordered inputs.
std::vector<std::string> ids_by_slot(const MaglevTable& t, const std::vector<RefBackend>& v) {
  std::vector<std::string> out;
  for (uint16_t s : t.slots()) out.push_back(v[s].id);
  return out;
}

TEST(Maglev, PrimeCheck) {
  for (uint32_t p : {2u, 3u, 13u, 251u, 4093u, 65537u, 655373u, kMaxMaglevSize}) {
    EXPECT_TRUE(is_prime(p)) << p;
  }
  for (uint32_t c : {0u, 1u, 4u, 65535u, 65536u, 655371u, 16777215u}) EXPECT_FALSE(is_prime(c)) << c;
}

// Pins the hash seeds and the algorithm: if this changes, every edge node moves flows.
TEST(Maglev, GoldenSmallTable) {
  const std::vector<RefBackend> v = {{"a", 1}, {"b", 1}, {"c", 1}};
  const MaglevTable t = build_ok(v, 13);
  const std::vector<uint16_t> slots(t.slots().begin(), t.slots().end());
  EXPECT_EQ(slots, (std::vector<uint16_t>{1, 0, 2, 0, 1, 0, 1, 2, 2, 0, 1, 0, 2}));

  const std::vector<RefBackend> w = {{"a", 1}, {"b", 2}, {"c", 4}};
  const MaglevTable tw = build_ok(w, 13);
  const std::vector<uint16_t> wslots(tw.slots().begin(), tw.slots().end());
  EXPECT_EQ(wslots, (std::vector<uint16_t>{2, 0, 2, 2, 1, 1, 2, 1, 2, 2, 1, 0, 2}));
}

TEST(Maglev, MatchesReferenceImplementation) {
  struct Case {
    size_t n;
    uint32_t m;
    std::vector<uint32_t> weights;
  };
  const std::vector<Case> cases = {
      {1, 13, {}},           {2, 13, {}},         {3, 13, {}},           {13, 13, {}},
      {5, 251, {}},          {7, 251, {1, 2, 3}}, {10, 4093, {}},        {10, 4093, {1, 0, 5}},
      {100, 4093, {}},       {64, 4093, {3, 1}},  {10, 65537, {}},       {100, 65537, {}},
      {31, 65537, {1, 100}}, {3, 251, {65535, 1}}, {12, 4093, {0, 0, 0, 9}},
      // Above 2^18 slots the builder keeps a byte map of what is taken, below it reads the slots.
      {10, 262147, {}},      {6, 262147, {1, 3}},
  };
  for (const Case& c : cases) {
    const auto v = make_backends(c.n, c.weights);
    const MaglevTable t = build_ok(v, c.m);
    const std::vector<int> ref = test::reference_maglev(v, c.m);
    ASSERT_EQ(t.slots().size(), ref.size()) << c.n << " " << c.m;
    for (size_t s = 0; s < ref.size(); ++s) {
      ASSERT_EQ(int(t.slots()[s]), ref[s]) << "slot " << s << " n=" << c.n << " m=" << c.m;
    }
  }
}

// The builder orders identities by their first 16 bytes as two words before comparing them
// whole: bytes above 0x7f, NUL bytes, identities that are prefixes of others and that agree in
// their first 16 bytes must still come in std::string's order, which the reference uses.
TEST(Maglev, MatchesReferenceWithIdentitiesAlikeInTheirFirst16Bytes) {
  using namespace std::string_literals;
  const std::string x15(15, 'x'), x16(16, 'x');
  std::vector<RefBackend> v;
  for (const std::string& id :
       {""s, "a"s, "a\0"s, "a\0b"s, "a\0\0"s, "\xff"s, "\x80z"s, "\x7f"s, x15, x15 + "\0"s,
        x15 + "\xff"s, x16, x16 + "a"s, x16 + "b"s, x16 + "\0"s, x16 + "ab"s, x16 + x16,
        "198.18.0.1:8080"s, "198.18.0.10:8080"s, "198.18.0.1:80800"s, "2001:db8::1.8080"s,
        "2001:db8::1.80801"s, "2001:db8::10.8080"s}) {
    v.push_back({id, 1});
  }
  std::mt19937 rng(11);
  for (int trial = 0; trial < 4; ++trial) {
    std::shuffle(v.begin(), v.end(), rng);
    const MaglevTable t = build_ok(v, 251);
    const std::vector<int> ref = test::reference_maglev(v, 251);
    ASSERT_EQ(t.slots().size(), ref.size());
    for (size_t s = 0; s < ref.size(); ++s) ASSERT_EQ(int(t.slots()[s]), ref[s]) << "slot " << s;
  }
  // Equal identities are found whatever the bytes after the first 16.
  v.push_back({x16 + "ab", 1});
  EXPECT_FALSE(MaglevTable::build(view(v), 251).ok());
}

TEST(Maglev, EachBackendWithinOneSlotOfItsWeightedShare) {
  const std::vector<std::vector<uint32_t>> weight_sets = {{}, {1, 2}, {1, 10, 100}, {7, 3, 0, 5}};
  for (uint32_t m : {251u, 65537u}) {
    for (size_t n : {1u, 3u, 10u, 100u}) {
      for (const auto& ws : weight_sets) {
        const auto v = make_backends(n, ws);
        const MaglevTable t = build_ok(v, m);
        double total = 0;
        for (const auto& b : v) total += b.weight;
        if (total == 0) continue;
        const auto counts = t.slot_counts();
        for (size_t i = 0; i < n; ++i) {
          const double share = double(m) * v[i].weight / total;
          EXPECT_LT(std::fabs(counts[i] - share), 1.0) << "m=" << m << " n=" << n << " i=" << i;
        }
      }
    }
  }
}

TEST(Maglev, SameTableWhateverTheInputOrder) {
  std::mt19937 rng(7);
  for (const auto& ws : {std::vector<uint32_t>{}, std::vector<uint32_t>{1, 3, 2}}) {
    auto v = make_backends(50, ws);
    const auto reference = ids_by_slot(build_ok(v, 4093), v);
    for (int trial = 0; trial < 5; ++trial) {
      std::shuffle(v.begin(), v.end(), rng);
      EXPECT_EQ(ids_by_slot(build_ok(v, 4093), v), reference);
    }
  }
}

// When one of N backends leaves, the ideal is that only its M/N slots move. Maglev gives up some
// of this for balance (section 3.4), more so as N approaches M: the paper asks for M > 100 N.
// Report the share moved next to the ideal 1/N, and bound it where measured (docs/performance.md)
// so that a regression in the population order shows.
TEST(Maglev, ShareOfSlotsMovedWhenOneBackendLeaves) {
  struct Case {
    uint32_t m;
    size_t n;
    double max_ratio;  // worst share moved / ideal, measured with margin
  };
  for (const Case& c : {Case{65537, 10, 1.1}, Case{65537, 100, 2.0}, Case{65537, 1000, 9.0},
                        Case{655373, 100, 1.3}}) {
    const auto all = make_backends(c.n);
    const auto before = ids_by_slot(build_ok(all, c.m), all);
    double worst = 0, sum = 0;
    const int trials = 8;
    for (int k = 0; k < trials; ++k) {
      auto less = all;
      less.erase(less.begin() + long(k * c.n / trials));
      const auto after = ids_by_slot(build_ok(less, c.m), less);
      size_t moved = 0;
      for (size_t s = 0; s < c.m; ++s) moved += before[s] != after[s];
      const double share = double(moved) / c.m;
      worst = std::max(worst, share);
      sum += share;
    }
    const double ideal = 1.0 / double(c.n);
    std::printf("  M=%u N=%zu: mean moved %.5f, worst %.5f, ideal %.5f (worst %.2fx ideal)\n", c.m,
                c.n, sum / trials, worst, ideal, worst / ideal);
    EXPECT_GE(worst, ideal * 0.99);  // the leaving backend's own slots must move
    EXPECT_LE(worst, c.max_ratio * ideal);
  }
}

TEST(Maglev, NoBackendsIsAnExplicitEmptyState) {
  auto none = MaglevTable::build({}, 13);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(none->size(), 13u);

  const std::vector<RefBackend> drained = {{"a", 0}, {"b", 0}};
  const MaglevTable t = build_ok(drained, 13);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.backend_count(), 2u);
  EXPECT_EQ(t.slot_counts(), (std::vector<uint32_t>{0, 0}));
}

TEST(Maglev, ZeroWeightBackendHoldsNoSlot) {
  const std::vector<RefBackend> v = {{"a", 1}, {"b", 0}, {"c", 1}};
  const MaglevTable t = build_ok(v, 251);
  const auto counts = t.slot_counts();
  EXPECT_EQ(counts[1], 0u);
  EXPECT_EQ(counts[0] + counts[2], 251u);
}

TEST(Maglev, AsManyBackendsAsSlots) {
  const auto v = make_backends(13);
  const MaglevTable t = build_ok(v, 13);
  for (uint32_t c : t.slot_counts()) EXPECT_EQ(c, 1u);
}

// The most backends a table holds: 65535 (a free slot is marked 0xffff while it is built), at
// either size of map of what is taken; one more is refused.
TEST(Maglev, AtMost65535Backends) {
  const auto v = make_backends(kMaxMaglevBackends);
  for (const uint32_t m : {65537u, 262147u}) {
    const MaglevTable t = build_ok(v, m);
    const std::vector<uint32_t> counts = t.slot_counts();
    ASSERT_EQ(counts.size(), kMaxMaglevBackends);
    for (size_t i = 0; i < counts.size(); ++i) {
      ASSERT_GE(counts[i], m / kMaxMaglevBackends) << "backend " << i << " m=" << m;
      ASSERT_LE(counts[i], m / kMaxMaglevBackends + 1) << "backend " << i << " m=" << m;
    }
  }
  auto more = MaglevTable::build(view(make_backends(kMaxMaglevBackends + 1)), 262147);
  ASSERT_FALSE(more.ok());
  EXPECT_EQ(more.error().message, "65536 backends: at most 65535 fit a Maglev table");
}

TEST(Maglev, RefusesBadInput) {
  const auto v = view(make_backends(3));
  for (uint32_t bad : {0u, 1u, 2u, 4u, 65536u, kMaxMaglevSize + 2}) {
    auto t = MaglevTable::build(v, bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_NE(t.error().message.find("not a prime"), std::string::npos) << t.error().message;
  }
  const std::vector<MaglevBackend> dup = {{"a", 1}, {"b", 1}, {"a", 2}};
  auto d = MaglevTable::build(dup, 13);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message, "backend \"a\" appears twice");

  const std::vector<MaglevBackend> heavy = {{"a", kMaxMaglevWeight + 1}};
  EXPECT_FALSE(MaglevTable::build(heavy, 13).ok());

  auto too_many = MaglevTable::build(view(make_backends(14)), 13);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().message, "14 backends do not fit a table of 13 slots");
}

TEST(Maglev, LookupUsesEverySlotAndStaysInRange) {
  const auto v = make_backends(7);
  const MaglevTable t = build_ok(v, 251);
  std::vector<uint32_t> hits(7, 0);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) ++hits[t.lookup(rng())];
  for (uint32_t h : hits) EXPECT_NEAR(h, 100000 / 7, 100000 / 7 * 0.1);
}

}  // namespace
}  // namespace magline::dp
