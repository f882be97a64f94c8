#include "dataplane/flow_table.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

#include "dataplane/big_array.hpp"
#include "dataplane/parse.hpp"

namespace magline::dp {
namespace {

FlowKey key_of(uint32_t n, uint8_t proto = kProtoTcp) {
  FlowKey k;
  k.src = IpAddr::v4(0xc6120000 | (n >> 16)).bytes;  // 198.18.x.y
  k.dst = IpAddr::v4(198, 19, 0, 1).bytes;
  k.sport = uint16_t(n);
  k.dport = 80;
  k.proto = proto;
  return k;
}

constexpr uint64_t kSeed = 0x1234;

// `n` keys whose primary bucket is bucket 0 of `t`, from key number `first` on (in a table of
// two buckets, bucket 1 is then every one's alternate).
std::vector<FlowKey> keys_in_bucket_zero(const FlowTable& t, size_t n, uint32_t first = 0) {
  std::vector<FlowKey> keys;
  for (uint32_t i = first; keys.size() < n; ++i) {
    if (t.primary_bucket(t.hash(key_of(i))) == 0) keys.push_back(key_of(i));
  }
  return keys;
}

TEST(FlowTable, SignatureMatchAgreesWithOneWayAtATime) {
  std::mt19937 rng(7);
  for (int round = 0; round < 10000; ++round) {
    uint16_t sigs[8];
    for (uint16_t& s : sigs) s = uint16_t(rng() % 4);  // few values: many matches
    const uint16_t sig = uint16_t(rng() % 4);
    ASSERT_EQ(detail::sig_match(sigs, sig), detail::sig_match_scalar(sigs, sig)) << round;
  }
  const uint16_t all[8] = {0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff};
  EXPECT_EQ(detail::sig_match(all, 0xffff), 0xffu);
  EXPECT_EQ(detail::sig_match(all, 0x7fff), 0u);
}

TEST(FlowTable, WayRankingAgreesWithOneWayAtATime) {
  std::mt19937 rng(11);
  const uint32_t now = 0xfffff000u;  // deadlines wrap around 2^32 within the timeouts
  for (int round = 0; round < 20000; ++round) {
    FlowState states[8];
    uint32_t deadlines[8];
    for (unsigned w = 0; w < 8; ++w) {
      states[w] = FlowState(rng() % 14);  // every state
      switch (rng() % 4) {
        case 0: deadlines[w] = now - rng() % 5000; break;                // expired (or now)
        case 1: deadlines[w] = now + 1 + rng() % 3; break;               // ties likely
        case 2: deadlines[w] = now + rng() % (kMaxFlowTimeoutMs + 2); break;  // edges
        default: deadlines[w] = uint32_t(rng()); break;                  // anything
      }
    }
    const detail::WayScore fast = detail::best_way(states, deadlines, now);
    const detail::WayScore ref = detail::best_way_scalar(states, deadlines, now);
    ASSERT_EQ(fast.score, ref.score) << round;
    ASSERT_EQ(fast.way, ref.way) << round;
  }
  // Ties go to the lowest way; a free way beats everything, a live confirmed one nothing.
  FlowState half_open[8];
  uint32_t same[8];
  for (unsigned w = 0; w < 8; ++w) half_open[w] = FlowState::tcp_syn, same[w] = now + 100;
  EXPECT_EQ(detail::best_way(half_open, same, now).way, 0u);
  half_open[5] = FlowState::free;
  EXPECT_EQ(detail::best_way(half_open, same, now).way, 5u);
  FlowState established[8];
  for (FlowState& s : established) s = FlowState::tcp_established;
  EXPECT_EQ(detail::best_way(established, same, now).score >> detail::kScoreRankShift, 9u);
}

TEST(FlowTable, InsertFindRefreshErase) {
  FlowTable t(1024, {}, kSeed);
  EXPECT_EQ(t.stats().capacity, 1024u);
  const FlowKey k = key_of(1);
  const uint64_t h = t.hash(k);
  EXPECT_EQ(t.find(k, h, 0), nullptr);

  FlowEntry* e = t.insert(k, h, FlowState::tcp_syn, 0);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->key, k);
  e->value.fwd.backend_port = 42;
  EXPECT_EQ(t.find(k, h, 10), e);
  EXPECT_EQ(t.find(key_of(2), t.hash(key_of(2)), 10), nullptr);
  EXPECT_EQ(t.state(e), FlowState::tcp_syn);

  // A stored entry's tag (its frontend) does not take part in lookups, in either API.
  e->key.tag = 0xbeef;
  EXPECT_EQ(t.find(k, h, 10), e);
  const FlowKey* keys[1] = {&k};
  FlowEntry* found[1] = {nullptr};
  FlowTable::Slot at[1];
  t.find_bulk(keys, &h, 1, found, at, 10);
  EXPECT_EQ(found[0], e);
  EXPECT_FALSE(e->key == k);
  EXPECT_TRUE(e->key.same_flow(k));

