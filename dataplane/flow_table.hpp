// The per-worker connection table: flow key -> the backend a connection was given.
//
// Single writer: one worker owns a table and is the only thread to touch it; nothing here is
// atomic or locked. Capacity is fixed at construction; no allocation afterwards. Per-packet
// calls are noexcept.
//
// Layout (after rte_hash and VPP's lb flow table): each key has two candidate buckets (the second
// derived from the first and the signature, so entries move without their key being read); a
// bucket is one 64-byte cache line describing 8 ways (a 16-bit signature, a state and an expiry
// deadline per way), and each way has one 64-byte entry holding the full key and the value,
// stored right after its bucket. A hit touches two cache lines: the bucket and the entry. An
// entry goes to its primary bucket when there is room and to the alternate otherwise; the
// primary counts such overflows, so a lookup visits the alternate only when the primary has
// overflowed.
//
// Expiry is by timestamp: a way whose deadline has passed is free for reuse, and expire()
// reclaims such ways incrementally (bounded work per call) so the occupancy figure stays true.
// Insertion takes a free or expired way first, then evicts a closed entry (FINs both ways, or
// an RST: the connection is over), the one nearest its deadline. Failing that, one live entry
// of either bucket moves to its own other bucket if that has room (one step of cuckoo
// displacement; bounded work). Failing that, it evicts, nearest deadline first, a
// session-affinity record (soft state: Maglev over the client's address gives the same
// backend back), then an unconfirmed entry (below), then a half-open one (SYN seen, no ACK
// yet: a handshake in progress, whose full-NAT source port would be lost), then a half-closed
// one (one direction's FIN seen: data may still flow the other way, and the last FIN needs the
// entry), then, last, an answered UDP or SCTP flow (a backend answers a flood's too) or a
// one-way TCP connection (L2 DSR: a made-up client's SYN and ACK look like one). In a
// table 7/8 full or more ("crowded": a flood's entries, most likely) these go before
// displacement is tried, and an insert looks no further than its primary bucket when that has
// a closed, affinity, unconfirmed or half-open way (the alternate is a cache miss more per new
// connection).
// Failing all that, insert fails and the caller forwards statelessly with Maglev (Maglev paper,
// section 3.3): traffic never stops because the table is full, and established TCP
// connections are never evicted.
//
// Entries nobody has answered (unconfirmed: tcp_midstream, udp_unreplied, other_unreplied, see
// flow_state.hpp) are evictable, so that a flood of made-up tuples cannot fill the table with
// entries nothing may take over. Unconfirmed entries time out like confirmed ones; when one is
// evicted, the flow's next frame opens it again with the same Maglev choice as long as the
// backend set has not changed.
//
// The states and their transitions are flow_state.hpp's; the order in which the table evicts
// them (above, and the ranks of detail::best_way) is this table's policy and stays here.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/big_array.hpp"
#include "dataplane/flow_key.hpp"
#include "dataplane/flow_state.hpp"

