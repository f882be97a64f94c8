// magline-bench's traffic: what the generator sends, how its frames are laid out, and which flow
// each frame belongs to. Setup (templates, the Zipf sequence) allocates; the per-frame helpers
// (FlowChooser::next, fill_*, the stamp readers) do not, and cost a handful of cycles each.
//
// Addresses (one Magline port, "LB on a stick"):
//   Magline's port      198.18.0.1/16            2001:db8::1/64
//   backends            198.18.1.0 + i           2001:db8::1:0 + i      port 8080, i < 16384
//   the service (VIP)   198.51.100.1:80          2001:db8:100::1 port 80
//   established flow k  10.0.0.0 + (k >> 14)     2001:db8:c::a00:0 + (k >> 14)
//                       source port 1024 + (k & 0x3fff)
//   new connection c    10.128.0.0 + (c >> 14)   (same /64, high bit set), same port scheme
//
// Every frame carries a stamp the generator writes and the sink reads, where no rewrite of
// Magline's touches it: a flow id and the low 32 bits of the TSC (both lcores read the same
// TSC; 32 bits wrap after 1.6 s at 2.6 GHz, far above any latency measured). TCP carries it in
// the sequence and acknowledgement numbers (so a 64-byte IPv4 frame needs no payload), UDP in
// the first 8 payload bytes. TCP and UDP checksums are not kept valid: Magline updates them
// incrementally and never verifies them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/bytes.hpp"
#include "dataplane/packet.hpp"

namespace magline::bench {

enum class Distribution : uint8_t { uniform, zipf };

struct TrafficSpec {
  uint32_t flows = 1024;  // established connections, opened before the measurement
  Distribution distribution = Distribution::uniform;
  double zipf_s = 1.0;
  double new_share = 0;  // share of generated frames that open a new connection
  uint32_t size = 64;    // frame size on the wire, FCS included (the mbuf holds size-4)
  bool ipv6 = false;
  bool udp = false;
  double rate_pps = 0;  // generated frames per second; 0: as fast as the ring takes
  double seconds = 3;
  uint32_t backends = 100;
  bool churn = false;  // remove one backend half-way through
};

// Magline's flow-table size when --flow-capacity does not say: each established flow takes two
// entries (full-NAT), half the table with only established flows, a quarter when new
// connections stream through it too: with half the table held by established connections
// (never evicted) and millions of new connections a second, a bucket left with few evictable
// ways evicts a handshake's entry before its answer (64k flows, --new-share 0.5: 400-700 frames
// dropped with 256k entries, 63,588 before the flow table read a congested bucket's alternate;
// 266-346 with 512k).
inline size_t default_flow_capacity(const TrafficSpec& t) noexcept {
  return t.new_share > 0 ? std::max<size_t>(size_t(t.flows) * 8, size_t(1) << 18)
                         : std::max<size_t>(size_t(t.flows) * 4, size_t(1) << 16);
}

// Flow ids in the stamp: bit 31 a new connection, bit 30 sent after the churn, the rest the
// flow index (established) or the connection counter (new).
inline constexpr uint32_t kIdNew = 1u << 31;
inline constexpr uint32_t kIdAfterChurn = 1u << 30;
inline constexpr uint32_t kIdMask = kIdAfterChurn - 1;
inline constexpr uint32_t kMaxFlows = 1u << 24;

inline constexpr uint16_t kVipPort = 80;
inline constexpr uint16_t kBackendPort = 8080;
inline constexpr uint32_t kMaxBackends = 16384;

const dp::MacAddr kClientMac{{0x02, 0, 0, 0, 0, 0x0a}};   // the generator, as the clients' router
const dp::MacAddr kBackendMac{{0x02, 0, 0, 0, 0, 0x0b}};  // the sink, as every backend

dp::IpAddr lb_address(bool ipv6);
dp::IpAddr vip_address(bool ipv6);
dp::IpAddr backend_address(bool ipv6, uint32_t i);
// The backend index the sink reads back from a destination address's low 32 bits.
inline uint32_t backend_index(uint32_t low32) noexcept {
  return (low32 & 0xffffu) - 0x100u;
}

// Where things are in the frames of one traffic spec (all offsets from the Ethernet header).
struct Layout {
  bool ipv6 = false;
  bool udp = false;
  uint16_t len = 60;      // bytes in the mbuf (wire size minus the FCS)
  uint16_t l4 = 34;       // transport header
  uint16_t src_low = 26;  // the low 32 bits of the source address
  uint16_t dst_low = 30;  // ...and of the destination
  uint16_t stamp = 38;    // flow id (4 bytes), then TSC (4 bytes)

