#include "dataplane/checksum.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "dataplane/bytes.hpp"
#include "dataplane/parse.hpp"

namespace magline::dp {
namespace {

using Bytes = std::vector<uint8_t>;

// The textbook definition (RFC 1071 section 1), one 16-bit word at a time.
uint32_t reference_sum(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2)
    sum += uint32_t(p[i]) << 8 | p[i + 1];
  if (n % 2) sum += uint32_t(p[n - 1]) << 8;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return uint32_t(sum);
}

// Bit-at-a-time CRC32c, the definition the slicing tables must agree with.
uint32_t reference_crc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ ((crc & 1) ? 0x82f63b78 : 0);
  }
  return ~crc;
}

Bytes random_bytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b)
    x = uint8_t(rng());
  return b;
}

uint32_t crc_of(std::string_view s) {
  return crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2.
  const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(csum_add(0, data, sizeof data), 0xddf2u);
  EXPECT_EQ(csum_fold(csum_add(0, data, sizeof data)), 0x220d);
  // Byte-order independence (RFC 1071 2.B) lets the sum be carried across calls.
  EXPECT_EQ(csum_add(csum_add(0, data, 4), data + 4, 4), 0xddf2u);
}

// fold16 against the end-around carry folded 16 bits at a time: the same value (not only the
// same value mod 0xffff), so 0 stays 0 and no non-zero sum becomes 0.
TEST(Checksum, FoldAgreesWithTheTextbookFold) {
  const auto textbook = [](uint64_t acc) {
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    return uint32_t(acc);
  };
  std::vector<uint64_t> cases = {0,           1,          0xffff,      0x10000,     0x1fffe,
                                 0xffffffff,  0x100000000, 0xffff0001,  0x1fffffffe,
                                 ~uint64_t{0}, 0xffffffff00000001, 0x8000000080000000};
  std::mt19937_64 rng(1624);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng();
    cases.push_back(v);
    cases.push_back(v >> (v % 64));  // sums of every size
  }
  for (const uint64_t acc : cases) EXPECT_EQ(detail::fold16(acc), textbook(acc)) << acc;
}

TEST(Checksum, EmptyAndOddLengths) {
  EXPECT_EQ(csum_add(0, nullptr, 0), 0u);
  EXPECT_EQ(csum_fold(0), 0xffff);
  const uint8_t one[] = {0xab};
  EXPECT_EQ(csum_add(0, one, 1), 0xab00u);
  const uint8_t three[] = {0x12, 0x34, 0x56};
  EXPECT_EQ(csum_add(0, three, 3), 0x1234u + 0x5600u);

  std::mt19937 rng(1071);
  for (size_t n = 0; n < 200; ++n) {
    const Bytes b = random_bytes(rng, n);
    EXPECT_EQ(csum_add(0, b.data(), n), reference_sum(b.data(), n)) << n;
    // Unaligned start.
    if (n > 1) {
      EXPECT_EQ(csum_add(0, b.data() + 1, n - 1), reference_sum(b.data() + 1, n - 1));
    }
  }
}

TEST(Checksum, AllOnesDoNotOverflow) {
  const Bytes b(65535, 0xff);
  EXPECT_EQ(csum_add(0, b.data(), b.size()), reference_sum(b.data(), b.size()));
  EXPECT_EQ(csum_add(0xffffffff, b.data(), b.size()) % 0xffff,
            (uint64_t(0xffffffff) + reference_sum(b.data(), b.size())) % 0xffff);
}

TEST(Checksum, Ipv4HeaderKnownValue) {
  // A commonly used example header whose checksum field holds b861.
  Bytes hdr = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
               0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_EQ(ipv4_header_checksum(hdr.data(), hdr.size()), 0xb861);
  // Computed as if the field were zero: its current content does not matter.
  hdr[10] = hdr[11] = 0x55;
  EXPECT_EQ(ipv4_header_checksum(hdr.data(), hdr.size()), 0xb861);
}

TEST(Checksum, PseudoHeaderMatchesTheRfcLayout) {
  std::mt19937 rng(768);
  for (int i = 0; i < 100; ++i) {
    const Bytes s = random_bytes(rng, 16);
    const Bytes d = random_bytes(rng, 16);
    const uint32_t len = rng() % 70000;
    // IPv4 (RFC 768): src, dst, zero, protocol, 16-bit length.
    {
      Bytes ph(s.begin(), s.begin() + 4);
      ph.insert(ph.end(), d.begin(), d.begin() + 4);
      ph.insert(ph.end(), {uint8_t(0), kProtoUdp, uint8_t(len >> 8), uint8_t(len)});
      const IpAddr src = IpAddr::v4(load_be32(s.data()));
      const IpAddr dst = IpAddr::v4(load_be32(d.data()));
      EXPECT_EQ(pseudo_header_sum(src, dst, kProtoUdp, len & 0xffff),
                reference_sum(ph.data(), ph.size()));
    }
    // IPv6 (RFC 8200 8.1): src, dst, 32-bit length, three zeros, next header.
    {
      Bytes ph = s;
      ph.insert(ph.end(), d.begin(), d.end());
      ph.insert(ph.end(), {uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8), uint8_t(len),
                           uint8_t(0), uint8_t(0), uint8_t(0), kProtoTcp});
      EXPECT_EQ(pseudo_header_sum(IpAddr::v6(s.data()), IpAddr::v6(d.data()), kProtoTcp, len),
                reference_sum(ph.data(), ph.size()));
    }
  }
}