namespace magline::dp {

// What a connection keeps: 24 bytes, so that an entry is exactly one cache line. An entry is
// either for a connection's original direction (client -> frontend) or for its replies
// (backend -> Magline); `flags` (first in both, so either view may read it) says which.
inline constexpr uint8_t kFlowReply = 0x01;     // the entry is a ReplyFlow
inline constexpr uint8_t kFlowModeMask = 0x0e;  // ForwardMode << 1
inline constexpr uint8_t kFlowAffinity = 0x10;  // a session-affinity record, not a connection
inline constexpr uint8_t kFlowSynProxy = 0x20;  // a full-NAT connection the SYN proxy opened
inline constexpr uint8_t kFlowProxyRecord = 0x40;  // a ProxyFlow, not a connection's direction
inline constexpr uint8_t kFlowOneEntry = 0x80;  // a DNAT connection without a reply entry: its
                                                // replies are translated from the backend alone

// Original direction: where the connection goes, by address rather than by any table index, so
// a new service snapshot never strands it.
struct ForwardFlow {
  uint8_t flags;
  uint8_t snat_addr;        // full-NAT: index of the source address on the egress port
  uint16_t backend_port;
  uint16_t snat_port;       // full-NAT source port
  uint16_t backend_hint;    // the backend's index in its service when last confirmed
  std::array<uint8_t, 16> backend_addr;  // family as in the key
};

// Reply direction: what the client expects to see and where to send it.
struct ReplyFlow {
  uint8_t flags;
  uint8_t reserved;
  uint16_t client_port;     // full-NAT: the client's port (DNAT: it is in the key)
  uint16_t frontend;        // FrontendRegistry id: the address and port the client used
  uint16_t last_hop;        // LastHops id: the port and MAC the connection came from
  std::array<uint8_t, 16> client_addr;  // full-NAT: the client's address
};

// A connection the SYN proxy opened (syn_proxy.hpp) keeps a third entry, under its forward key
// with protocol kProxyProto: how its sequence numbers, timestamps and windows translate
// between the client's view (the handshake Magline answered) and the backend's.
inline constexpr uint8_t kProxyProto = 254;  // RFC 3692 experimental: in no frontend's key
struct ProxyFlow {
  uint8_t flags;           // kFlowProxyRecord
  uint8_t client_options;  // the client's SYN: window scale (low 4 bits, 15: none), SACK
                           // permitted 0x10, timestamps 0x20, cookie MSS index << 6
  uint8_t backend_wscale;  // the backend's window scale, kNoWscale (0xff) when it gave none
  uint8_t established;     // 0: Magline's SYN went to the backend, its SYN-ACK is awaited
  uint32_t cookie;         // the client's view of the backend's ISN: Magline's cookie
  uint32_t client_isn;
  uint32_t seq_delta;      // backend ISN - cookie. Until established: the client's last TSval
  uint32_t ts_delta;       // backend TSval - Magline's TSval. Until established: Magline's TSval
  uint16_t client_window;  // the window field of the client's last segment, until established
  uint16_t held;           // until established: 1 + the slot of the client's first data
                           // segment, held for the backend (0: none)
};

union FlowValue {
  ForwardFlow fwd;
  ReplyFlow reply;
  ProxyFlow proxy;
};
static_assert(sizeof(FlowValue) == 24);

// A forward or reply entry's value made in registers: its first 8 bytes (the flags and the
// 16-bit fields) as one word, then its address. Built field by field on the stack and copied
// into the table (as 16 + 8 bytes), the copy's first load spans the narrow stores and waits for
// them to reach the cache: a new connection paid that stall twice. Copy such a value with
// copy_value(), which reads it as it was written.
inline FlowValue flow_value(uint8_t flags, uint8_t b1, uint16_t h2, uint16_t h4, uint16_t h6,
                            const std::array<uint8_t, 16>& addr) noexcept {
  static_assert(offsetof(ForwardFlow, backend_addr) == 8 && offsetof(ReplyFlow, client_addr) == 8);
  const uint64_t head =
      std::endian::native == std::endian::little
          ? uint64_t(flags) | uint64_t(b1) << 8 | uint64_t(h2) << 16 | uint64_t(h4) << 32 |
                uint64_t(h6) << 48
          : uint64_t(flags) << 56 | uint64_t(b1) << 48 | uint64_t(h2) << 32 | uint64_t(h4) << 16 |
                uint64_t(h6);
  FlowValue v;
  std::memcpy(&v, &head, sizeof head);
  std::memcpy(reinterpret_cast<uint8_t*>(&v) + 8, addr.data(), addr.size());
  return v;
}

// ForwardFlow: flags, snat_addr, backend_port, snat_port, backend_hint, backend_addr.
inline FlowValue forward_value(uint8_t flags, uint8_t snat_addr, uint16_t backend_port,
                               uint16_t snat_port, uint16_t backend_hint,
                               const std::array<uint8_t, 16>& backend_addr) noexcept {
  static_assert(offsetof(ForwardFlow, backend_port) == 2 && offsetof(ForwardFlow, snat_port) == 4 &&
                offsetof(ForwardFlow, backend_hint) == 6);
  return flow_value(flags, snat_addr, backend_port, snat_port, backend_hint, backend_addr);
}

// ReplyFlow: flags, client_port, frontend, last_hop, client_addr.
inline FlowValue reply_value(uint8_t flags, uint16_t client_port, uint16_t frontend,
                             uint16_t last_hop,
                             const std::array<uint8_t, 16>& client_addr) noexcept {
  static_assert(offsetof(ReplyFlow, client_port) == 2 && offsetof(ReplyFlow, frontend) == 4 &&
                offsetof(ReplyFlow, last_hop) == 6);
  return flow_value(flags, 0, client_port, frontend, last_hop, client_addr);
}

// Copies a value made by flow_value() as it was made: 8 bytes, then 16.
inline void copy_value(FlowValue& to, const FlowValue& from) noexcept {
  auto* d = reinterpret_cast<uint8_t*>(&to);
  const auto* s = reinterpret_cast<const uint8_t*>(&from);
  std::memcpy(d, s, 8);
  std::memcpy(d + 8, s + 8, 16);
}

struct alignas(64) FlowEntry {
  FlowKey key;
  FlowValue value;
};
static_assert(sizeof(FlowEntry) == 64);

struct FlowTableStats {
  uint64_t capacity = 0;           // ways
  uint64_t occupied = 0;           // ways in use, including expired ones not yet reclaimed
  uint64_t inserts = 0;
  uint64_t insert_failures = 0;    // both buckets full of non-evictable entries
  uint64_t reclaimed_expired = 0;  // expired ways reused by insert or freed by expire()
  uint64_t evicted_half_open = 0;
  uint64_t evicted_closed = 0;       // closed (FINs both ways, or an RST)
  uint64_t evicted_affinity = 0;     // session-affinity records
  uint64_t evicted_half_closed = 0;  // shutting down: one way's FIN seen
  uint64_t evicted_answered = 0;     // answered UDP and SCTP flows, one-way (L2 DSR) TCP ones:
                                     // nothing Magline sees proves them
  uint64_t evicted_unconfirmed = 0;  // tcp_midstream, udp_unreplied, other_unreplied
  uint64_t displaced = 0;          // entries moved to their other bucket to make room
  uint64_t erased = 0;
};

namespace detail {
// Bit w set where sigs[w] == sig, for the eight ways of a bucket: with SSE2 where the target
// has it, else (and for the tests' comparison) one way at a time.
unsigned sig_match(const uint16_t* sigs, uint16_t sig) noexcept;
unsigned sig_match_scalar(const uint16_t* sigs, uint16_t sig) noexcept;

// The way of a bucket an insert should take, and its score: rank << 28 | time left (the time
// left counts only for live ranks, evicted nearest-deadline first), lower is better, ties to
// the lowest way. Ranks: 1 free, 2 expired, 3 closed, 4 session-affinity record, 5
// unconfirmed, 6 half-open, 7 half-closed, 8 answered UDP or SCTP or one-way TCP, 9 none (an
// established TCP connection, its handshake seen both ways). With SSE4.1 where
// the target has it (x86-64 builds ask for SSE4.2, as DPDK does), else, and for the tests'
// comparison, one way at a time.
struct WayScore {
  uint32_t score;
  unsigned way;
};
WayScore best_way(const FlowState* states, const uint32_t* deadlines, uint32_t now) noexcept;
WayScore best_way_scalar(const FlowState* states, const uint32_t* deadlines,
                         uint32_t now) noexcept;
inline constexpr unsigned kScoreRankShift = 28;
}  // namespace detail

class FlowTable {
 public:
  static constexpr unsigned kWays = 8;

