// Which RX queue (worker) a NIC's RSS delivers a packet to, computed in software.
//
// Full-NAT needs both directions of a connection on the worker that owns it. Where the NIC takes
// no rte_flow rules, the worker chooses an SNAT source port whose *reply* tuple (backend ->
// SNAT address) the NIC's RSS hashes to the worker's own queue; DNAT uses the same prediction
// to know which worker will see a connection's replies.
//
// The model (Microsoft, "RSS hashing functions" and "Verifying the RSS hash calculation"; Intel
// 82599 datasheet 7.1.2.8; DPDK rte_thash.h):
// - Hash: Toeplitz over the input bytes with the port's secret key.
// - Input: IPv4 src(4) dst(4) [sport(2) dport(2)]; IPv6 src(16) dst(16) [sport(2) dport(2)], all
//   in network byte order. Ports are part of the input for the L4 protocols the port's RSS types
//   enable (RssTypes); never for fragments or other protocols.
// - Queue: reta[hash % reta.size()]. NICs index the redirection table with the low bits of the
//   hash (82599: bits 6:0 for its 128 entries; i40e/ice/mlx5: the low log2(size) bits), and every
//   RETA size DPDK reports is a power of two, where the modulo is exactly that mask.
//
// Not modelled: fragments (the NIC hashes them L3-only; FlowKey cannot say "fragment"), RSS types
// that leave a protocol unhashed altogether (the NIC then delivers to queue 0 / reta[0]),
// symmetric or XOR hash functions, and tunnels hashed on inner headers.
//
// Everything here is immutable after construction: any thread may call the const members.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "dataplane/flow_key.hpp"
#include "dataplane/result.hpp"
#include "dataplane/wire.hpp"

namespace magline::dp {

// RSS keys are 40 bytes on most NICs (82599, mlx5, virtio) and 52 on others (i40e, ice).
inline constexpr size_t kMinRssKeyLen = 40;
inline constexpr size_t kMaxRssKeyLen = 64;
// The longest RSS input this implementation hashes: an IPv6 4-tuple.
inline constexpr size_t kMaxRssInputLen = 36;

// The Toeplitz hash with a fixed key, precomputed per byte position: hash(in) is the XOR of
// table[i][in[i]] over the input bytes, so a 12-byte IPv4 tuple costs 12 loads and XORs and a
// 36-byte IPv6 tuple 36. Measured here (g++ -O2, one core of the 2-core dev VM): 3.7 ns and
// 10.3 ns, against 94 ns and 192 ns for the bitwise method (hash_bitwise; DPDK's rte_softrss is
// the same method, looping over set bits). Tables: 36 x 256 x 4 bytes = 36 KiB per key, built
// once (control thread) in about 50 us.
class Toeplitz {
 public:
  // Errors: a key shorter than kMinRssKeyLen or longer than kMaxRssKeyLen.
  static Result<Toeplitz> create(std::span<const uint8_t> key);

  // Toeplitz hash of `len` bytes. Precondition: len <= kMaxRssInputLen.
  uint32_t hash(const uint8_t* in, size_t len) const noexcept {
    uint32_t h = 0;
    for (size_t i = 0; i < len; ++i) h ^= tables_[i * 256 + in[i]];
    return h;
  }

  // The contribution of byte value `b` at input position `pos` (< kMaxRssInputLen). The hash is
  // linear over XOR: hash(x ^ y) == hash(x) ^ hash(y), so a field's contribution can be swapped
  // in and out of a base hash.
  uint32_t byte_term(size_t pos, uint8_t b) const noexcept { return tables_[pos * 256 + b]; }

  std::span<const uint8_t> key() const noexcept { return {key_.data(), key_len_}; }

  // The reference: bit by bit, straight from the definition (for tests).
  static uint32_t hash_bitwise(std::span<const uint8_t> key, const uint8_t* in,
                               size_t len) noexcept;

 private:
  Toeplitz() = default;

  std::array<uint8_t, kMaxRssKeyLen> key_{};
  size_t key_len_ = 0;
  std::vector<uint32_t> tables_;  // kMaxRssInputLen x 256
};

// Which L4 protocols the port's RSS configuration hashes with their ports.
struct RssTypes {
  bool tcp = true;
  bool udp = true;
  bool sctp = false;

