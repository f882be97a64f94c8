// SYN cookies, TCP option reading and the SYN proxy's segment translations, in isolation.
#include "dataplane/syn_cookie.hpp"

#include <gtest/gtest.h>

#include <set>

#include "dataplane/bytes.hpp"
#include "dataplane/syn_proxy.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::dp {
namespace {

using test::Bytes;

FlowKey key(uint16_t sport) {
  FlowKey k;
  k.src = parse_ip("198.18.10.1")->bytes;
  k.dst = parse_ip("198.18.100.1")->bytes;
  k.sport = sport;
  k.dport = 80;
  k.proto = kProtoTcp;
  return k;
}

// The test vector of the SipHash paper (appendix A): key 00..0f, message 00..0e.
TEST(SipHash, MatchesThePapersVector) {
  uint8_t msg[15];
  for (uint8_t i = 0; i < 15; ++i) msg[i] = i;
  EXPECT_EQ(siphash24(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, msg, 15),
            0xa129ca6149be45e5ull);
}

TEST(SynCookies, ACookieChecksForItsConnectionOnly) {
  const SynCookies c(1, 2);
  const uint32_t cookie = c.make(key(40000), 5000, 3, 100'000);
  EXPECT_EQ(c.check(key(40000), 5000, cookie, 100'000), 3);
  EXPECT_EQ(c.check(key(40001), 5000, cookie, 100'000), -1);  // another port
  EXPECT_EQ(c.check(key(40000), 5001, cookie, 100'000), -1);  // another ISN
  EXPECT_EQ(c.check(key(40000), 5000, cookie ^ 0x100, 100'000), -1);
  EXPECT_EQ(SynCookies(1, 3).check(key(40000), 5000, cookie, 100'000), -1);  // another key
}

TEST(SynCookies, ValidForThisPeriodAndTheNext) {
  const SynCookies c(7, 9);
  constexpr uint64_t kPeriod = uint64_t(1) << SynCookies::kPeriodShift;
  const uint64_t made = 10 * kPeriod + 5;
  const uint32_t cookie = c.make(key(1), 1, 1, made);
  EXPECT_EQ(c.check(key(1), 1, cookie, made + kPeriod - 6), 1);
  EXPECT_EQ(c.check(key(1), 1, cookie, made + 2 * kPeriod - 6), 1);
  EXPECT_EQ(c.check(key(1), 1, cookie, made + 2 * kPeriod), -1);
  EXPECT_EQ(c.check(key(1), 1, cookie, made - kPeriod), -1);  // not from the future
}

TEST(SynCookies, CookiesDifferAcrossConnections) {
  const SynCookies c(1, 2);
  std::set<uint32_t> seen;
  for (uint16_t p = 1; p <= 1000; ++p) seen.insert(c.make(key(p), 77, 0, 0) >> 3);
  EXPECT_GT(seen.size(), 995u);
}

TEST(SynCookies, MssIndexRoundsDown) {
  EXPECT_EQ(kCookieMss[cookie_mss_index(1460, Family::v4)], 1460);
  EXPECT_EQ(kCookieMss[cookie_mss_index(9000, Family::v4)], 1460);
  EXPECT_EQ(kCookieMss[cookie_mss_index(1439, Family::v4)], 1220);
  EXPECT_EQ(kCookieMss[cookie_mss_index(100, Family::v4)], 536);
  EXPECT_EQ(kCookieMss[cookie_mss_index(0, Family::v4)], 536);
  EXPECT_EQ(kCookieMss[cookie_mss_index(0, Family::v6)], 1220);
}

TEST(SynCookies, OptionsTravelInTheTimestamp) {
  const uint32_t ts = cookie_tsval(123456789, 9, true);
  EXPECT_EQ(ts & ~0x3fu, 123456789u & ~0x3fu);
  EXPECT_EQ(cookie_options(ts).wscale, 9);
  EXPECT_TRUE(cookie_options(ts).sack_permitted);
  EXPECT_EQ(cookie_options(cookie_tsval(0, kNoWscale, false)).wscale, kNoWscale);
  EXPECT_FALSE(cookie_options(cookie_tsval(0, kNoWscale, false)).sack_permitted);
}

TEST(TcpOptions, ReadsWhatASynCarries) {
  Bytes h(20, 0);
  const Bytes opts{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 1, 3, 3, 15};
  h.insert(h.end(), opts.begin(), opts.end());
  const TcpOptions o = read_tcp_options(h.data(), h.size());
  EXPECT_EQ(o.mss, 1460);
  EXPECT_TRUE(o.sack_permitted);
  EXPECT_TRUE(o.timestamps);
  EXPECT_EQ(o.tsval, 7u);
  EXPECT_EQ(o.tsecr, 9u);
  EXPECT_EQ(o.wscale, 14);  // capped (RFC 7323 2.3)
  const TimestampAt at = find_timestamps(h.data(), h.size());
  EXPECT_EQ(at.tsval, 28);
  EXPECT_EQ(at.tsecr, 32);
}

TEST(TcpOptions, MalformedOptionsEndTheReading) {
  Bytes h(20, 0);
  const Bytes opts{2, 4, 0x05, 0xb4, 8, 0, 1, 1, 3, 3, 7, 0};  // length 0: stop
  h.insert(h.end(), opts.begin(), opts.end());
  const TcpOptions o = read_tcp_options(h.data(), h.size());
  EXPECT_EQ(o.mss, 1460);
  EXPECT_FALSE(o.timestamps);
  EXPECT_EQ(o.wscale, kNoWscale);
  Bytes cut(20, 0);
  cut.insert(cut.end(), {8, 10, 0, 0});  // runs past the header
  EXPECT_FALSE(read_tcp_options(cut.data(), cut.size()).timestamps);
  EXPECT_EQ(find_sack(cut.data(), cut.size()).off, 0);
}

// Options at odd offsets (a window scale before the timestamps, no NOPs): the checksum still
// agrees with a full recomputation after the translation.
TEST(SynProxyTranslation, FieldsAtOddOffsetsKeepTheChecksumRight) {
  ProxyFlow f{};
  f.client_options = pack(ClientOptions{7, true, true, 3});
  f.backend_wscale = 7;
  f.seq_delta = 0x10203040;
  f.ts_delta = 0x01010101;
  f.established = 1;
  Bytes opts{3, 3, 7, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 5, 10, 0, 0, 0, 5, 0, 0, 0, 9};
  const Bytes frame = test::Packet().eth(test::kClientMac, test::kLbMac)
                          .ipv4("198.18.10.1", "198.18.100.1").tcp(40000, 80, kTcpAck)
                          .tcp_options(opts).payload("x").bytes();
  Bytes out = frame;
  Parsed p;
  ASSERT_EQ(parse({out.data(), out.size()}, p), DropReason::none);
  proxy_to_backend({out.data(), out.size()}, p, f);
  EXPECT_EQ(test::checksum_errors({out.data(), out.size()}), "");
  const uint8_t* t = out.data() + p.l4_off;
  EXPECT_EQ(load_be32(t + 8), 2000u + 0x10203040);
  EXPECT_EQ(load_be32(t + 20 + 3 + 6), 2u + 0x01010101);       // TSecr
  EXPECT_EQ(load_be32(t + 20 + 13 + 2), 5u + 0x10203040);      // SACK left edge
  EXPECT_EQ(load_be32(t + 20 + 13 + 6), 9u + 0x10203040);      // right edge
  Bytes back = out;
  proxy_to_client({back.data(), back.size()}, p, f);
  EXPECT_EQ(test::checksum_errors({back.data(), back.size()}), "");
}

}  // namespace
}  // namespace magline::dp
