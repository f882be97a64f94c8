#include "dataplane/flow_table.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#if defined(__SSE4_1__)
#include <smmintrin.h>  // and, through it, SSSE3 and SSE2
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace magline::dp {

namespace {

// A power of two (at least two buckets): the alternate bucket is an XOR away.
size_t bucket_count_for(size_t capacity) noexcept {
  const size_t wanted = std::max<size_t>(2, (capacity + FlowTable::kWays - 1) / FlowTable::kWays);
  size_t n = 2;
  while (n < wanted) n *= 2;
  return n;
}

}  // namespace

FlowTable::FlowTable(size_t capacity, const FlowTimeouts& timeouts, uint64_t seed)
    : timeouts_(timeouts),
      seed_(seed),
      bucket_count_(checked_bucket_count(capacity)),
      groups_(bucket_count_) {
  for (size_t i = 0; i < timeout_of_.size(); ++i) {
    timeout_of_[i] = idle_timeout_ms(timeouts_, FlowState(i));
  }
  stats_.capacity = uint64_t(bucket_count_) * kWays;
}

FlowTable::~FlowTable() = default;

uint32_t FlowTable::checked_bucket_count(size_t capacity) {
  const size_t n = bucket_count_for(capacity);
  if (n > kMaxBuckets) throw std::length_error("flow table capacity above 2^31 entries");
  return uint32_t(n);
}

size_t FlowTable::memory_bytes(size_t capacity) noexcept {
  const size_t buckets = bucket_count_for(capacity);
  return buckets * sizeof(Group);
}

namespace detail {

unsigned sig_match_scalar(const uint16_t* sigs, uint16_t sig) noexcept {
  unsigned match = 0;
  for (unsigned w = 0; w < FlowTable::kWays; ++w) match |= unsigned(sigs[w] == sig) << w;
  return match;
}

// One compare of all eight signatures where SSE2 is there (every x86-64), instead of eight.
unsigned sig_match(const uint16_t* sigs, uint16_t sig) noexcept {
#if defined(__SSE2__)
  static_assert(FlowTable::kWays == 8);
  const __m128i eq = _mm_cmpeq_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sigs)),
                                     _mm_set1_epi16(short(sig)));
  return unsigned(_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())));
#else
  return sig_match_scalar(sigs, sig);
#endif
}

}  // namespace detail

FlowEntry* FlowTable::find_in(uint32_t b, const FlowKey& key, uint16_t sig,
                              uint64_t now_ms) noexcept {
  const Bucket& bk = groups_[b].bucket;
  unsigned match = detail::sig_match(bk.sig, sig);
  while (match) {
    const unsigned w = unsigned(__builtin_ctz(match));
    match &= match - 1;
    if (bk.state[w] == FlowState::free || !alive(bk.deadline[w], now_ms)) continue;
    FlowEntry& e = groups_[b].way[w];
    if (e.key.same_flow(key)) return &e;
  }
  return nullptr;
}

FlowEntry* FlowTable::find(const FlowKey& key, uint64_t hash, uint64_t now_ms) noexcept {
  const Slots s = slots_of(hash);
  if (FlowEntry* e = find_in(s.primary, key, s.sig, now_ms)) return e;
  if (groups_[s.primary].bucket.overflow == 0) return nullptr;
  return find_in(s.alternate, key, s.sig, now_ms);
}

bool FlowTable::live_signature(uint32_t b, uint16_t sig, uint64_t now_ms) const noexcept {
  const Bucket& bk = groups_[b].bucket;
  for (unsigned match = detail::sig_match(bk.sig, sig); match != 0; match &= match - 1) {
    const unsigned w = unsigned(__builtin_ctz(match));
    if (bk.state[w] != FlowState::free && alive(bk.deadline[w], now_ms)) return true;
  }
  return false;
}