  friend bool operator==(const RssTypes&, const RssTypes&) = default;
};

// The layout of the RSS input for a flow key: where the destination port sits, and how long the
// input is with and without ports.
struct RssLayout {
  size_t addr_len;   // 4 or 16
  size_t dport_off;  // 2 * addr_len + 2
  size_t len_l3;     // 2 * addr_len
  size_t len_l4;     // 2 * addr_len + 4
};

inline constexpr RssLayout rss_layout(Family f) noexcept {
  const size_t a = f == Family::v4 ? 4 : 16;
  return {a, 2 * a + 2, 2 * a, 2 * a + 4};
}

// Writes the RSS input for `k` into `out` (at least kMaxRssInputLen bytes), with ports or
// without; returns its length.
size_t rss_input(const FlowKey& k, bool with_ports, uint8_t* out) noexcept;

// A port's RSS: key, redirection table and hash types. Or the trivial single-queue case, where
// every packet goes to queue 0 and every source port is acceptable.
class RssSteering {
 public:
  // Errors: a bad key (see Toeplitz::create); an empty RETA or one longer than 65536 entries.
  static Result<RssSteering> create(std::span<const uint8_t> key, std::vector<uint16_t> reta,
                                    RssTypes types);
  static RssSteering single_queue() { return RssSteering(); }

  bool is_single_queue() const noexcept { return !toeplitz_.has_value(); }
  const std::vector<uint16_t>& reta() const noexcept { return reta_; }
  RssTypes types() const noexcept { return types_; }
  const Toeplitz* toeplitz() const noexcept { return toeplitz_ ? &*toeplitz_ : nullptr; }

  // Whether the NIC hashes this protocol's ports.
  bool hashes_ports(uint8_t proto) const noexcept {
    return (proto == kTcp && types_.tcp) || (proto == kUdp && types_.udp) ||
           (proto == kSctp && types_.sctp);
  }

  // The NIC's RSS hash of a packet with this flow key (0 for single_queue()).
  uint32_t hash_of(const FlowKey& k) const noexcept;

  // The RX queue the NIC delivers a packet with this flow key to.
  uint16_t queue_of(const FlowKey& k) const noexcept {
    return is_single_queue() ? 0 : queue_of_hash(hash_of(k));
  }
  uint16_t queue_of_hash(uint32_t h) const noexcept {
    return reta_[mask_ ? (h & mask_) : (h % reta_.size())];
  }

  // Full-NAT source port choice. `reply` is the reply tuple (backend -> SNAT address), its
  // dport the port to choose. Returns the first p of first, first+1, ... (cyclic within
  // [lo, hi]; a `first` outside the range starts at lo) with queue_of(reply with dport = p) ==
  // queue and !in_use(p); nullopt if none (or lo > hi), or if in_use has said yes `max_checks`
  // times (in_use is a flow-table lookup: the bound keeps a nearly exhausted range from costing
  // a lookup per port).
  //
  // Cost: one base hash, then two table loads, an XOR and a RETA load per candidate (Toeplitz is
  // linear, so the dport's two bytes are swapped into a base hash taken with dport = 0). With Q
  // queues about Q candidates are tried before a hit: 17 ns per call measured with 4 queues and
  // nothing in use; the whole 16-bit range before nullopt took 51 us. in_use is called only for
  // ports that map to `queue`. Allocation-free; Pred is `bool(uint16_t)`.
  template <typename Pred>
  std::optional<uint16_t> find_port(const FlowKey& reply, uint16_t queue, uint16_t first,
                                    uint16_t lo, uint16_t hi, Pred in_use,
                                    uint32_t max_checks = UINT32_MAX) const {
    if (lo > hi) return std::nullopt;
    uint32_t checks = 0;
    if (first < lo || first > hi) first = lo;
    const uint32_t count = uint32_t(hi) - lo + 1;
    uint32_t p = first;
    if (is_single_queue() || !hashes_ports(reply.proto)) {
      // The queue does not depend on the port: every port or none.
      if (queue_of(reply) != queue) return std::nullopt;
      for (uint32_t i = 0; i < count && checks < max_checks; ++i, p = (p == hi) ? lo : p + 1) {
        if (!in_use(uint16_t(p))) return uint16_t(p);
        ++checks;
      }
      return std::nullopt;
    }
    FlowKey base_key = reply;
    base_key.dport = 0;
    const uint32_t base = hash_of(base_key);
    const size_t off = rss_layout(reply.family).dport_off;
    for (uint32_t i = 0; i < count && checks < max_checks; ++i, p = (p == hi) ? lo : p + 1) {
      const uint32_t h = base ^ toeplitz_->byte_term(off, uint8_t(p >> 8)) ^
                         toeplitz_->byte_term(off + 1, uint8_t(p));
      if (queue_of_hash(h) != queue) continue;
      if (!in_use(uint16_t(p))) return uint16_t(p);
      ++checks;
    }
    return std::nullopt;
  }

  static constexpr uint8_t kTcp = kProtoTcp;
  static constexpr uint8_t kUdp = kProtoUdp;
  static constexpr uint8_t kSctp = kProtoSctp;

 private:
  RssSteering() : reta_{0} {}

  std::optional<Toeplitz> toeplitz_;
  std::vector<uint16_t> reta_;
  uint32_t mask_ = 0;  // reta_.size() - 1 when a power of two, else 0 (use modulo)
  RssTypes types_{};
};

}  // namespace magline::dp
