// SYN cookies (RFC 4987 3.6; D. J. Bernstein's design, as Linux implements it): the sequence
// number Magline's SYN-ACK gives a client is a keyed hash of the connection, the client's ISN
// and the time, so that the handshake's ACK proves the client received it (its address is not
// spoofed) without Magline keeping anything per SYN.
//
// A cookie is 29 bits of SipHash-2-4 over (client and frontend address and port, protocol,
// family, the client's ISN, a 64-second period), one bit of the period's parity and a 2-bit MSS index. It
// is valid in the period it was made and the next one (64 to 128 s). What else the client's
// SYN offered (window scale, SACK) travels in the low 6 bits of the timestamp Magline sends,
// which the client echoes in every segment; a client without timestamps gets neither (as from
// Linux), only its MSS, rounded down to one of kCookieMss.
//
// Pure functions and an immutable key: safe from any thread, noexcept, no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "dataplane/flow_key.hpp"

namespace magline::dp {

inline constexpr uint8_t kNoWscale = 0xff;
inline constexpr uint8_t kMaxWscale = 14;  // RFC 7323 2.3

// TCP options a SYN or SYN-ACK may carry (RFC 9293 3.2, RFC 7323, RFC 2018).
struct TcpOptions {
  uint16_t mss = 0;             // 0: none given
  uint8_t wscale = kNoWscale;   // window scale shift, at most kMaxWscale, or kNoWscale
  bool sack_permitted = false;
  bool timestamps = false;
  uint32_t tsval = 0;
  uint32_t tsecr = 0;
};

// The length of the TCP header at `tcp`, options included (its data offset).
inline size_t tcp_header_len(const uint8_t* tcp) noexcept { return size_t(tcp[12] >> 4) * 4; }

// Reads the options of the TCP header at `tcp`, `header_len` bytes long (its data offset):
// MSS, window scale (capped at 14 as RFC 7323 says), SACK permitted, timestamps. Malformed
// options end the reading; what was read before stands.
TcpOptions read_tcp_options(const uint8_t* tcp, size_t header_len) noexcept;

// Where the timestamp option's TSval and TSecr lie in the TCP header (byte offsets), 0 when it
// has none. For translating them in every segment of a proxied connection.
struct TimestampAt {
  uint16_t tsval = 0;
  uint16_t tsecr = 0;
};
TimestampAt find_timestamps(const uint8_t* tcp, size_t header_len) noexcept;

// SACK blocks (RFC 2018) of a TCP header: where the option's edges start, and how many blocks.
struct SackAt {
  uint16_t off = 0;  // byte offset of the first left edge; 0: none
  uint8_t blocks = 0;
};
SackAt find_sack(const uint8_t* tcp, size_t header_len) noexcept;

// The MSS values a cookie can carry. A client's MSS becomes the largest not above it; without
// one, 536 (IPv4, RFC 9293 3.7.1) or 1220 (IPv6, RFC 8200 8.3).
inline constexpr std::array<uint16_t, 4> kCookieMss{536, 1220, 1440, 1460};
uint8_t cookie_mss_index(uint16_t mss, Family family) noexcept;

// SipHash-2-4 (Aumasson and Bernstein, 2012) of `n` bytes with the key (k0, k1): a keyed PRF,
// so that a client who sees cookies for its own connections cannot make them for others.
uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* p, size_t n) noexcept;

class SynCookies {
 public:
  static constexpr unsigned kPeriodShift = 16;  // 65.536 s

  SynCookies(uint64_t k0, uint64_t k1) noexcept : k0_(k0), k1_(k1) {}

  // The cookie for a SYN with this key (client -> frontend), ISN and MSS index, at `now_ms`.
  uint32_t make(const FlowKey& key, uint32_t client_isn, uint8_t mss_index,
                uint64_t now_ms) const noexcept;
  // The MSS index of a cookie this made for the key and ISN in this period or the last one,
  // else -1. `cookie` is the ACK's acknowledgment number less one, `client_isn` its sequence
  // number less one.
  int check(const FlowKey& key, uint32_t client_isn, uint32_t cookie,
            uint64_t now_ms) const noexcept;

 private:
  uint32_t mac(const FlowKey& key, uint32_t client_isn, uint64_t period) const noexcept;
  uint64_t k0_;
  uint64_t k1_;
};

// The TSval Magline's SYN-ACK carries: the millisecond clock with its low 6 bits replaced by
// the client's window scale (4 bits, 15: none) and SACK permitted (bit 4).
uint32_t cookie_tsval(uint64_t now_ms, uint8_t wscale, bool sack_permitted) noexcept;
// What a TSval made by cookie_tsval() says, read back from the client's TSecr.
struct EchoedOptions {
  uint8_t wscale = kNoWscale;
  bool sack_permitted = false;
};
EchoedOptions cookie_options(uint32_t tsecr) noexcept;

}  // namespace magline::dp