bool FlowTable::may_hold(uint64_t hash, uint64_t now_ms) const noexcept {
  const Slots s = slots_of(hash);
  if (live_signature(s.primary, s.sig, now_ms)) return true;
  return groups_[s.primary].bucket.overflow != 0 && live_signature(s.alternate, s.sig, now_ms);
}

void FlowTable::find_bulk(const FlowKey* const* keys, const uint64_t* hashes, size_t n,
                          FlowEntry** out, Slot* at, uint64_t now_ms) noexcept {
  constexpr size_t kChunk = 64;
  for (size_t base = 0; base < n; base += kChunk) {
    const size_t m = std::min(kChunk, n - base);
    uint32_t primary[kChunk];
    uint16_t sigs[kChunk];
    Group* group[kChunk];  // each frame's primary group, its address taken once
    unsigned masks[kChunk];
    for (size_t i = 0; i < m; ++i) {
      primary[i] = primary_of(hashes[base + i]);
      sigs[i] = signature_of(hashes[base + i]);
      group[i] = &groups_[primary[i]];
      __builtin_prefetch(&group[i]->bucket);
    }
    for (size_t i = 0; i < m; ++i) {
      const Bucket& bk = group[i]->bucket;
      const unsigned match = detail::sig_match(bk.sig, sigs[i]);  // live or not: checked below
      masks[i] = match;
      // A miss in an overflowed primary goes on to the alternate: start loading it now (its
      // number is worked out only then: few buckets overflow).
      if (bk.overflow != 0) __builtin_prefetch(&groups_[other_bucket(primary[i], sigs[i])].bucket);
      if (match) __builtin_prefetch(&group[i]->way[unsigned(__builtin_ctz(match))]);
    }
    for (size_t i = 0; i < m; ++i) {
      const FlowKey& key = *keys[base + i];
      Group& g = *group[i];
      FlowEntry* hit = nullptr;
      for (unsigned match = masks[i]; match != 0; match &= match - 1) {
        const unsigned w = unsigned(__builtin_ctz(match));
        if (g.bucket.state[w] == FlowState::free || !alive(g.bucket.deadline[w], now_ms)) continue;
        if (g.way[w].key.same_flow(key)) {
          hit = &g.way[w];
          at[base + i] = {&g.bucket.state[w], &g.bucket.deadline[w]};
          break;
        }
      }
      if (!hit && g.bucket.overflow != 0) {
        hit = find_in(other_bucket(primary[i], sigs[i]), key, sigs[i], now_ms);
        if (hit) at[base + i] = slot(hit);
      }
      out[base + i] = hit;
    }
  }
}

void FlowTable::free_way(uint32_t b, unsigned w) noexcept {
  Bucket& bk = groups_[b].bucket;
  if (bk.alt_mask & (1u << w)) {
    uint16_t& overflow = groups_[other_bucket(b, bk.sig[w])].bucket.overflow;
    if (overflow != UINT16_MAX) --overflow;  // a saturated count stays: lookups stay correct
    bk.alt_mask &= uint8_t(~(1u << w));
  }
  bk.state[w] = FlowState::free;
  --stats_.occupied;
  ++generation_;
}

namespace {

// The 64 bytes of an entry, key (with `tag`) and value, written with streaming stores: four of
// 16 bytes, made in registers, that fill one write-combining buffer and go to memory as a
// line, without the line being read first.
void stream_entry(FlowEntry& e, const FlowKey& key, uint16_t tag, const FlowValue& v) noexcept {
  static_assert(sizeof(FlowEntry) == 64 && offsetof(FlowEntry, value) == 40 &&
                offsetof(FlowKey, tag) == 38);
#if defined(__SSE2__)
  uint64_t tail, head;
  std::memcpy(&tail, &key.sport, 8);  // ports, protocol, family, tag
  constexpr uint64_t kNoTag = ~(uint64_t(0xffff) << 48);
  tail = (tail & kNoTag) | uint64_t(tag) << 48;
  std::memcpy(&head, &v, 8);
  const auto* k = reinterpret_cast<const __m128i*>(&key);
  auto* d = reinterpret_cast<__m128i*>(&e);
  _mm_stream_si128(d, _mm_loadu_si128(k));
  _mm_stream_si128(d + 1, _mm_loadu_si128(k + 1));
  _mm_stream_si128(d + 2, _mm_set_epi64x(int64_t(head), int64_t(tail)));
  _mm_stream_si128(d + 3, _mm_loadu_si128(reinterpret_cast<const __m128i*>(
                              reinterpret_cast<const uint8_t*>(&v) + 8)));
  static_assert(std::endian::native == std::endian::little);  // x86
#else
  e.key = key;
  e.key.tag = tag;
  copy_value(e.value, v);
#endif
}

}  // namespace