TEST(Checksum, L4ChecksumVerifiesToAllOnes) {
  std::mt19937 rng(793);
  for (size_t n : {20u, 21u, 63u, 64u, 1500u}) {
    Bytes seg = random_bytes(rng, n);
    const IpAddr src = IpAddr::v4(198, 18, 0, 1);
    const IpAddr dst = IpAddr::v4(198, 18, 100, 1);
    store_be16(seg.data() + 16, l4_checksum(src, dst, kProtoTcp, seg.data(), n, 16));
    // A receiver sums everything including the checksum and expects all ones.
    const uint32_t all =
        csum_add(pseudo_header_sum(src, dst, kProtoTcp, uint32_t(n)), seg.data(), n);
    EXPECT_EQ(all, 0xffffu) << n;
  }
}

TEST(Checksum, IncrementalMatchesFullRecomputation) {
  std::mt19937 rng(1624);
  for (int iter = 0; iter < 2000; ++iter) {
    const size_t n = 2 * (2 + rng() % 200);
    Bytes b = random_bytes(rng, n);
    const uint16_t before = csum_fold(csum_add(0, b.data(), n));
    // Replace a random even-aligned run of words.
    const size_t off = 2 * (rng() % (n / 2));
    const size_t len = 2 * (1 + rng() % ((n - off) / 2));
    const Bytes old(b.begin() + off, b.begin() + off + len);
    for (size_t i = 0; i < len; ++i)
      b[off + i] = uint8_t(rng());
    const uint16_t full = csum_fold(csum_add(0, b.data(), n));
    EXPECT_EQ(csum_replace(before, old.data(), b.data() + off, len), full) << iter;
    if (len == 2) {
      EXPECT_EQ(csum_replace16(before, load_be16(old.data()), load_be16(b.data() + off)), full);
    }
  }
}

TEST(Checksum, DiffAppliesToSeveralChecksums) {
  std::mt19937 rng(2);
  for (int iter = 0; iter < 500; ++iter) {
    Bytes a = random_bytes(rng, 40);
    Bytes b = random_bytes(rng, 60);
    const uint16_t ca = csum_fold(csum_add(0, a.data(), a.size()));
    const uint16_t cb = csum_fold(csum_add(0, b.data(), b.size()));
    // The same 8 bytes live in both buffers (as an address sits in a header and a
    // pseudo-header): one difference updates both.
    std::memcpy(b.data() + 10, a.data() + 4, 8);
    const uint16_t cb2 = csum_fold(csum_add(0, b.data(), b.size()));
    const Bytes fresh = random_bytes(rng, 8);
    const uint32_t diff = csum_diff(0, a.data() + 4, fresh.data(), 8);
    std::memcpy(a.data() + 4, fresh.data(), 8);
    std::memcpy(b.data() + 10, fresh.data(), 8);
    EXPECT_EQ(csum_apply(ca, diff), csum_fold(csum_add(0, a.data(), a.size())));
    EXPECT_EQ(csum_apply(cb2, diff), csum_fold(csum_add(0, b.data(), b.size())));
    EXPECT_EQ(csum_apply(cb, 0), cb);
  }
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc_of(""), 0x00000000u);
  EXPECT_EQ(crc_of("123456789"), 0xe3069283u);  // the CRC catalogue's check value
  // RFC 3720 appendix B.4.
  const Bytes zeros(32, 0x00);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  const Bytes ones(32, 0xff);
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62a8ab43u);
  Bytes up(32), down(32);
  for (uint8_t i = 0; i < 32; ++i) {
    up[i] = i;
    down[i] = uint8_t(31 - i);
  }
  EXPECT_EQ(crc32c(up.data(), up.size()), 0x46dd794eu);
  EXPECT_EQ(crc32c(down.data(), down.size()), 0x113fdb5cu);
}

TEST(Crc32c, SlicingMatchesBitwiseAtEveryLengthAndAlignment) {
  std::mt19937 rng(3720);
  const Bytes b = random_bytes(rng, 300);
  for (size_t start = 0; start < 8; ++start) {
    for (size_t n = 0; n + start <= b.size(); n += 1 + n / 16) {
      EXPECT_EQ(crc32c(b.data() + start, n), reference_crc32c(b.data() + start, n))
          << start << "+" << n;
    }
  }
}

TEST(Crc32c, StoredLeastSignificantByteFirst) {
  uint8_t field[4];
  store_crc32c(field, 0xe3069283);
  EXPECT_EQ(field[0], 0x83);
  EXPECT_EQ(field[3], 0xe3);
  EXPECT_EQ(load_crc32c(field), 0xe3069283u);
}

}  // namespace
}  // namespace magline::dp
