// IP addresses and prefixes for both families, in network byte order.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace magline::dp {

enum class Family : uint8_t { v4 = 4, v6 = 6 };

// An IPv4 address occupies bytes[0..3] and the rest are zero; an IPv6 address uses all 16.
// Keeping one layout for both families lets flow keys and frontend keys be fixed-size.
struct IpAddr {
  std::array<uint8_t, 16> bytes{};
  Family family = Family::v4;

  static IpAddr v4(uint32_t host_order) noexcept;
  static IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) noexcept;
  static IpAddr v6(const uint8_t* network_order16) noexcept;

  // Number of address bytes on the wire (4 or 16).
  size_t size() const noexcept { return family == Family::v4 ? 4 : 16; }
  const uint8_t* data() const noexcept { return bytes.data(); }
  uint8_t* data() noexcept { return bytes.data(); }

  friend bool operator==(const IpAddr& a, const IpAddr& b) noexcept {
    return a.family == b.family && same_bytes(a.bytes, b.bytes);
  }
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;

  // Two word compares (a defaulted == on std::array calls memcmp).
  static bool same_bytes(const std::array<uint8_t, 16>& a,
                         const std::array<uint8_t, 16>& b) noexcept {
    uint64_t x[2], y[2];
    std::memcpy(x, a.data(), 16);
    std::memcpy(y, b.data(), 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
  }
};

// Parses dotted-quad IPv4 or RFC 4291 IPv6 text. No zone ids, no surrounding spaces.
std::optional<IpAddr> parse_ip(std::string_view text);
std::string to_string(const IpAddr& addr);

// 169.254.0.0/16 (RFC 3927) or fe80::/10 (RFC 4291 2.5.6): valid on one link only.
bool is_link_local(const IpAddr& addr) noexcept;

// Whether `a` and `b`, of one family, agree in their first `len` bits (at most the family's
// width): two masked word compares, no loop and no call.
bool same_prefix(const IpAddr& a, const IpAddr& b, unsigned len) noexcept;

struct IpPrefix {
  IpAddr addr;  // host bits are always zero
  uint8_t len = 0;

  bool contains(const IpAddr& a) const noexcept {
    return a.family == addr.family && same_prefix(a, addr, len);
  }
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

enum class HostBits { reject, clear };

// Parses "ADDR/LEN". With HostBits::reject, an address with bits set beyond LEN is an error
// (config files); with HostBits::clear they are masked off, as Go's net.ParseCIDR does for
// Kubernetes fields. A bare address without "/LEN" is refused either way.
std::optional<IpPrefix> parse_prefix(std::string_view text, HostBits host_bits);
std::string to_string(const IpPrefix& prefix);

}  // namespace magline::dp
