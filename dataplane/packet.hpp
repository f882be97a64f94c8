// A frame as the forwarding code sees it. The bytes belong to the I/O layer (an mbuf under DPDK,
// a buffer in tests and replay); the forwarding code changes them in place, may move `data` back
// into the headroom to prepend a header, and may shorten `len`. The I/O layer applies both
// before transmitting.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace magline::dp {

// The most frames one burst carries through the pipeline (receive, forward, transmit).
inline constexpr uint16_t kMaxBurst = 64;

struct MacAddr {
  std::array<uint8_t, 6> b{};

  static MacAddr from(const uint8_t* p) noexcept {
    MacAddr m;
    std::memcpy(m.b.data(), p, 6);
    return m;
  }
  void store(uint8_t* p) const noexcept { std::memcpy(p, b.data(), 6); }
  bool is_zero() const noexcept { return (b[0] | b[1] | b[2] | b[3] | b[4] | b[5]) == 0; }
  bool is_multicast() const noexcept { return b[0] & 1; }  // broadcast included

  friend bool operator==(const MacAddr& x, const MacAddr& y) noexcept {
    uint32_t a, b;
    uint16_t c, d;
    std::memcpy(&a, x.b.data(), 4);
    std::memcpy(&b, y.b.data(), 4);
    std::memcpy(&c, x.b.data() + 4, 2);
    std::memcpy(&d, y.b.data() + 4, 2);
    return ((a ^ b) | uint32_t(c ^ d)) == 0;  // no memcmp call per frame
  }
};

inline constexpr MacAddr kBroadcastMac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

// "02:00:00:00:00:01" (case-insensitive hex, colons).
std::optional<MacAddr> parse_mac(std::string_view text);
std::string to_string(const MacAddr& mac);

struct Packet {
  void* handle = nullptr;   // the I/O layer's buffer
  uint8_t* data = nullptr;  // the first byte of the frame
  uint16_t len = 0;         // bytes of the frame in this (first) segment
  uint16_t headroom = 0;    // bytes before `data` that may be claimed: moves with `data`
  uint16_t port = 0;        // ingress port; the egress port once a verdict is given
  uint16_t chained = 0;     // nonzero: the frame goes on in further buffers (the I/O layer's)
};

// Claims `n` bytes of headroom in front of the frame. False (nothing changed) if too few.
inline bool prepend(Packet& p, uint16_t n) noexcept {
  if (p.headroom < n) return false;
  p.data -= n;
  p.headroom = uint16_t(p.headroom - n);
  p.len = uint16_t(p.len + n);
  return true;
}

}  // namespace magline::dp