void FlowTable::place(uint32_t b, unsigned w, const Slots& s, const FlowKey& key,
                      FlowState state, uint32_t deadline, const Whole* whole) noexcept {
  Bucket& bk = groups_[b].bucket;
  bk.sig[w] = s.sig;
  bk.state[w] = state;
  bk.deadline[w] = deadline;
  if (b != s.primary) {
    uint16_t& overflow = groups_[s.primary].bucket.overflow;
    if (overflow != UINT16_MAX) ++overflow;
    bk.alt_mask |= uint8_t(1u << w);
  }
  FlowEntry& e = groups_[b].way[w];
  if (whole != nullptr) {
    stream_entry(e, key, whole->tag, *whole->value);
  } else {
    e.key = key;
    e.value = FlowValue{};  // all zero: a forward entry with no flags
  }
  ++stats_.occupied;
  ++stats_.inserts;
  ++generation_;
}

namespace {

// Where a way ranks for insert() while its entry is live, by FlowState (values 0-15: one
// pshufb table).
alignas(16) constexpr uint8_t kRankOfLive[16] = {
    1,  // free: kFree
    6,  // tcp_syn: kHalfOpen
    9,  // tcp_established: kNone (never evicted)
    7,  // tcp_closing: kHalfClosed
    8,  // udp: kAnswered (a backend answers a flood's datagrams too: evicted last, not never)
    8,  // other: kAnswered (SCTP: an INIT-ACK answers a flood's INITs too)
    5,  // tcp_midstream: kUnconfirmed
    5,  // udp_unreplied: kUnconfirmed
    7,  // tcp_peer_closing: kHalfClosed
    3,  // tcp_closed: kClosed
    4,  // affinity: kAffinity (Maglev over the client's address gives the same choice back)
    5,  // other_unreplied: kUnconfirmed
    6,  // tcp_syn_answered: kHalfOpen
    8,  // tcp_one_way: kAnswered (idle ones first; Maglev gives an evicted one the same backend)
    9, 9,  // no such states
};
static_assert(int(FlowState::tcp_one_way) < 16);
// Live ranks from kRankTimed on go nearest their deadline first.
constexpr uint32_t kRankFree = 1, kRankExpired = 2, kRankTimed = 3;
static_assert(kMaxFlowTimeoutMs < (1u << detail::kScoreRankShift));

}  // namespace

