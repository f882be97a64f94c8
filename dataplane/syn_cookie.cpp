#include "dataplane/syn_cookie.hpp"

#include <algorithm>
#include <cstring>

#include "dataplane/bytes.hpp"

namespace magline::dp {

namespace {

constexpr uint8_t kOptEnd = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptMss = 2;
constexpr uint8_t kOptWscale = 3;
constexpr uint8_t kOptSackPermitted = 4;
constexpr uint8_t kOptSack = 5;
constexpr uint8_t kOptTimestamps = 8;

constexpr size_t kTcpFixed = 20;

// Calls f(kind, offset, length) for each well-formed option of the header.
template <typename F>
void each_option(const uint8_t* tcp, size_t header_len, F f) noexcept {
  size_t i = kTcpFixed;
  while (i < header_len) {
    const uint8_t kind = tcp[i];
    if (kind == kOptEnd) return;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= header_len) return;
    const uint8_t len = tcp[i + 1];
    if (len < 2 || i + len > header_len) return;
    f(kind, i, len);
    i += len;
  }
}

inline uint64_t rotl(uint64_t x, int b) noexcept { return x << b | x >> (64 - b); }

inline void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) noexcept {
  v0 += v1;
  v1 = rotl(v1, 13);
  v1 ^= v0;
  v0 = rotl(v0, 32);
  v2 += v3;
  v3 = rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = rotl(v1, 17);
  v1 ^= v2;
  v2 = rotl(v2, 32);
}

}  // namespace

TcpOptions read_tcp_options(const uint8_t* tcp, size_t header_len) noexcept {
  TcpOptions o;
  each_option(tcp, header_len, [&](uint8_t kind, size_t at, uint8_t len) {
    if (kind == kOptMss && len == 4) {
      o.mss = load_be16(tcp + at + 2);
    } else if (kind == kOptWscale && len == 3) {
      o.wscale = std::min(tcp[at + 2], kMaxWscale);
    } else if (kind == kOptSackPermitted && len == 2) {
      o.sack_permitted = true;
    } else if (kind == kOptTimestamps && len == 10) {
      o.timestamps = true;
      o.tsval = load_be32(tcp + at + 2);
      o.tsecr = load_be32(tcp + at + 6);
    }
  });
  return o;
}

TimestampAt find_timestamps(const uint8_t* tcp, size_t header_len) noexcept {
  TimestampAt t;
  each_option(tcp, header_len, [&](uint8_t kind, size_t at, uint8_t len) {
    if (kind == kOptTimestamps && len == 10) t = {uint16_t(at + 2), uint16_t(at + 6)};
  });
  return t;
}

SackAt find_sack(const uint8_t* tcp, size_t header_len) noexcept {
  SackAt s;
  each_option(tcp, header_len, [&](uint8_t kind, size_t at, uint8_t len) {
    if (kind == kOptSack && len >= 10 && (len - 2) % 8 == 0) {
      s = {uint16_t(at + 2), uint8_t((len - 2) / 8)};
    }
  });
  return s;
}

uint8_t cookie_mss_index(uint16_t mss, Family family) noexcept {
  if (mss == 0) mss = family == Family::v4 ? 536 : 1220;
  uint8_t i = 0;
  for (uint8_t j = 0; j < kCookieMss.size(); ++j) {
    if (kCookieMss[j] <= mss) i = j;
  }
  return i;
}

uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* p, size_t n) noexcept {
  uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
  uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
  uint64_t v3 = k1 ^ 0x7465646279746573ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t m = load_le64(p + i);
    v3 ^= m;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint8_t tail[8] = {};
  std::memcpy(tail, p + i, n - i);
  const uint64_t b = load_le64(tail) | uint64_t(n) << 56;
  v3 ^= b;
  sip_round(v0, v1, v2, v3);
  sip_round(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int r = 0; r < 4; ++r) sip_round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

// The message is the tuple, the ISN and the period: 24 bytes for IPv4 (12 SipHash rounds),
// 48 for IPv6.
uint32_t SynCookies::mac(const FlowKey& key, uint32_t client_isn, uint64_t period) const noexcept {
  uint8_t msg[48];
  const size_t a = key.family == Family::v4 ? 4 : 16;
  std::memcpy(msg, key.src.data(), a);
  std::memcpy(msg + a, key.dst.data(), a);
  uint8_t* t = msg + 2 * a;
  store_be16(t, key.sport);
  store_be16(t + 2, key.dport);
  t[4] = key.proto;
  t[5] = uint8_t(key.family);
  store_be16(t + 6, 0);
  store_be32(t + 8, client_isn);
  store_be32(t + 12, uint32_t(period));
  return uint32_t(siphash24(k0_, k1_, msg, 2 * a + 16));
}

uint32_t SynCookies::make(const FlowKey& key, uint32_t client_isn, uint8_t mss_index,
                          uint64_t now_ms) const noexcept {
  const uint64_t period = now_ms >> kPeriodShift;
  return (mac(key, client_isn, period) & ~7u) | uint32_t(period & 1) << 2 | (mss_index & 3u);
}

int SynCookies::check(const FlowKey& key, uint32_t client_isn, uint32_t cookie,
                      uint64_t now_ms) const noexcept {
  const uint64_t now = now_ms >> kPeriodShift;
  const uint64_t period = (now & 1) == ((cookie >> 2) & 1) ? now : now - 1;
  if (period > now) return -1;  // the clock's first period: no earlier one
  if ((mac(key, client_isn, period) & ~7u) != (cookie & ~7u)) return -1;
  return int(cookie & 3);
}

uint32_t cookie_tsval(uint64_t now_ms, uint8_t wscale, bool sack_permitted) noexcept {
  const uint32_t ws = wscale == kNoWscale ? 0xf : std::min(wscale, kMaxWscale);
  return (uint32_t(now_ms) & ~0x3fu) | (sack_permitted ? 0x10u : 0u) | ws;
}

EchoedOptions cookie_options(uint32_t tsecr) noexcept {
  EchoedOptions o;
  const uint8_t ws = tsecr & 0xf;
  o.wscale = ws == 0xf ? kNoWscale : std::min(ws, kMaxWscale);
  o.sack_permitted = tsecr & 0x10;
  return o;
}

}  // namespace magline::dp