  // `capacity` is rounded up to kWays times a power of two. `seed` randomises placement per
  // process so that a remote sender cannot aim keys at one bucket (hash flooding).
  FlowTable(size_t capacity, const FlowTimeouts& timeouts, uint64_t seed);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Bytes of memory the table holds for `capacity` ways.
  static size_t memory_bytes(size_t capacity) noexcept;

  uint64_t hash(const FlowKey& key) const noexcept { return hash_flow_mix(key, seed_); }
  // The same for a key parse() wrote (hash_flow_mix_stored()).
  uint64_t hash_parsed(const FlowKey& key) const noexcept {
    return hash_flow_mix_stored(key, seed_);
  }
  // The bucket a key of this hash goes to first (its primary).
  uint32_t primary_bucket(uint64_t hash) const noexcept { return slots_of(hash).primary; }

  // The live entry for `key` (hash == this->hash(key)), or nullptr. Does not refresh it.
  FlowEntry* find(const FlowKey& key, uint64_t hash, uint64_t now_ms) noexcept;
  const FlowEntry* find(const FlowKey& key, uint64_t hash, uint64_t now_ms) const noexcept {
    return const_cast<FlowTable*>(this)->find(key, hash, now_ms);  // a lookup changes nothing
  }

  // Whether a live entry with this hash's signature is where find() would look (the primary
  // bucket, and the alternate when the primary has overflowed): true whenever find() would
  // find a key of this hash, and also for another key whose signature matches, a few times in
  // 10^5 with 8 ways. Reads no entry, only buckets: a check that a key is absent (a full-NAT
  // source port's) costs no miss on the line of an entry that holds it.
  bool may_hold(uint64_t hash, uint64_t now_ms) const noexcept;