  t.refresh(e, FlowState::tcp_established, 20);
  EXPECT_EQ(t.state(e), FlowState::tcp_established);
  EXPECT_EQ(t.find(k, h, 30)->value.fwd.backend_port, 42u);
  EXPECT_EQ(t.stats().occupied, 1u);

  t.erase(e);
  EXPECT_EQ(t.find(k, h, 40), nullptr);
  EXPECT_EQ(t.stats().occupied, 0u);
  EXPECT_EQ(t.stats().erased, 1u);
}

// may_have_inserted() never misses a key inserted since forget_inserted() (the forwarder then
// skips its second look for a burst's new key), through displacements, evictions and failed
// inserts; and it is a filter, not always true: of keys never inserted, most are answered no.
TEST(FlowTable, AnInsertedKeyIsAlwaysAmongThoseThatMayHaveBeenInserted) {
  FlowTable t(64, {}, kSeed);  // small: later inserts displace and evict earlier ones
  t.forget_inserted();
  uint32_t refused = 0;
  for (uint32_t round = 0; round < 20; ++round) {
    std::vector<uint64_t> inserted;
    for (uint32_t i = 0; i < 32; ++i) {
      const FlowKey k = key_of(round * 1000 + i);
      const uint64_t h = t.hash(k);
      if (t.insert(k, h, FlowState::tcp_established, 0) == nullptr) ++refused;
      inserted.push_back(h);
      for (uint64_t earlier : inserted) EXPECT_TRUE(t.may_have_inserted(earlier)) << round;
    }
    uint32_t maybe = 0;
    for (uint32_t i = 0; i < 1000; ++i) maybe += t.may_have_inserted(t.hash(key_of(500000 + i)));
    EXPECT_LT(maybe, 300u) << "32 keys set at most 32 of 256 bits";
    t.forget_inserted();
    for (uint64_t h : inserted) EXPECT_FALSE(t.may_have_inserted(h));
  }
  EXPECT_GT(refused, 0u);  // the table filled: failed inserts were among those checked
}

// An entry's place is found from its address alone (state(), refresh(), index()): every way of
// every bucket, both ways round.
TEST(FlowTable, EveryEntrysIndexIsFoundFromItsAddress) {
  FlowTable t(1 << 12, {}, kSeed);
  for (uint32_t i = 0; i < t.stats().capacity; ++i) ASSERT_EQ(t.index(t.at(i)), i);
}

TEST(FlowTable, ACapacityBeyondTheLargestIsRefusedBeforeAnyMemoryIsTaken) {
  EXPECT_THROW(FlowTable(size_t{1} << 32, {}, kSeed), std::length_error);
}

// Huge pages need 2 MiB-aligned memory: a table's array of a huge page or more gets it.
TEST(BigArray, LargeArraysAreHugePageAligned) {
  for (const size_t bytes : {size_t{2} << 20, size_t{5} << 20, (size_t{3} << 20) + 4096}) {
    BigArray<uint8_t> a(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % (size_t{2} << 20), 0u) << bytes;
    a[bytes - 1] = 1;  // the whole array is mapped
    EXPECT_EQ(a[0], 0);
  }
}

TEST(FlowTable, EntriesExpireAtTheirStatesDeadline) {
  FlowTimeouts to;
  to.tcp_syn_ms = 1000;
  to.tcp_established_ms = 5000;
  to.udp_ms = 3000;
  FlowTable t(64, to, kSeed);
  const FlowKey k = key_of(1);
  const uint64_t h = t.hash(k);
  FlowEntry* e = t.insert(k, h, FlowState::tcp_syn, 100);
  EXPECT_NE(t.find(k, h, 1099), nullptr);
  EXPECT_EQ(t.find(k, h, 1100), nullptr);  // deadline = 100 + 1000

  e = t.insert(k, h, FlowState::tcp_syn, 2000);  // the expired way is reused, not duplicated
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(t.stats().occupied, 1u);
  t.refresh(e, FlowState::tcp_established, 2500);
  EXPECT_NE(t.find(k, h, 7499), nullptr);
  EXPECT_EQ(t.find(k, h, 7500), nullptr);

  const FlowKey u = key_of(2, kProtoUdp);
  t.insert(u, t.hash(u), FlowState::udp, 0);
  EXPECT_NE(t.find(u, t.hash(u), 2999), nullptr);
  EXPECT_EQ(t.find(u, t.hash(u), 3000), nullptr);
}

TEST(FlowTable, DeadlinesWorkAcrossTheMillisecondWrap) {
  FlowTable t(64, {}, kSeed);
  const uint64_t near_wrap = (uint64_t{1} << 32) - 500;
  const FlowKey k = key_of(1);
  const uint64_t h = t.hash(k);
  t.insert(k, h, FlowState::tcp_syn, near_wrap);
  EXPECT_NE(t.find(k, h, near_wrap + 29'999), nullptr);
  EXPECT_EQ(t.find(k, h, near_wrap + 30'000), nullptr);
}

TEST(FlowTable, ExpireReclaimsIncrementallyAndKeepsOccupancyTrue) {
  FlowTimeouts to;
  to.udp_ms = 100;
  FlowTable t(4096, to, kSeed);
  for (uint32_t i = 0; i < 1000; ++i) {
    ASSERT_NE(t.insert(key_of(i, kProtoUdp), t.hash(key_of(i, kProtoUdp)), FlowState::udp, 0),
              nullptr);
  }
  EXPECT_EQ(t.stats().occupied, 1000u);
  EXPECT_EQ(t.expire(50, 512), 0u);  // nothing expired yet
  size_t freed = t.expire(100, 100);
  EXPECT_LT(freed, 1000u);  // bounded: only 100 of 512 buckets visited
  freed += t.expire(100, 512);
  EXPECT_EQ(freed, 1000u);
  EXPECT_EQ(t.stats().occupied, 0u);
  EXPECT_EQ(t.stats().reclaimed_expired, 1000u);
}

// Two buckets of 8 ways: every key's primary and alternate are buckets 0 and 1, so the table
// holds exactly 16 entries and the eviction order is observable.
TEST(FlowTable, EvictsExpiredClosedMidStreamHalfOpenThenHalfClosedButNeverEstablished) {
  FlowTimeouts to;
  to.tcp_syn_ms = 1000;
  to.tcp_closing_ms = 2000;
  FlowTable t(16, to, kSeed);
  ASSERT_EQ(t.stats().capacity, 16u);
  // Keys whose primary bucket is bucket 0 (so their alternate is bucket 1): where each entry
  // lands, and what an insert compares, is then known.
  const std::vector<FlowKey> keys = keys_in_bucket_zero(t, 40);
  auto ins = [&](uint32_t i, FlowState s, uint64_t now) {
    return t.insert(keys[i], t.hash(keys[i]), s, now);
  };
  auto present = [&](uint32_t i, uint64_t now) {
    return t.find(keys[i], t.hash(keys[i]), now) != nullptr;
  };

  // Bucket 0: 8 established. Bucket 1: 2 half-closed (a FIN one way, then the other), 2
  // unconfirmed (TCP mid-stream, UDP unreplied), 2 half-open, 2 closed. Every later insert
  // finds its primary full of live confirmed entries and chooses in the alternate.
  for (uint32_t i = 0; i < 8; ++i) ASSERT_NE(ins(i, FlowState::tcp_established, 0), nullptr);
  ASSERT_NE(ins(8, FlowState::tcp_closing, 0), nullptr);
  ASSERT_NE(ins(9, FlowState::tcp_peer_closing, 0), nullptr);
  ASSERT_NE(ins(10, FlowState::tcp_midstream, 0), nullptr);
  ASSERT_NE(ins(11, FlowState::udp_unreplied, 0), nullptr);
  ASSERT_NE(ins(12, FlowState::tcp_syn, 0), nullptr);
  ASSERT_NE(ins(13, FlowState::tcp_syn, 100), nullptr);
  ASSERT_NE(ins(14, FlowState::tcp_closed, 0), nullptr);
  ASSERT_NE(ins(15, FlowState::tcp_closed, 0), nullptr);
  EXPECT_EQ(t.stats().occupied, 16u);

  // Closed entries go first: FINs both ways, or an RST.
  ASSERT_NE(ins(16, FlowState::tcp_established, 500), nullptr);
  ASSERT_NE(ins(17, FlowState::tcp_established, 500), nullptr);
  EXPECT_FALSE(present(14, 500));
  EXPECT_FALSE(present(15, 500));
  EXPECT_EQ(t.stats().evicted_closed, 2u);

  // Then entries joined mid-stream and never confirmed (an ACK flood's, for one).
  ASSERT_NE(ins(18, FlowState::tcp_established, 600), nullptr);
  ASSERT_NE(ins(19, FlowState::tcp_established, 600), nullptr);
  EXPECT_FALSE(present(10, 600));
  EXPECT_FALSE(present(11, 600));
  EXPECT_EQ(t.stats().evicted_unconfirmed, 2u);

  // Then half-open ones, the one nearest its deadline first.
  ASSERT_NE(ins(20, FlowState::tcp_established, 700), nullptr);
  EXPECT_FALSE(present(12, 700));
  EXPECT_TRUE(present(13, 700));
  ASSERT_NE(ins(21, FlowState::tcp_established, 700), nullptr);
  EXPECT_FALSE(present(13, 700));
  EXPECT_EQ(t.stats().evicted_half_open, 2u);

  // Then, last, connections shutting down: data may still flow one way, and the last FIN
  // needs the entry.
  EXPECT_TRUE(present(8, 700));
  EXPECT_TRUE(present(9, 700));
  ASSERT_NE(ins(22, FlowState::tcp_established, 800), nullptr);
  ASSERT_NE(ins(23, FlowState::tcp_established, 800), nullptr);
  EXPECT_FALSE(present(8, 800));
  EXPECT_FALSE(present(9, 800));
  EXPECT_EQ(t.stats().evicted_half_closed, 2u);

  // Now only established entries: insert fails and every one of them stays.
  EXPECT_EQ(ins(24, FlowState::tcp_syn, 900), nullptr);
  EXPECT_EQ(t.stats().insert_failures, 1u);
  for (uint32_t i : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 16u, 17u, 18u, 19u, 20u, 21u, 22u, 23u}) {
    EXPECT_TRUE(present(i, 900)) << i;
  }

  // An expired entry is reclaimed before anything live.
  FlowTable u(16, to, kSeed);
  for (uint32_t i = 0; i < 15; ++i) {
    ASSERT_NE(u.insert(keys[i], u.hash(keys[i]), FlowState::tcp_established, 0), nullptr);
  }
  ASSERT_NE(u.insert(keys[15], u.hash(keys[15]), FlowState::tcp_syn, 0), nullptr);
  ASSERT_NE(u.insert(keys[30], u.hash(keys[30]), FlowState::tcp_syn, 1500), nullptr);
  EXPECT_EQ(u.stats().reclaimed_expired, 1u);
  EXPECT_EQ(u.stats().evicted_half_open, 0u);

  // A session-affinity record (3 h) goes after closed entries and before unconfirmed ones: a
  // client whose record is gone gets the same Maglev choice over its address back.
  FlowTable v(16, to, kSeed);
  for (uint32_t i = 0; i < 8; ++i) {
    ASSERT_NE(v.insert(keys[i], v.hash(keys[i]), FlowState::tcp_established, 0), nullptr);
  }
  for (uint32_t i = 8; i < 14; ++i) {
    ASSERT_NE(v.insert(keys[i], v.hash(keys[i]), FlowState::tcp_midstream, 0), nullptr);
  }
  ASSERT_NE(v.insert(keys[14], v.hash(keys[14]), FlowState::affinity, 0, 10'800'000), nullptr);
  ASSERT_NE(v.insert(keys[15], v.hash(keys[15]), FlowState::tcp_closed, 0), nullptr);
  ASSERT_NE(v.insert(keys[16], v.hash(keys[16]), FlowState::tcp_established, 10), nullptr);
  EXPECT_EQ(v.stats().evicted_closed, 1u);
  ASSERT_NE(v.insert(keys[17], v.hash(keys[17]), FlowState::tcp_established, 10), nullptr);
  EXPECT_EQ(v.stats().evicted_affinity, 1u);
  EXPECT_EQ(v.stats().evicted_unconfirmed, 0u);
  ASSERT_NE(v.insert(keys[18], v.hash(keys[18]), FlowState::tcp_established, 10), nullptr);
  EXPECT_EQ(v.stats().evicted_unconfirmed, 1u);
}

// An insert given `keep` (a connection's forward entry, placed just before its reply entry)
// neither evicts it nor moves it, even when it is the only way that could go.
TEST(FlowTable, AnInsertKeepsTheEntryItIsToldToKeep) {
  FlowTable t(16, {}, kSeed);
  const std::vector<FlowKey> keys = keys_in_bucket_zero(t, 20);
  for (uint32_t i = 0; i < 15; ++i) {
    ASSERT_NE(t.insert(keys[i], t.hash(keys[i]), FlowState::tcp_established, 0), nullptr);
  }
  FlowEntry* fwd = t.insert(keys[15], t.hash(keys[15]), FlowState::tcp_syn, 0);
  ASSERT_NE(fwd, nullptr);
  const FlowTable::InsertHint hint = t.prefetch_insert(t.hash(keys[16]), 0);
  EXPECT_EQ(t.insert_whole(keys[16], 0, FlowValue{}, t.hash(keys[16]), FlowState::tcp_syn, 0,
                           hint, fwd), nullptr);
  EXPECT_TRUE(t.holds(fwd, keys[15], 0));
  EXPECT_EQ(t.stats().insert_failures, 1u);
  // Without it, the half-open entry is the one to go.
  EXPECT_NE(t.insert_whole(keys[16], 0, FlowValue{}, t.hash(keys[16]), FlowState::tcp_syn, 0,
                           hint), nullptr);
  EXPECT_FALSE(t.holds(fwd, keys[15], 0));
  EXPECT_EQ(t.stats().evicted_half_open, 1u);
}

// insert_whole() writes the entry in one go (streaming stores): the key with the tag given, not
// the key's own, and the value whole; the key is found, the entry placed, evicted and kept like
// any other, in whichever way it lands (free, an evicted entry's, a displaced one's).
TEST(FlowTable, AWholeInsertWritesKeyTagAndValue) {
  FlowTable t(16, {}, kSeed);
  const std::vector<FlowKey> keys = keys_in_bucket_zero(t, 24);
  std::array<uint8_t, 16> addr{};
  for (uint32_t i = 0; i < 20; ++i) {
    FlowKey k = keys[i];
    k.tag = 0x5555;  // not what is stored
    addr[0] = uint8_t(i);
    addr[15] = uint8_t(0xf0 | i);
    const FlowValue v = forward_value(uint8_t(i), 7, uint16_t(8000 + i), uint16_t(40000 + i),
                                      uint16_t(i), addr);
    const uint64_t h = t.hash(k);
    const FlowState st = i < 12 ? FlowState::tcp_established : FlowState::tcp_syn;
    FlowEntry* e = t.insert_whole(k, uint16_t(0x100 + i), v, h, st, 0, t.prefetch_insert(h, 0));
    ASSERT_NE(e, nullptr) << i;
    ASSERT_EQ(t.find(keys[i], h, 1), e) << i;
    EXPECT_EQ(e->key.tag, 0x100 + i);
    EXPECT_TRUE(e->key.same_flow(keys[i]));
    EXPECT_EQ(std::memcmp(&e->value, &v, sizeof v), 0) << i;
    EXPECT_EQ(t.state(e), st);
  }
  // 16 ways for 20 keys: the last ones went in place of earlier half-open entries.
  EXPECT_GT(t.stats().evicted_half_open, 0u);
  for (uint32_t i = 0; i < 12; ++i) EXPECT_NE(t.find(keys[i], t.hash(keys[i]), 1), nullptr);
  // Kept: a whole insert spares the entry it is told to keep.
  FlowEntry* fwd = t.find(keys[19], t.hash(keys[19]), 1);
  ASSERT_NE(fwd, nullptr);
  for (uint32_t i = 20; i < 24; ++i) {
    const uint64_t h = t.hash(keys[i]);
    t.insert_whole(keys[i], 0, FlowValue{}, h, FlowState::tcp_syn, 1, t.prefetch_insert(h, 1), fwd);
    EXPECT_TRUE(t.holds(fwd, keys[19], 1)) << i;
  }
}

// may_hold() answers yes for every live key (in its primary or, overflowed, its alternate),
// no once it is erased or expired, no for keys never inserted, and yes for a key that only
// shares a live entry's bucket and signature: it reads no entry.
TEST(FlowTable, MayHoldSeesEveryLiveKeyAndNoEntrysLine) {
  FlowTable t(16, {}, kSeed);  // two buckets: bucket 1 is every bucket-0 key's alternate
  const std::vector<FlowKey> keys = keys_in_bucket_zero(t, 12);
  std::vector<FlowEntry*> entries;
  for (const FlowKey& k : keys) {
    entries.push_back(t.insert(k, t.hash(k), FlowState::tcp_established, 0));
    ASSERT_NE(entries.back(), nullptr);
  }
  for (const FlowKey& k : keys) EXPECT_TRUE(t.may_hold(t.hash(k), 1));  // 4 in the alternate
  uint32_t yes = 0;
  for (uint32_t i = 1000000; i < 1001000; ++i) yes += t.may_hold(t.hash(key_of(i)), 1);
  EXPECT_LT(yes, 5u);
  t.erase(entries[0]);
  EXPECT_FALSE(t.may_hold(t.hash(keys[0]), 1));
  EXPECT_FALSE(t.may_hold(t.hash(keys[1]), 200'000'000));  // expired (established: 2 h)
  // Another key with keys[1]'s bucket and signature, never inserted: held, as far as it knows.
  const uint64_t h1 = t.hash(keys[1]);
  const auto sig_of = [](uint64_t h) { return (h & 0xff) | (h >> 24 & 0xff00); };
  for (uint32_t i = 2000000;; ++i) {
    const uint64_t h = t.hash(key_of(i));
    if (t.primary_bucket(h) != 0 || sig_of(h) != sig_of(h1)) continue;
    EXPECT_EQ(t.find(key_of(i), h, 1), nullptr);
    EXPECT_TRUE(t.may_hold(h, 1));
    break;
  }
}

// An insert reads the alternate bucket only when its primary has no free or expired way, and,
// once the table is crowded (7/8 full), only when the primary has nothing evictable either:
// below that a half-open entry in the primary is spared while the alternate has room; above it
// the primary's is evicted, the alternate's room unread (one cache miss fewer per SYN).
TEST(FlowTable, ACrowdedTableLooksNoFurtherThanThePrimaryBucket) {
  FlowTable t(16, {}, kSeed);
  const std::vector<FlowKey> keys = keys_in_bucket_zero(t, 16);
  auto ins = [&](uint32_t i, FlowState s) { return t.insert(keys[i], t.hash(keys[i]), s, 0); };
  auto present = [&](uint32_t i) { return t.find(keys[i], t.hash(keys[i]), 1) != nullptr; };
  for (uint32_t i = 0; i < 5; ++i) ASSERT_NE(ins(i, FlowState::tcp_established), nullptr);
  for (uint32_t i = 5; i < 8; ++i) ASSERT_NE(ins(i, FlowState::tcp_syn), nullptr);
  // Bucket 0 is full: 5 established, 3 half-open.

  // Not crowded (8 of 16): the half-open entries stay, the new ones go to the alternate.
  for (uint32_t i = 8; i < 14; ++i) ASSERT_NE(ins(i, FlowState::tcp_established), nullptr);
  for (uint32_t i = 5; i < 8; ++i) EXPECT_TRUE(present(i));
  EXPECT_EQ(t.stats().evicted_half_open, 0u);
  EXPECT_EQ(t.stats().occupied, 14u);

  // Crowded (14 of 16): one of the primary's half-open entries goes, though the alternate has
  // two ways.
  ASSERT_NE(ins(14, FlowState::tcp_syn), nullptr);
  EXPECT_EQ(present(5) + present(6) + present(7), 2);
  EXPECT_TRUE(present(14));
  EXPECT_EQ(t.stats().evicted_half_open, 1u);
  EXPECT_EQ(t.stats().occupied, 14u);
}

// ... unless the primary has at most two ways that are not established connections: those turn
// over with every insert into the bucket, so a handshake placed there would be evicted before
// its answer came. The alternate is read, and its closed entry goes instead.
TEST(FlowTable, ACrowdedTableSparesTheHandshakesOfABucketFullOfEstablishedConnections) {
  FlowTable t(16, {}, kSeed);
  const std::vector<FlowKey> keys = keys_in_bucket_zero(t, 16);
  auto ins = [&](uint32_t i, FlowState s) { return t.insert(keys[i], t.hash(keys[i]), s, 0); };
  auto present = [&](uint32_t i) { return t.find(keys[i], t.hash(keys[i]), 1) != nullptr; };
  for (uint32_t i = 0; i < 6; ++i) ASSERT_NE(ins(i, FlowState::tcp_established), nullptr);
  for (uint32_t i = 6; i < 8; ++i) ASSERT_NE(ins(i, FlowState::tcp_syn), nullptr);
  for (uint32_t i = 8; i < 15; ++i) ASSERT_NE(ins(i, FlowState::tcp_established), nullptr);
  ASSERT_NE(ins(15, FlowState::tcp_closed), nullptr);
  EXPECT_EQ(t.stats().occupied, 16u);  // crowded

  const FlowKey k = keys_in_bucket_zero(t, 1, 1000000)[0];
  ASSERT_NE(t.insert(k, t.hash(k), FlowState::tcp_syn, 0), nullptr);
  EXPECT_TRUE(present(6));
  EXPECT_TRUE(present(7));
  EXPECT_FALSE(present(15));
  EXPECT_EQ(t.stats().evicted_closed, 1u);
  EXPECT_EQ(t.stats().evicted_half_open, 0u);
}

// Unconfirmed entries are evictable, but a table with room elsewhere moves an entry to its other
// bucket rather than evict a live flow: below 7/8 full none is evicted.
TEST(FlowTable, DisplacesRatherThanEvictsWhileThereIsRoom) {
  FlowTable t(1 << 16, {}, kSeed);
  const uint32_t n = uint32_t(t.stats().capacity) * 85 / 100;
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_NE(t.insert(key_of(i), t.hash(key_of(i)), FlowState::tcp_midstream, 0), nullptr);
  }
  EXPECT_GT(t.stats().displaced, 0u);
  EXPECT_EQ(t.stats().evicted_unconfirmed, 0u);
  uint32_t found = 0;
  for (uint32_t i = 0; i < n; ++i) found += t.find(key_of(i), t.hash(key_of(i)), 1) != nullptr;
  EXPECT_EQ(found, n);
}

// prefetch_insert() tells insert_whole() where a key will go. When another insert takes that way in
// between (two new connections of a burst landing in the same bucket), the hint is stale and
// insert_whole() must choose again rather than overwrite the other key.
TEST(FlowTable, AStaleInsertHintIsNotFollowed) {
  FlowTable t(16, {}, kSeed);  // two buckets: every key has both as candidates
  // Two keys with the same primary bucket: both hints name that bucket's first free way.
  const FlowKey a = key_of(1);
  FlowKey b;
  FlowTable::InsertHint ha, hb;
  for (uint32_t n = 2;; ++n) {
    b = key_of(n);
    ha = t.prefetch_insert(t.hash(a), 0);
    hb = t.prefetch_insert(t.hash(b), 0);
    if (hb.bucket == ha.bucket) break;
  }
  ASSERT_EQ(ha.way, hb.way);
  FlowEntry* ea = t.insert_whole(a, 0, FlowValue{}, t.hash(a), FlowState::tcp_syn, 0, ha);
  ASSERT_NE(ea, nullptr);
  ea->value.fwd.backend_port = 1;
  FlowEntry* eb = t.insert_whole(b, 0, FlowValue{}, t.hash(b), FlowState::tcp_syn, 0, hb);
  ASSERT_NE(eb, nullptr);
  EXPECT_NE(eb, ea);
  eb->value.fwd.backend_port = 2;
  EXPECT_EQ(t.find(a, t.hash(a), 1), ea);
  EXPECT_EQ(t.find(b, t.hash(b), 1), eb);
  EXPECT_EQ(t.stats().occupied, 2u);
  EXPECT_EQ(t.stats().evicted_half_open, 0u);
  // A hint that is still true is followed, even where a fresh choice would differ: a's way,
  // erased after the hint was taken, is free again and comes first, but the hint's way is free
  // too.
  const FlowTable::InsertHint hc = t.prefetch_insert(t.hash(a), 1);
  ASSERT_NE(size_t(hc.bucket) * 8 + hc.way, t.index(ea));
  t.erase(ea);
  FlowEntry* again = t.insert_whole(a, 0, FlowValue{}, t.hash(a), FlowState::tcp_syn, 1, hc);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(t.index(again), size_t(hc.bucket) * 8 + hc.way);
}

// A table half full of established connections (never evicted) under a stream of new ones
// (evicted from the oldest): a new connection whose two buckets hold only established entries
// moves one of them to its other bucket, evicting what is evictable there, rather than be
// refused. Until the seventh session it was refused (`flow_table_full`, 0.1-0.3% of new
// connections in magline-bench with half the table established), and a client's retransmitted
// SYN, with the same tuple, again.
TEST(FlowTable, ANewConnectionIsNotRefusedWhileAnEntryNearItsBucketsMayGo) {
  for (const uint32_t established_pct : {50u, 70u}) {
    FlowTable t(1 << 14, {}, kSeed);
    const uint32_t capacity = uint32_t(t.stats().capacity);
    const uint32_t n = capacity * established_pct / 100;
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_NE(t.insert(key_of(i), t.hash(key_of(i)), FlowState::tcp_established, 0), nullptr);
    }
    uint32_t refused = 0;
    for (uint32_t i = n; i < n + 20 * capacity; ++i) {
      refused += t.insert(key_of(i), t.hash(key_of(i)), FlowState::tcp_syn, i) == nullptr;
    }
    SCOPED_TRACE(established_pct);
    EXPECT_EQ(refused, 0u);
    EXPECT_EQ(t.stats().insert_failures, 0u);
    uint32_t found = 0;
    for (uint32_t i = 0; i < n; ++i) found += t.find(key_of(i), t.hash(key_of(i)), 1) != nullptr;
    EXPECT_EQ(found, n);
    std::printf("  %u%% established: %lu moved, %lu half-open evicted\n", established_pct,
                (unsigned long)t.stats().displaced, (unsigned long)t.stats().evicted_half_open);
  }
}

// Two choices plus one step of displacement fill the table almost completely: inserts fail only
// rarely below 90% occupancy and the table still takes entries near 98%.
TEST(FlowTable, FillsToHighOccupancyWithRareFailures) {
  FlowTable t(1 << 16, {}, kSeed);
  const uint32_t capacity = uint32_t(t.stats().capacity);
  uint32_t failed_by_90 = 0;
  for (uint32_t n = 0; n < capacity; ++n) {
    if (t.insert(key_of(n), t.hash(key_of(n)), FlowState::tcp_established, 0) == nullptr &&
        n < capacity * 9 / 10) {
      ++failed_by_90;
    }
  }
  const double occupancy = double(t.stats().occupied) / capacity;
  std::printf("  %u failed inserts below 90%%; %.1f%% occupancy after %u attempts; %lu moved\n",
              failed_by_90, occupancy * 100, capacity, (unsigned long)t.stats().displaced);
  EXPECT_LT(failed_by_90, capacity / 1000);
  EXPECT_GT(occupancy, 0.97);
  EXPECT_EQ(t.stats().evicted_half_open + t.stats().evicted_closed, 0u);
  // Every entry that went in is still found, moved or not.
  uint32_t found = 0;
  for (uint32_t n = 0; n < capacity; ++n) found += t.find(key_of(n), t.hash(key_of(n)), 1) != nullptr;
  EXPECT_EQ(found, t.stats().occupied);
}

TEST(FlowTable, BulkLookupAgreesWithSingleLookups) {
  FlowTable t(4096, {}, kSeed);
  for (uint32_t i = 0; i < 3800; i += 2) {  // dense enough that some entries overflow
    ASSERT_NE(t.insert(key_of(i), t.hash(key_of(i)), FlowState::tcp_established, 0), nullptr);
  }
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 200; ++i) keys.push_back(key_of(i * 19 % 3800));
  std::vector<const FlowKey*> ptrs;
  std::vector<uint64_t> hashes;
  for (const FlowKey& k : keys) {
    ptrs.push_back(&k);
    hashes.push_back(t.hash(k));
  }
  std::vector<FlowEntry*> out(keys.size());
  std::vector<FlowTable::Slot> at(keys.size());
  t.find_bulk(ptrs.data(), hashes.data(), keys.size(), out.data(), at.data(), 5);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(out[i], t.find(keys[i], hashes[i], 5)) << i;
    EXPECT_EQ(out[i] != nullptr, (keys[i].sport % 2) == 0) << i;
    if (out[i] == nullptr) continue;
    // Each hit's slot is its entry's, in its primary bucket or its alternate: a refresh through
    // it moves that entry's state.
    EXPECT_EQ(at[i].state(), FlowState::tcp_established) << i;
    t.refresh(at[i], FlowState::tcp_closing, 5);
    EXPECT_EQ(t.state(out[i]), FlowState::tcp_closing) << i;
    t.refresh(at[i], FlowState::tcp_established, 5);
  }
}

