#include "dataplane/checksum.hpp"

#include <array>

#include "dataplane/bytes.hpp"

namespace magline::dp {

namespace {

using detail::fold16;

// Reflected Castagnoli polynomial (RFC 9260 appendix A).
constexpr uint32_t kCrc32cPoly = 0x82f63b78;

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

// Slicing-by-8 tables (Kounavis and Berry, 2008): table[k][b] is the CRC of byte b followed by k
// zero bytes, so eight table lookups advance the CRC over eight bytes at once.
constexpr CrcTables make_crc32c_tables() {
  CrcTables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit)
      c = (c >> 1) ^ ((c & 1) ? kCrc32cPoly : 0);
    t[0][b] = c;
  }
  for (size_t k = 1; k < t.size(); ++k) {
    for (uint32_t b = 0; b < 256; ++b)
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  }
  return t;
}

constexpr CrcTables kCrc32c = make_crc32c_tables();
static_assert(kCrc32c[0][1] == 0xf26b8303);

uint32_t load_le32(const uint8_t* p) noexcept {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

uint32_t csum_add(uint32_t sum, const uint8_t* p, size_t n) noexcept {
  // Summing 32-bit big-endian words is congruent to summing 16-bit ones modulo 0xffff
  // (RFC 1071 2.B, "parallel summation"); a 64-bit accumulator cannot overflow on any frame.
  uint64_t acc = sum;
  for (; n >= 8; n -= 8, p += 8)
    acc += uint64_t(load_be32(p)) + load_be32(p + 4);
  if (n >= 4) {
    acc += load_be32(p);
    n -= 4;
    p += 4;
  }
  if (n >= 2) {
    acc += load_be16(p);
    n -= 2;
    p += 2;
  }
  if (n) acc += uint32_t(p[0]) << 8;
  return fold16(acc);
}

uint16_t csum_fold(uint32_t sum) noexcept {
  return uint16_t(~fold16(sum));
}

uint16_t ipv4_header_checksum(const uint8_t* hdr, size_t ihl_bytes) noexcept {
  if (ihl_bytes == 20) {  // no options, nearly always: five words, the checksum's left out
    const uint64_t acc = uint64_t(load_be32(hdr)) + load_be32(hdr + 4) + load_be16(hdr + 8) +
                         load_be32(hdr + 12) + load_be32(hdr + 16);
    return uint16_t(~fold16(acc));
  }
  return csum_fold(csum_add(csum_add(0, hdr, 10), hdr + 12, ihl_bytes - 12));
}

uint32_t pseudo_header_sum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                           uint32_t l4_len) noexcept {
  uint64_t acc = csum_add(csum_add(0, src.data(), src.size()), dst.data(), dst.size());
  acc += proto;
  acc += l4_len >> 16;
  acc += l4_len & 0xffff;
  return fold16(acc);
}

uint16_t l4_checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto, const uint8_t* l4,
                     size_t l4_len, size_t csum_field_off) noexcept {
  const uint32_t pseudo = pseudo_header_sum(src, dst, proto, uint32_t(l4_len));
  if (csum_field_off + 2 > l4_len) return csum_fold(csum_add(pseudo, l4, l4_len));
  const uint32_t head = csum_add(pseudo, l4, csum_field_off);
  return csum_fold(csum_add(head, l4 + csum_field_off + 2, l4_len - csum_field_off - 2));
}

uint16_t csum_replace(uint16_t csum, const uint8_t* old_words, const uint8_t* new_words,
                      size_t n) noexcept {
  return csum_apply(csum, csum_diff(0, old_words, new_words, n));
}

uint16_t csum_replace16(uint16_t csum, uint16_t old_word, uint16_t new_word) noexcept {
  return csum_apply(csum, uint32_t(uint16_t(~old_word)) + new_word);
}

uint32_t crc32c(const uint8_t* p, size_t n) noexcept {
  const auto& t = kCrc32c;
  uint32_t crc = 0xffffffff;
  for (; n >= 8; n -= 8, p += 8) {
    const uint32_t lo = load_le32(p) ^ crc;
    const uint32_t hi = load_le32(p + 4);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
  }
  for (; n; --n, ++p)
    crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace magline::dp