  // Starts loading the bucket a lookup or insert of `hash` reads first, its primary. (The
  // alternate is read only when the primary has overflowed, or holds nothing an insert may
  // take: prefetch_insert() starts loading it then.)
  void prefetch(uint64_t hash) const noexcept {
    __builtin_prefetch(&groups_[slots_of(hash).primary].bucket, 1);
  }
  // Where insert() of a hash will put its key, as prefetch_insert() found it. insert() takes it
  // as it is when the way still holds what it held then (same signature, state and deadline),
  // and chooses afresh otherwise: frames handled in between may have changed the buckets.
  // Opaque to callers.
  struct InsertHint {
    uint64_t hash = 0;
    uint32_t bucket = 0;
    uint32_t deadline = 0;
    uint16_t sig = 0;
    uint8_t way = 0;
    uint8_t rank = 0xff;  // none: insert() chooses
    FlowState state = FlowState::free;
  };
  // Starts loading what insert(hash) will write beyond the buckets: when the way it will take
  // evicts an entry placed in its alternate bucket, that entry's primary bucket (its overflow
  // count). Not the entry itself: insert_whole() writes it without reading it. Reads the
  // buckets, so call it a while after prefetch(): a burst's new connections are set up in
  // passes (prefetch all, then this for all, then insert), so their misses overlap. Returns the
  // choice it made, for insert() to reuse.
  InsertHint prefetch_insert(uint64_t hash, uint64_t now_ms) const noexcept;
  // An entry's state and deadline, located once for a read and a refresh (each locate() is a
  // multiply by the inverse of 9): valid while the table places or frees nothing.
  class Slot {
   public:
    Slot() noexcept = default;  // uninitialised, as arrays of them on a burst's stack are
    FlowState state() const noexcept { return *state_; }

   private:
    friend class FlowTable;
    Slot(FlowState* state, uint32_t* deadline) noexcept : state_(state), deadline_(deadline) {}
    FlowState* state_;
    uint32_t* deadline_;
  };
  // find() for a burst, overlapping the memory accesses of its keys: buckets are prefetched,
  // then candidate entries, then keys compared. keys[i] and hashes[i] in; out[i] out, and for a
  // hit at[i], its slot(out[i]) (the lookup knows where it found it: a hit need not locate it).
  void find_bulk(const FlowKey* const* keys, const uint64_t* hashes, size_t n,
                 FlowEntry** out, Slot* at, uint64_t now_ms) noexcept;