namespace detail {

WayScore best_way_scalar(const FlowState* states, const uint32_t* deadlines,
                         uint32_t now) noexcept {
  WayScore best{UINT32_MAX, 0};
  for (unsigned w = 0; w < FlowTable::kWays; ++w) {
    const unsigned st = unsigned(states[w]) & 15;
    const uint32_t left = deadlines[w] - now;
    const bool live = left - 1u < kMaxFlowTimeoutMs;  // as FlowTable::alive()
    uint32_t r = live ? kRankOfLive[st] : kRankExpired;
    r = st == 0 ? kRankFree : r;
    const uint32_t score = r << kScoreRankShift | (r >= kRankTimed ? left : 0);
    if (score < best.score) best = {score, w};
  }
  return best;
}

// The same eight ways at once: ranks by table lookup (pshufb), scores as 32-bit lanes, the
// smallest found by two folds and its first lane by a compare. Inlined into choose().
[[gnu::always_inline]] inline WayScore rank_ways(const FlowState* states,
                                                 const uint32_t* deadlines,
                                                 uint32_t now) noexcept {
  static_assert(FlowTable::kWays == 8 && sizeof(FlowState) == 1 && int(FlowState::free) == 0);
  // A free way wins outright (lowest first): in a table that is not full, nearly every bucket
  // has one, found with a zero-byte test over the eight states.
  uint64_t st;
  std::memcpy(&st, states, sizeof st);
  const uint64_t zero = (st - 0x0101010101010101ull) & ~st & 0x8080808080808080ull;
  if (zero != 0) return {kRankFree << kScoreRankShift, unsigned(__builtin_ctzll(zero)) / 8};
#if defined(__SSE4_1__) && defined(__SSSE3__)
  const __m128i st8 = _mm_and_si128(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(states)),
                                    _mm_set1_epi8(15));
  const __m128i rank8 = _mm_shuffle_epi8(
      _mm_load_si128(reinterpret_cast<const __m128i*>(kRankOfLive)), st8);
  auto score4 = [now](__m128i st, __m128i rank_live, const uint32_t* d) {
    const __m128i left = _mm_sub_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d)),
                                       _mm_set1_epi32(int(now)));
    const __m128i lm1 = _mm_sub_epi32(left, _mm_set1_epi32(1));
    // live: left - 1 < kMaxFlowTimeoutMs, unsigned
    const __m128i live =
        _mm_cmpeq_epi32(_mm_min_epu32(lm1, _mm_set1_epi32(int(kMaxFlowTimeoutMs - 1))), lm1);
    __m128i r = _mm_blendv_epi8(_mm_set1_epi32(int(kRankExpired)), rank_live, live);
    r = _mm_blendv_epi8(r, _mm_set1_epi32(int(kRankFree)),
                        _mm_cmpeq_epi32(st, _mm_setzero_si128()));
    const __m128i by_time = _mm_cmpgt_epi32(r, _mm_set1_epi32(int(kRankTimed - 1)));
    return _mm_or_si128(_mm_slli_epi32(r, int(kScoreRankShift)), _mm_and_si128(left, by_time));
  };
  const __m128i lo = score4(_mm_cvtepu8_epi32(st8), _mm_cvtepu8_epi32(rank8), deadlines);
  const __m128i hi = score4(_mm_cvtepu8_epi32(_mm_srli_si128(st8, 4)),
                            _mm_cvtepu8_epi32(_mm_srli_si128(rank8, 4)), deadlines + 4);
  __m128i m = _mm_min_epu32(lo, hi);
  m = _mm_min_epu32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_min_epu32(m, _mm_shuffle_epi32(m, 0xb1));
  const unsigned eq = unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(lo, m)))) |
                      unsigned(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(hi, m)))) << 4;
  return {uint32_t(_mm_cvtsi128_si32(m)), unsigned(__builtin_ctz(eq))};
#else
  return best_way_scalar(states, deadlines, now);
#endif
}

WayScore best_way(const FlowState* states, const uint32_t* deadlines, uint32_t now) noexcept {
  return rank_ways(states, deadlines, now);
}

}  // namespace detail

unsigned FlowTable::established_ways(const Bucket& bk) noexcept {
  static_assert(kWays == 8 && sizeof(FlowState) == 1);
  uint64_t st;
  std::memcpy(&st, bk.state, sizeof st);
  const uint64_t x = st ^ (0x0101010101010101ull * uint8_t(FlowState::tcp_established));
  const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
  return unsigned(__builtin_popcountll(~(((x & low7) + low7) | x | low7)));  // zero bytes
}

detail::WayScore FlowTable::score_ways(uint32_t b, uint32_t now,
                                       const Where* keep) const noexcept {
  const Bucket& bk = groups_[b].bucket;
  if (keep == nullptr || keep->bucket != b) return detail::rank_ways(bk.state, bk.deadline, now);
  FlowState kept[kWays];
  std::memcpy(kept, bk.state, sizeof kept);
  kept[keep->way] = FlowState::tcp_established;  // ranks as never evicted
  return detail::rank_ways(kept, bk.deadline, now);
}