// A random sequence of operations against a plain map that knows each key's deadline. Inserts
// may fail only when the table is dense; what went in must agree with the model exactly.
void run_against_model(size_t capacity, uint32_t key_space, FlowState insert_state,
                       bool dense) {
  FlowTimeouts to;
  to.tcp_syn_ms = 50;
  to.tcp_established_ms = dense ? 1'000'000 : 400;  // dense: entries pile up until full
  to.tcp_closing_ms = 100;
  FlowTable t(capacity, to, kSeed);
  std::map<uint32_t, std::pair<uint64_t, uint32_t>> model;  // key id -> (deadline, backend)
  std::mt19937 rng(3);
  uint64_t now = 1;
  for (int op = 0; op < 200000; ++op) {
    const uint32_t id = rng() % key_space;
    const FlowKey k = key_of(id);
    const uint64_t h = t.hash(k);
    FlowEntry* e = t.find(k, h, now);
    auto it = model.find(id);
    const bool alive = it != model.end() && it->second.first > now;
    ASSERT_EQ(e != nullptr, alive) << "op " << op;
    if (e) {
      ASSERT_EQ(e->value.fwd.backend_port, it->second.second);
    }
    switch (rng() % 4) {
      case 0:
        if (!e) {
          e = t.insert(k, h, insert_state, now);
          if (e) {
            e->value.fwd.backend_port = uint16_t(op);
            model[id] = {now + t.timeout_ms(insert_state), uint16_t(op)};
          }
        }
        break;
      case 1:
        if (e) {
          t.refresh(e, FlowState::tcp_established, now);
          it->second.first = now + to.tcp_established_ms;
        }
        break;
      case 2:
        if (e) {
          t.erase(e);
          model.erase(it);
        }
        break;
      default:
        now += rng() % 3;
        break;
    }
    if (op % 1000 == 0) t.expire(now, 64);
  }
  EXPECT_EQ(t.stats().evicted_half_open + t.stats().evicted_closed, 0u);
  if (dense) {
    EXPECT_GT(t.stats().displaced, 0u);
    EXPECT_GT(t.stats().insert_failures, 0u);
  }
}

TEST(FlowTable, AgreesWithAReferenceModel) {
  run_against_model(1 << 14, 3000, FlowState::tcp_syn, false);
}

TEST(FlowTable, AgreesWithAReferenceModelWhenDenseAndDisplacing) {
  run_against_model(1024, 3000, FlowState::tcp_established, true);
}

TEST(FlowTable, MemoryIsStatedUpFront) {
  EXPECT_EQ(FlowTable::memory_bytes(8), 2 * 64 + 16 * 64u);  // at least two buckets
  EXPECT_EQ(FlowTable::memory_bytes(1 << 20), (1u << 17) * 64 + (1u << 20) * 64u);
}

}  // namespace
}  // namespace magline::dp