  // Adds `key`, which must not be live in the table, in `state` with that state's deadline.
  // Returns the entry (its value zeroed, to be filled by the caller) or nullptr when there is no
  // room in either bucket without evicting an established or UDP entry.
  FlowEntry* insert(const FlowKey& key, uint64_t hash, FlowState state, uint64_t now_ms) noexcept {
    return insert(key, hash, state, now_ms, timeout_ms(state));
  }
  // The same with an explicit idle timeout (at most kMaxFlowTimeoutMs), e.g. session affinity.
  FlowEntry* insert(const FlowKey& key, uint64_t hash, FlowState state, uint64_t now_ms,
                    uint32_t timeout_ms) noexcept {
    return insert(key, hash, state, now_ms, timeout_ms, nullptr, nullptr);
  }
  // The same for a new connection's entry, written whole: `key` with `tag`, and `value`, with
  // what prefetch_insert(hash) returned earlier in the burst (its choice saves ranking both
  // buckets again; a hint made without the key does not look for an expired copy of it: that
  // stays until expire() reclaims it, unseen by lookups). `keep`, when given, is an entry this
  // insert must neither evict nor move (a connection's forward entry, placed just before its
  // reply entry: the two keys may share a bucket, and a new entry is evictable).
  // The entry's cache line is written with streaming stores, whole, and never read: the way a
  // new connection takes held some older entry, most likely out of cache in a large table, and
  // a line written with ordinary stores is first read from memory (two such reads per new
  // full-NAT connection). The entry goes to memory rather than cache: read it back only when it
  // is needed, as the connection's next frame does (its caller keeps what it wrote). Same
  // thread only: the stores are weakly ordered for any other.
  FlowEntry* insert_whole(const FlowKey& key, uint16_t tag, const FlowValue& value, uint64_t hash,
                          FlowState state, uint64_t now_ms, const InsertHint& hint,
                          const FlowEntry* keep = nullptr) noexcept {
    const Whole whole{&value, tag};
    if (keep == nullptr) {
      return insert(key, hash, state, now_ms, timeout_ms(state), &hint, nullptr, &whole);
    }
    const Where at = locate(keep);
    return insert(key, hash, state, now_ms, timeout_ms(state), &hint, &at, &whole);
  }

  Slot slot(FlowEntry* e) noexcept {
    const Where at = locate(e);
    Bucket& bk = groups_[at.bucket].bucket;
    return {&bk.state[at.way], &bk.deadline[at.way]};
  }
  void refresh(Slot s, FlowState state, uint64_t now_ms) noexcept {
    *s.state_ = state;
    *s.deadline_ = uint32_t(now_ms + timeout_ms(state));
  }

  // After a packet of the entry's connection: moves to `state` and extends the deadline.
  void refresh(FlowEntry* e, FlowState state, uint64_t now_ms) noexcept {
    refresh(e, state, now_ms, timeout_ms(state));
  }
  void refresh(FlowEntry* e, FlowState state, uint64_t now_ms, uint32_t timeout_ms) noexcept {
    const Where at = locate(e);
    Bucket& bk = groups_[at.bucket].bucket;
    bk.state[at.way] = state;
    bk.deadline[at.way] = uint32_t(now_ms + timeout_ms);
  }

  // Changes whenever an entry is placed or a way freed (insert, eviction, move, erase, expiry):
  // a pointer from an earlier lookup is still good while this has not changed, and afterwards
  // only if holds() says so.
  uint64_t generation() const noexcept { return generation_; }
  // Keys inserted since forget_inserted(), as a 256-bit filter of their hashes' top byte (bits
  // no bucket or signature uses). A key absent then can be live now only if its bit is set:
  // moves, evictions and erasures add no key. A burst's new connections are inserted one after
  // the other after its bulk lookup; this spares each the second look for its key that an
  // earlier frame of the burst, of the same connection, might have inserted.
  void forget_inserted() noexcept { inserted_ = {}; }
  bool may_have_inserted(uint64_t hash) const noexcept {
    return (inserted_[hash >> 62] >> (hash >> 56 & 63) & 1) != 0;
  }
  // Whether `e` is still the live entry of `key`.
  bool holds(const FlowEntry* e, const FlowKey& key, uint64_t now_ms) const noexcept {
    const Where at = locate(e);
    const Bucket& bk = groups_[at.bucket].bucket;
    return bk.state[at.way] != FlowState::free && alive(bk.deadline[at.way], now_ms) &&
           e->key.same_flow(key);
  }

