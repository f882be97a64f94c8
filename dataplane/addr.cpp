#include "dataplane/addr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "dataplane/bytes.hpp"

namespace magline::dp {

IpAddr IpAddr::v4(uint32_t host_order) noexcept {
  IpAddr a;
  a.bytes[0] = uint8_t(host_order >> 24);
  a.bytes[1] = uint8_t(host_order >> 16);
  a.bytes[2] = uint8_t(host_order >> 8);
  a.bytes[3] = uint8_t(host_order);
  return a;
}

IpAddr IpAddr::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) noexcept {
  return v4(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d);
}

IpAddr IpAddr::v6(const uint8_t* network_order16) noexcept {
  IpAddr a;
  a.family = Family::v6;
  std::memcpy(a.bytes.data(), network_order16, 16);
  return a;
}

std::optional<IpAddr> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  if (text.find(':') == std::string_view::npos) {
    if (inet_pton(AF_INET, buf, a.bytes.data()) != 1) return std::nullopt;
    return a;
  }
  a.family = Family::v6;
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
  return a;
}

bool is_link_local(const IpAddr& addr) noexcept {
  if (addr.family == Family::v4) return addr.bytes[0] == 169 && addr.bytes[1] == 254;
  return addr.bytes[0] == 0xfe && (addr.bytes[1] & 0xc0) == 0x80;
}

std::string to_string(const IpAddr& addr) {
  char buf[INET6_ADDRSTRLEN];
  const int af = addr.family == Family::v4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, addr.bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

namespace {

// Zeroes every bit past the first `len` bits; returns whether any bit was set there.
bool mask_host_bits(IpAddr& a, unsigned len) noexcept {
  bool had_host_bits = false;
  for (unsigned i = 0; i < a.size(); ++i) {
    const unsigned bit0 = i * 8;
    uint8_t keep = 0xff;
    if (bit0 >= len) {
      keep = 0;
    } else if (len - bit0 < 8) {
      keep = uint8_t(0xff << (8 - (len - bit0)));
    }
    if (a.bytes[i] & ~keep) had_host_bits = true;
    a.bytes[i] &= keep;
  }
  return had_host_bits;
}

}  // namespace

bool same_prefix(const IpAddr& a, const IpAddr& b, unsigned len) noexcept {
  len = std::min(len, unsigned(a.size()) * 8);
  // Big-endian words, so that the first bits of the address are the high bits of the first.
  const uint64_t x0 = load_be64(a.bytes.data()) ^ load_be64(b.bytes.data());
  const uint64_t x1 = load_be64(a.bytes.data() + 8) ^ load_be64(b.bytes.data() + 8);
  const uint64_t m0 = len == 0 ? 0 : ~uint64_t{0} << (64 - std::min(len, 64u));
  const uint64_t m1 = len <= 64 ? 0 : ~uint64_t{0} << (128 - len);
  return ((x0 & m0) | (x1 & m1)) == 0;
}

std::optional<IpPrefix> parse_prefix(std::string_view text, HostBits host_bits) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr) return std::nullopt;
  const std::string_view len_text = text.substr(slash + 1);
  unsigned len = 0;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || end != len_text.data() + len_text.size() || len_text.empty()) {
    return std::nullopt;
  }
  if (len > addr->size() * 8) return std::nullopt;
  if (mask_host_bits(*addr, len) && host_bits == HostBits::reject) return std::nullopt;
  return IpPrefix{*addr, uint8_t(len)};
}

std::string to_string(const IpPrefix& prefix) {
  return to_string(prefix.addr) + "/" + std::to_string(prefix.len);
}

}  // namespace magline::dp