// Ranks the ways of the primary bucket, then, unless it has a good enough way, of the
// alternate: lower is a better place; among live entries of one rank, ties go to the way
// nearest its deadline, then to the primary bucket, then to the lowest way. So in a crowded
// table an insert may evict from its primary what the alternate would have spared (a half-open
// entry where the alternate has a closed one or even room): the price of one cache miss fewer
// per new connection when it matters most, under a flood. A primary whose best is a half-closed
// entry or an answered flow has the alternate read all the same: a flood's entry there goes
// first.
FlowTable::Choice FlowTable::choose(const Slots& s, const FlowKey* key, uint64_t now_ms,
                                    const Where* keep) const noexcept {
  static_assert(kFree == kRankFree && kExpired == kRankExpired && kClosed == kRankTimed &&
                kAffinity == 4 && kUnconfirmed == 5 && kHalfOpen == 6 && kHalfClosed == 7 &&
                kAnswered == 8 && kNone == 9);
  const uint32_t candidates[2] = {s.primary, s.alternate};
  const uint32_t now = uint32_t(now_ms);
  Choice best;
  uint32_t best_score = UINT32_MAX;
  for (unsigned i = 0; i < 2; ++i) {
    const Bucket& bk = groups_[candidates[i]].bucket;
    const detail::WayScore ws = score_ways(candidates[i], now, keep);
    if (i == 0 || ws.score < best_score) {
      best_score = ws.score;
      best = {Rank(ws.score >> detail::kScoreRankShift), candidates[i], ws.way};
    }
    if (key != nullptr) {
      // An expired copy of the same key (or, against the contract, a live one): reuse its way.
      for (unsigned match = detail::sig_match(bk.sig, s.sig); match != 0; match &= match - 1) {
        const unsigned w = unsigned(__builtin_ctz(match));
        if (bk.state[w] != FlowState::free &&
            groups_[candidates[i]].way[w].key.same_flow(*key)) {
          return {kSameKey, candidates[i], w};
        }
      }
    }
    // Enough in the primary: a free or expired way, or, in a crowded table, any way that may
    // be evicted. The alternate bucket is another cache miss (about a third of a new
    // connection's time, measured, when read for every insert of a full table), and a key
    // placed there makes every later miss on the primary read it too. Except a half-open
    // entry in a primary nearly full of established connections: there the few ways left
    // turn over with every insert, and a handshake would lose its entry before the answer
    // came (1% of new connections with half the table established, measured).
    if (i == 0 && best.rank == kHalfOpen && crowded()) {
      if (established_ways(bk) < kWays - 2) break;
    } else if (best.rank <= (crowded() ? kHalfOpen : kExpired)) {
      break;
    }
  }
  return best;
}

FlowTable::InsertHint FlowTable::prefetch_insert(uint64_t hash, uint64_t now_ms) const noexcept {
  const Slots s = slots_of(hash);
  // A lookup of the key before the insert (a full-NAT source port's check) reads it.
  if (groups_[s.primary].bucket.overflow != 0) __builtin_prefetch(&groups_[s.alternate].bucket);
  const Choice c = choose(s, nullptr, now_ms);
  InsertHint h;
  h.hash = hash;
  if (c.rank == kNone) return h;
  const Bucket& bk = groups_[c.bucket].bucket;
  if (bk.state[c.way] != FlowState::free && (bk.alt_mask & (1u << c.way))) {
    __builtin_prefetch(&groups_[other_bucket(c.bucket, bk.sig[c.way])].bucket, 1);
  }
  h.bucket = c.bucket;
  h.way = uint8_t(c.way);
  h.rank = uint8_t(c.rank);
  h.sig = bk.sig[c.way];
  h.state = bk.state[c.way];
  h.deadline = bk.deadline[c.way];
  return h;
}