  FlowState state(const FlowEntry* e) const noexcept {
    const Where at = locate(e);
    return groups_[at.bucket].bucket.state[at.way];
  }
  // Milliseconds until the entry expires (0 if it has).
  uint32_t remaining_ms(const FlowEntry* e, uint64_t now_ms) const noexcept;
  // An entry's number, bucket * kWays + way, and back.
  uint32_t index(const FlowEntry* e) const noexcept {
    const Where at = locate(e);
    return at.bucket * kWays + at.way;
  }
  FlowEntry* at(uint32_t index) noexcept { return &groups_[index / kWays].way[index % kWays]; }

  void erase(FlowEntry* e) noexcept;

  // Frees expired ways in up to `buckets` buckets, continuing where the previous call stopped.
  // Call regularly (e.g. on empty polls); returns the number of ways freed. A full sweep must
  // complete well within 2^31 ms (24 days) for deadlines to be read unambiguously.
  size_t expire(uint64_t now_ms, size_t buckets) noexcept;
  size_t bucket_count() const noexcept { return bucket_count_; }

  const FlowTableStats& stats() const noexcept { return stats_; }
  const FlowTimeouts& timeouts() const noexcept { return timeouts_; }
  // idle_timeout_ms() of the table's timeouts, read from a table of its own: one load a refresh.
  uint32_t timeout_ms(FlowState s) const noexcept { return timeout_of_[size_t(s)]; }

 private:
  struct alignas(64) Bucket {
    uint16_t sig[kWays];
    FlowState state[kWays];
    uint32_t deadline[kWays];  // milliseconds, modulo 2^32
    uint16_t overflow;         // entries whose primary is this bucket, stored in the alternate
    uint8_t alt_mask;          // ways holding an entry whose primary is the other bucket
    uint8_t pad[5];
  };
  static_assert(sizeof(Bucket) == 64);
  // A bucket and the entries of its ways, side by side: a hit reads two cache lines of one
  // 576-byte block, nearly always within one page, so one TLB entry (a TLB miss costs a page walk,
  // two-dimensional under virtualisation).
  struct alignas(64) Group {
    Bucket bucket;
    FlowEntry way[kWays];
  };
  static_assert(sizeof(Group) == 64 * (1 + kWays));
  struct Where {
    uint32_t bucket;
    unsigned way;
  };
  // By the entry's cache line within the table, in 32 bits (at most kMaxBuckets groups of 9
  // lines): the division by 9 is a multiply and a shift. On every hit, twice.
  static constexpr uint32_t kLinesPerGroup = sizeof(Group) / 64;
  static constexpr uint32_t kMaxBuckets = uint32_t(1) << 28;
  static uint32_t checked_bucket_count(size_t capacity);  // throws std::length_error
  Where locate(const FlowEntry* e) const noexcept {
    const auto line = uint32_t(size_t(reinterpret_cast<const char*>(e) -
                                      reinterpret_cast<const char*>(groups_.get())) / 64);
    const uint32_t b = line / kLinesPerGroup;
    return {b, line - b * kLinesPerGroup - 1};
  }

  struct Slots {
    uint32_t primary;
    uint32_t alternate;
    uint16_t sig;
  };
  // The primary bucket comes from the low 32 bits of the hash, the signature from the lowest
  // byte of each half (bits Lemire's reduction, high bits first, leaves out of the bucket choice
  // below 2^24 buckets). The alternate is derived from the primary and the signature alone
  // (partial-key cuckoo hashing, Fan et al., "Cuckoo Filter", CoNEXT 2014): the mapping is its
  // own inverse, so either bucket of an entry, and the signature, give the other without reading
  // the entry's key: evicting or moving an entry costs no access to its cache line.
  // other(b) = b XOR m, with m odd (never 0: the two buckets always differ) and taken from a
  // hash of the signature, over a power-of-two bucket count. Inline: every lookup and insert.
  Slots slots_of(uint64_t hash) const noexcept {
    Slots s;
    s.primary = primary_of(hash);
    s.sig = signature_of(hash);
    s.alternate = other_bucket(s.primary, s.sig);
    return s;
  }
  uint32_t primary_of(uint64_t hash) const noexcept {
    return reduce32(uint32_t(hash), bucket_count_);
  }
  static uint16_t signature_of(uint64_t hash) noexcept {
    return uint16_t((hash & 0xff) | (hash >> 24 & 0xff00));
  }
  uint32_t other_bucket(uint32_t b, uint16_t sig) const noexcept {
    const uint32_t m = ((uint32_t(sig) * 0x9e3779b1u) >> 16 | 1) & (bucket_count_ - 1);
    return b ^ m;
  }

