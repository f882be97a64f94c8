#include "dataplane/rss.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "dataplane/bytes.hpp"

namespace magline::dp {
namespace {

// The 32 key bits starting at bit `bit` (bit 0 = the most significant bit of key[0]); bits past
// the end of the key read as zero.
uint32_t key_window(std::span<const uint8_t> key, size_t bit) noexcept {
  uint64_t w = 0;
  const size_t byte = bit / 8;
  for (size_t i = 0; i < 5; ++i) {
    w = (w << 8) | (byte + i < key.size() ? key[byte + i] : 0);
  }
  return uint32_t(w >> (8 - bit % 8));
}

}  // namespace

Result<Toeplitz> Toeplitz::create(std::span<const uint8_t> key) {
  if (key.size() < kMinRssKeyLen || key.size() > kMaxRssKeyLen) {
    return Error{"RSS key of " + std::to_string(key.size()) + " bytes: expected " +
                 std::to_string(kMinRssKeyLen) + " to " + std::to_string(kMaxRssKeyLen)};
  }
  Toeplitz t;
  std::copy(key.begin(), key.end(), t.key_.begin());
  t.key_len_ = key.size();
  t.tables_.assign(kMaxRssInputLen * 256, 0);
  for (size_t pos = 0; pos < kMaxRssInputLen; ++pos) {
    uint32_t bit_term[8];  // bit_term[j]: contribution of bit j (MSB first) of this byte
    for (size_t j = 0; j < 8; ++j) bit_term[j] = key_window(key, pos * 8 + j);
    uint32_t* row = &t.tables_[pos * 256];
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t h = 0;
      for (size_t j = 0; j < 8; ++j) {
        if (b & (0x80u >> j)) h ^= bit_term[j];
      }
      row[b] = h;
    }
  }
  return t;
}

uint32_t Toeplitz::hash_bitwise(std::span<const uint8_t> key, const uint8_t* in,
                                size_t len) noexcept {
  // For every set input bit i, XOR in the 32-bit key window that starts at bit i.
  uint32_t h = 0;
  for (size_t i = 0; i < len * 8; ++i) {
    if (in[i / 8] & (0x80u >> (i % 8))) h ^= key_window(key, i);
  }
  return h;
}

size_t rss_input(const FlowKey& k, bool with_ports, uint8_t* out) noexcept {
  const RssLayout l = rss_layout(k.family);
  std::memcpy(out, k.src.data(), l.addr_len);
  std::memcpy(out + l.addr_len, k.dst.data(), l.addr_len);
  if (!with_ports) return l.len_l3;
  store_be16(out + 2 * l.addr_len, k.sport);
  store_be16(out + l.dport_off, k.dport);
  return l.len_l4;
}

Result<RssSteering> RssSteering::create(std::span<const uint8_t> key, std::vector<uint16_t> reta,
                                        RssTypes types) {
  auto t = Toeplitz::create(key);
  if (!t) return t.error();
  if (reta.empty() || reta.size() > 65536) {
    return Error{"RSS redirection table of " + std::to_string(reta.size()) +
                 " entries: expected 1 to 65536"};
  }
  RssSteering s;
  s.toeplitz_ = std::move(t).value();
  const size_t n = reta.size();
  s.mask_ = (n & (n - 1)) == 0 ? uint32_t(n - 1) : 0;
  s.reta_ = std::move(reta);
  s.types_ = types;
  return s;
}

uint32_t RssSteering::hash_of(const FlowKey& k) const noexcept {
  if (is_single_queue()) return 0;
  uint8_t in[kMaxRssInputLen];
  const size_t len = rss_input(k, hashes_ports(k.proto), in);
  return toeplitz_->hash(in, len);
}

}  // namespace magline::dp