FlowEntry* FlowTable::insert(const FlowKey& key, uint64_t hash, FlowState state,
                             uint64_t now_ms, uint32_t timeout_ms, const InsertHint* hint,
                             const Where* keep, const Whole* whole) noexcept {
  inserted_[hash >> 62] |= uint64_t(1) << (hash >> 56 & 63);  // even if it fails: harmless
  const uint32_t deadline = uint32_t(now_ms + timeout_ms);
  const Slots s = slots_of(hash);
  const uint32_t candidates[2] = {s.primary, s.alternate};
  Choice c;
  if (hint != nullptr && hint->hash == hash && hint->rank < kNone &&
      groups_[hint->bucket].bucket.state[hint->way] == hint->state &&
      groups_[hint->bucket].bucket.sig[hint->way] == hint->sig &&
      (hint->state == FlowState::free ||
       groups_[hint->bucket].bucket.deadline[hint->way] == hint->deadline) &&
      (keep == nullptr || keep->bucket != hint->bucket || keep->way != hint->way)) {
    c = {Rank(hint->rank), hint->bucket, hint->way};
  } else {
    c = choose(s, &key, now_ms, keep);
  }
  const Rank best = c.rank;
  const uint32_t best_b = c.bucket;
  const unsigned best_w = c.way;

  // No free, expired or closed way in either bucket. Move a live entry to its other bucket if
  // that has room (one step of cuckoo displacement), so that a table with free ways elsewhere
  // neither refuses the connection nor evicts a live one. It reads up to 16 more buckets, so
  // when the table is nearly full (a flood's entries, most likely) and a live entry may go, it
  // is evicted at once.
  if (best == kNone || (best > kClosed && !crowded())) {
    for (uint32_t b : candidates) {
      const int w = move_one_out(b, now_ms, keep);
      if (w >= 0) {
        place(b, unsigned(w), s, key, state, deadline, whole);
        return &groups_[b].way[unsigned(w)];
      }
    }
    if (best == kNone) {
      // Both buckets hold only established connections, and none has room in its other
      // bucket: one of them moves there all the same, in place of what may be evicted there.
      const Where w = evict_one_out(s.primary, s.alternate, now_ms, keep);
      if (w.bucket == UINT32_MAX) {
        ++stats_.insert_failures;
        return nullptr;
      }
      place(w.bucket, w.way, s, key, state, deadline, whole);
      return &groups_[w.bucket].way[w.way];
    }
  }
  count_eviction(best);
  if (best != kFree) free_way(best_b, best_w);
  place(best_b, best_w, s, key, state, deadline, whole);
  return &groups_[best_b].way[best_w];
}

void FlowTable::count_eviction(Rank r) noexcept {
  switch (r) {
    case kExpired: ++stats_.reclaimed_expired; break;
    case kHalfOpen: ++stats_.evicted_half_open; break;
    case kClosed: ++stats_.evicted_closed; break;
    case kAffinity: ++stats_.evicted_affinity; break;
    case kHalfClosed: ++stats_.evicted_half_closed; break;
    case kAnswered: ++stats_.evicted_answered; break;
    case kUnconfirmed: ++stats_.evicted_unconfirmed; break;
    default: break;
  }
}

// Moves the live entry at (b, w) to the free way (to, v) of its other bucket, keeping its key,
// state, deadline and value.
void FlowTable::move(uint32_t b, unsigned w, uint32_t to, unsigned v) noexcept {
  Bucket& from = groups_[b].bucket;
  FlowEntry& e = groups_[b].way[w];
  const uint16_t sig = from.sig[w];
  const uint32_t primary = (from.alt_mask & (1u << w)) ? to : b;
  const Slots s{primary, other_bucket(primary, sig), sig};
  const FlowState state = from.state[w];
  const uint32_t deadline = from.deadline[w];
  const FlowValue value = e.value;
  free_way(b, w);
  place(to, v, s, e.key, state, deadline);
  --stats_.inserts;  // a move, not an insert
  groups_[to].way[v].value = value;
  ++stats_.displaced;
}