  // Live: the deadline lies in (now, now + kMaxFlowTimeoutMs]. Anything else has expired,
  // including a deadline so old that it wrapped around (expire() prevents that in practice).
  static bool alive(uint32_t deadline, uint64_t now_ms) noexcept {
    return uint32_t(deadline - uint32_t(now_ms)) - 1u < kMaxFlowTimeoutMs;
  }

  // At least 7/8 of the ways in use (most likely a flood's entries): unconfirmed and half-open
  // entries are evicted before anything else is tried.
  bool crowded() const noexcept { return stats_.occupied >= stats_.capacity / 8 * 7; }

  FlowEntry* find_in(uint32_t b, const FlowKey& key, uint16_t sig, uint64_t now_ms) noexcept;
  bool live_signature(uint32_t b, uint16_t sig, uint64_t now_ms) const noexcept;
  // Where insert() puts a key: the best way of its two buckets, lower ranks first.
  enum Rank : unsigned {
    kSameKey, kFree, kExpired, kClosed, kAffinity, kUnconfirmed, kHalfOpen, kHalfClosed,
    kAnswered, kNone
  };
  struct Choice {
    Rank rank = kNone;
    uint32_t bucket = 0;
    unsigned way = 0;
  };
  // `key` null: the expired copy of the same key is not looked for (prefetch_insert). `keep`:
  // a way never chosen.
  [[gnu::always_inline]] inline Choice choose(const Slots& s, const FlowKey* key,
                                              uint64_t now_ms,
                                              const Where* keep = nullptr) const noexcept;
  struct Whole {  // insert_whole()'s value and tag
    const FlowValue* value;
    uint16_t tag;
  };
  FlowEntry* insert(const FlowKey& key, uint64_t hash, FlowState state, uint64_t now_ms,
                    uint32_t timeout_ms, const InsertHint* hint, const Where* keep,
                    const Whole* whole = nullptr) noexcept;
  [[gnu::always_inline]] inline void free_way(uint32_t b, unsigned w) noexcept;
  // The best way of bucket `b` for an insert (detail::rank_ways), `keep` ranked as never
  // evicted.
  [[gnu::always_inline]] inline detail::WayScore score_ways(uint32_t b, uint32_t now,
                                                            const Where* keep) const noexcept;
  // How many of the bucket's ways hold an established connection.
  static unsigned established_ways(const Bucket& bk) noexcept;
  // Moves one live entry of bucket `b` to a free or expired way of its other bucket; returns
  // the way it left in `b`, or -1.
  int move_one_out(uint32_t b, uint64_t now_ms, const Where* keep) noexcept;
  // For buckets `b0` and `b1` full of entries never evicted, none of which has room in its
  // other bucket: evicts the best way (by rank, then deadline) of any of their other buckets and
  // moves the entry there. Returns where the moved entry was (the way now free), or a bucket
  // of UINT32_MAX when every other bucket is as full.
  Where evict_one_out(uint32_t b0, uint32_t b1, uint64_t now_ms, const Where* keep) noexcept;
  void move(uint32_t b, unsigned w, uint32_t to, unsigned v) noexcept;
  void count_eviction(Rank r) noexcept;
  [[gnu::always_inline]] inline void place(uint32_t b, unsigned w, const Slots& s,
                                           const FlowKey& key, FlowState state,
                                           uint32_t deadline,
                                           const Whole* whole = nullptr) noexcept;

  FlowTimeouts timeouts_;
  std::array<uint32_t, kFlowStates> timeout_of_;  // by state
  uint64_t seed_;
  uint32_t bucket_count_;
  uint32_t expire_cursor_ = 0;
  uint64_t generation_ = 0;
  std::array<uint64_t, 4> inserted_{};  // may_have_inserted()'s filter
  BigArray<Group> groups_;
  FlowTableStats stats_;
};

}  // namespace magline::dp