  static Layout of(const TrafficSpec& t);
  // The smallest frame (wire bytes) that holds the headers and the stamp.
  static uint32_t min_size(bool ipv6, bool udp);
};

// The frame every generated packet starts from: Ethernet to Magline's MAC, IP to the VIP, TCP
// ACK or UDP; the source, flags and stamp are patched per frame. Zeros pad it to at least 64
// bytes, so that a minimal frame is copied by one fixed-size move (fill_frame).
std::vector<uint8_t> build_template(const TrafficSpec& t, const Layout& l, const dp::MacAddr& lb);

// Which established flow the next frame belongs to. Uniform: a 64-bit PRNG mapped onto
// [0, flows) by multiply-shift. Zipf: a sequence of draws (inverse CDF, made at setup) read
// in order, 2^22 of them or more, so that the per-frame cost is one sequential load.
class FlowChooser {
 public:
  FlowChooser(const TrafficSpec& t, uint64_t seed);

  // A 64-bit random word (wyrand); the caller may use its bits for other choices.
  uint64_t random() noexcept {
    state_ += 0xa0761d6478bd642full;
    const __uint128_t m = __uint128_t(state_) * (state_ ^ 0xe7037ed1a0b428dbull);
    return uint64_t(m >> 64) ^ uint64_t(m);
  }
  uint32_t next(uint64_t r) noexcept {
    if (sequence_.empty()) return uint32_t((uint64_t(uint32_t(r)) * flows_) >> 32);
    return sequence_[pos_++ & mask_];
  }
  // The most and least popular flows' shares of the sequence (for the report).
  double top_share() const noexcept { return top_share_; }

 private:
  uint64_t state_;
  uint32_t flows_;
  std::vector<uint32_t> sequence_;
  size_t pos_ = 0;
  size_t mask_ = 0;
  double top_share_ = 0;
};

// The client of established flow k, or of new connection c: the low 32 bits of its address and
// its source port.
inline uint32_t client_low(uint32_t k) noexcept {
  return 0x0a000000u | (k >> 14);
}
inline uint32_t new_client_low(uint64_t c) noexcept {
  return 0x0a800000u | uint32_t((c >> 14) & 0x7fffff);
}
inline uint16_t client_port(uint64_t k) noexcept {
  return uint16_t(1024 + (k & 0x3fff));
}

// Writes one generated frame into `d` (room for the template's length): the template, then the
// client, the TCP flags (ignored for UDP) and the stamp.
inline void fill_frame(uint8_t* d, const std::vector<uint8_t>& tmpl, const Layout& l,
                       uint32_t src_low, uint16_t sport, uint8_t tcp_flags, uint32_t id,
                       uint32_t tsc) noexcept {
  if (l.len <= 64) {
    std::memcpy(d, tmpl.data(), 64);  // an mbuf's data room holds 64 bytes
  } else {
    std::memcpy(d, tmpl.data(), l.len);
  }
  dp::store_be32(d + l.src_low, src_low);
  dp::store_be16(d + l.l4, sport);
  if (!l.udp) d[l.l4 + 13] = tcp_flags;
  dp::store_be32(d + l.stamp, id);
  dp::store_be32(d + l.stamp + 4, tsc);
}

inline uint32_t stamp_id(const uint8_t* d, const Layout& l) noexcept {
  return dp::load_be32(d + l.stamp);
}
inline uint32_t stamp_tsc(const uint8_t* d, const Layout& l) noexcept {
  return dp::load_be32(d + l.stamp + 4);
}
inline void restamp(uint8_t* d, const Layout& l, uint32_t tsc) noexcept {
  dp::store_be32(d + l.stamp + 4, tsc);
}

// Turns a received frame around in place, as its receiver answers it: Ethernet addresses
// (`to` becomes the destination, `from` the source), IP addresses and ports swapped, new TCP
// flags. The stamp is kept.
void turn_around(uint8_t* d, const Layout& l, const dp::MacAddr& to, const dp::MacAddr& from,
                 uint8_t tcp_flags) noexcept;

// "1k", "64k", "1M", "100000" -> a count; 0 on a malformed value.
uint64_t parse_count(const std::string& s);

}  // namespace magline::bench