FlowTable::Where FlowTable::evict_one_out(uint32_t b0, uint32_t b1, uint64_t now_ms,
                                          const Where* keep) noexcept {
  const uint32_t now = uint32_t(now_ms);
  uint32_t best_score = UINT32_MAX;
  Where from{UINT32_MAX, 0}, to{UINT32_MAX, 0};
  for (uint32_t b : {b0, b1}) {
    const Bucket& bk = groups_[b].bucket;
    for (unsigned w = 0; w < kWays; ++w) {
      if (keep != nullptr && keep->bucket == b && keep->way == w) continue;
      const uint32_t other = other_bucket(b, bk.sig[w]);
      if (other == b0 || other == b1) continue;  // as full
      const detail::WayScore ws = score_ways(other, now, keep);
      if (ws.score < best_score) {
        best_score = ws.score;
        from = {b, w};
        to = {other, ws.way};
      }
    }
  }
  const Rank r = Rank(best_score >> detail::kScoreRankShift);
  if (to.bucket == UINT32_MAX || r >= kNone) return {UINT32_MAX, 0};
  count_eviction(r);
  if (r != kFree) free_way(to.bucket, to.way);
  move(from.bucket, from.way, to.bucket, to.way);
  return from;
}

int FlowTable::move_one_out(uint32_t b, uint64_t now_ms, const Where* keep) noexcept {
  const Bucket& from = groups_[b].bucket;
  for (unsigned w = 0; w < kWays; ++w) {
    if (keep != nullptr && keep->bucket == b && keep->way == w) continue;
    const uint32_t other = other_bucket(b, from.sig[w]);
    const Bucket& to = groups_[other].bucket;
    for (unsigned v = 0; v < kWays; ++v) {
      if (to.state[v] != FlowState::free && alive(to.deadline[v], now_ms)) continue;
      if (to.state[v] != FlowState::free) {
        free_way(other, v);
        ++stats_.reclaimed_expired;
      }
      move(b, w, other, v);
      return int(w);
    }
  }
  return -1;
}

uint32_t FlowTable::remaining_ms(const FlowEntry* e, uint64_t now_ms) const noexcept {
  const Where at = locate(e);
  const uint32_t deadline = groups_[at.bucket].bucket.deadline[at.way];
  return alive(deadline, now_ms) ? deadline - uint32_t(now_ms) : 0;
}

void FlowTable::erase(FlowEntry* e) noexcept {
  const Where at = locate(e);
  if (groups_[at.bucket].bucket.state[at.way] == FlowState::free) return;
  free_way(at.bucket, at.way);
  ++stats_.erased;
}

size_t FlowTable::expire(uint64_t now_ms, size_t buckets) noexcept {
  size_t freed = 0;
  buckets = std::min<size_t>(buckets, bucket_count_);
  // The buckets are 576 bytes apart and seldom in cache: start loading them all first, so that
  // their misses overlap (an idle poll that waits for them one by one keeps the next frames
  // waiting: about 13,000 cycles for 64 buckets, against 1,000 this way).
  for (size_t k = 0; k < std::min<size_t>(buckets, 64); ++k) {
    __builtin_prefetch(&groups_[(expire_cursor_ + k) & (bucket_count_ - 1)].bucket);
  }
  for (size_t k = 0; k < buckets; ++k) {
    const uint32_t b = expire_cursor_;
    expire_cursor_ = b + 1 == bucket_count_ ? 0 : b + 1;
    const Bucket& bk = groups_[b].bucket;
    for (unsigned w = 0; w < kWays; ++w) {
      if (bk.state[w] != FlowState::free && !alive(bk.deadline[w], now_ms)) {
        free_way(b, w);
        ++freed;
      }
    }
  }
  stats_.reclaimed_expired += freed;
  return freed;
}

}  // namespace magline::dp
