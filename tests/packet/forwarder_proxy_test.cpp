// Full-NAT's SYN proxy through the worker: cookies for SYNs, connections opened by returned
// cookies, the client's first data segment held for the backend, and every segment after
// translated both ways (sequence numbers, SACK blocks, timestamps, windows).
#include <gtest/gtest.h>

#include "dataplane/bytes.hpp"
#include "dataplane/syn_cookie.hpp"
#include "dataplane/syn_proxy.hpp"
#include "tests/packet/forwarder_cases.hpp"
#include "tests/packet/harness.hpp"

namespace magline::test {
namespace {

using dp::DropReason;
using dp::ForwardMode;
using dp::Protocol;
using dp::kTcpAck;
using dp::kTcpRst;
using dp::kTcpSyn;

constexpr const char* kVip = "198.18.100.1";
constexpr const char* kBackend = "198.18.1.10";

// The TCP header of a frame as it left.
struct Tcp {
  uint16_t sport = 0, dport = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  dp::TcpOptions options;
  std::string payload;
  dp::IpAddr src, dst;
};

Tcp tcp_of(const Bytes& frame) {
  dp::Parsed p;
  EXPECT_EQ(dp::parse({frame.data(), frame.size()}, p), DropReason::none);
  EXPECT_EQ(checksum_errors({frame.data(), frame.size()}), "");
  const uint8_t* t = frame.data() + p.l4_off;
  Tcp out;
  out.sport = p.key.sport;
  out.dport = p.key.dport;
  out.seq = dp::load_be32(t + 4);
  out.ack = dp::load_be32(t + 8);
  out.flags = t[13];
  out.window = dp::load_be16(t + 14);
  out.options = dp::read_tcp_options(t, size_t(t[12] >> 4) * 4);
  out.payload.assign(frame.begin() + p.payload_off, frame.begin() + p.l3_end);
  out.src = p.key.src_addr();
  out.dst = p.key.dst_addr();
  return out;
}

Bytes be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}
// SYN options as Linux sends them: MSS, SACK permitted, timestamps, NOP, window scale.
Bytes syn_options(uint16_t mss, uint32_t tsval, uint8_t wscale) {
  Bytes o{2, 4, uint8_t(mss >> 8), uint8_t(mss), 4, 2, 8, 10};
  for (uint8_t b : be32(tsval)) o.push_back(b);
  for (uint8_t b : be32(0)) o.push_back(b);
  o.insert(o.end(), {1, 3, 3, wscale});
  return o;
}
Bytes ts_option(uint32_t tsval, uint32_t tsecr) {
  Bytes o{1, 1, 8, 10};
  for (uint8_t b : be32(tsval)) o.push_back(b);
  for (uint8_t b : be32(tsecr)) o.push_back(b);
  return o;
}

class SynProxy : public ::testing::Test {
 protected:
  SynProxy() : h(config()) {}
  static dp::ForwarderConfig config() {
    dp::ForwarderConfig c;
    c.cookie_key = {0x0123456789abcdefull, 0xfedcba9876543210ull};
    c.syn_proxy_threshold = 5;
    return c;
  }
  void web(dp::SynProxy mode) {
    dp::Service s = service("web", kVip, 80, Protocol::tcp, ForwardMode::full_nat,
                            {{kBackend, 8080}});
    s.syn_proxy = mode;
    h.add(s);
    h.neighbor(kBackend, kBackendMac);
  }
  Packet from_client(uint16_t sport, uint8_t flags) {
    return Packet().eth(kRouterMac, kLbMac).ipv4(kClient, kVip).tcp(sport, 80, flags);
  }
  Packet from_backend(uint16_t snat, uint8_t flags) {
    return Packet().eth(kBackendMac, kLbMac).ipv4(kBackend, kLbIp).tcp(8080, snat, flags);
  }
  const dp::ForwarderCounters& counters() { return h.forwarder().counters(); }

  // The handshake with Magline, then Magline's with the backend: returns the cookie and the
  // source port. The client offers window scale 7 and timestamps; the backend scale `bws`.
  struct Opened {
    uint32_t cookie = 0;
    uint32_t our_tsval = 0;
    uint16_t snat = 0;
  };
  Opened open(uint16_t sport, uint8_t bws = 7) {
    Opened o;
    const Outcome synack =
        h.run(from_client(sport, kTcpSyn).seq(5000).tcp_options(syn_options(1460, 777, 7))
                  .bytes());
    EXPECT_EQ(synack.verdict, Verdict::tx) << to_string(synack);
    const Tcp sa = tcp_of(synack.frame);
    o.cookie = sa.seq;
    o.our_tsval = sa.options.tsval;
    const Outcome syn = h.run(from_client(sport, kTcpAck).seq(5001).ack(o.cookie + 1)
                                  .tcp_options(ts_option(778, o.our_tsval)).bytes());
    EXPECT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
    o.snat = tcp_of(syn.frame).sport;
    Bytes opts = syn_options(1400, 4444, bws);
    std::copy_n(be32(778).begin(), 4, opts.begin() + 12);  // TSecr: the client's TSval
    const Outcome ack = h.run(from_backend(o.snat, kTcpSyn | kTcpAck).seq(90000).ack(5001)
                                  .tcp_options(opts).bytes());
    EXPECT_EQ(ack.verdict, Verdict::tx) << to_string(ack);
    return o;
  }
  Harness h;
};

TEST_F(SynProxy, AnswersTheSynWithACookieAndKeepsNothing) {
  web(dp::SynProxy::on);
  const Outcome out = h.run(from_client(40000, kTcpSyn).seq(5000)
                                .tcp_options(syn_options(1460, 777, 7)).bytes());
  ASSERT_EQ(out.verdict, Verdict::tx) << to_string(out);
  EXPECT_EQ(Bytes(out.frame.begin(), out.frame.begin() + 6),
            Bytes(kRouterMac.begin(), kRouterMac.end()));  // back the way it came
  const Tcp t = tcp_of(out.frame);
  EXPECT_EQ(dp::to_string(t.src), kVip);
  EXPECT_EQ(dp::to_string(t.dst), kClient);
  EXPECT_EQ(t.sport, 80);
  EXPECT_EQ(t.dport, 40000);
  EXPECT_EQ(t.flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(t.ack, 5001u);
  EXPECT_EQ(t.options.mss, 1460);  // the port's MTU less the headers
  EXPECT_TRUE(t.options.timestamps);
  EXPECT_EQ(t.options.tsecr, 777u);
  EXPECT_TRUE(t.options.sack_permitted);
  EXPECT_EQ(t.options.wscale, dp::kProxyWscale);
  const dp::EchoedOptions echoed = dp::cookie_options(t.options.tsval);
  EXPECT_EQ(echoed.wscale, 7);
  EXPECT_TRUE(echoed.sack_permitted);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 0u);
  EXPECT_EQ(counters().syn_cookies_sent, 1u);
}

TEST_F(SynProxy, AReturnedCookieOpensTheConnectionToTheBackend) {
  web(dp::SynProxy::on);
  const Tcp sa = tcp_of(h.run(from_client(40000, kTcpSyn).seq(5000)
                                  .tcp_options(syn_options(1460, 777, 7)).bytes()).frame);
  const Outcome out = h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1)
                                .tcp_options(ts_option(778, sa.options.tsval)).bytes());
  ASSERT_EQ(out.verdict, Verdict::tx) << to_string(out);
  const Tcp syn = tcp_of(out.frame);
  EXPECT_EQ(dp::to_string(syn.src), kLbIp);
  EXPECT_EQ(dp::to_string(syn.dst), kBackend);
  EXPECT_EQ(syn.dport, 8080);
  EXPECT_EQ(syn.flags, kTcpSyn);
  EXPECT_EQ(syn.seq, 5000u);  // the client's ISN
  EXPECT_EQ(syn.options.mss, 1460);
  EXPECT_EQ(syn.options.wscale, 7);  // the client's own
  EXPECT_TRUE(syn.options.sack_permitted);
  EXPECT_EQ(syn.options.tsval, 778u);
  EXPECT_EQ(counters().syn_cookies_valid, 1u);
  EXPECT_EQ(counters().new_connections, 1u);
}

TEST_F(SynProxy, HoldsTheFirstDataAndTranslatesBothWays) {
  web(dp::SynProxy::on);
  const Outcome s1 = h.run(from_client(40000, kTcpSyn).seq(5000)
                               .tcp_options(syn_options(1460, 777, 7)).bytes());
  const Tcp sa = tcp_of(s1.frame);
  const uint32_t cookie = sa.seq, ours = sa.options.tsval;
  const Outcome s2 = h.run(from_client(40000, kTcpAck).seq(5001).ack(cookie + 1)
                               .tcp_options(ts_option(778, ours)).bytes());
  const uint16_t snat = tcp_of(s2.frame).sport;
  // The request before the backend has answered: held.
  const Outcome get = h.run(from_client(40000, kTcpAck).seq(5001).ack(cookie + 1)
                                .tcp_options(ts_option(779, ours)).payload("GET /").bytes());
  EXPECT_EQ(get.verdict, Verdict::held) << to_string(get);
  EXPECT_EQ(counters().syn_proxy_held, 1u);

  Bytes opts = syn_options(1400, 4444, 7);
  std::copy_n(be32(778).begin(), 4, opts.begin() + 12);
  const Outcome ack = h.run(from_backend(snat, kTcpSyn | kTcpAck).seq(90000).ack(5001)
                                .tcp_options(opts).bytes());
  ASSERT_EQ(ack.verdict, Verdict::tx) << to_string(ack);
  const Tcp a = tcp_of(ack.frame);
  EXPECT_EQ(dp::to_string(a.src), kLbIp);
  EXPECT_EQ(dp::to_string(a.dst), kBackend);
  EXPECT_EQ(a.sport, snat);
  EXPECT_EQ(a.flags, kTcpAck);
  EXPECT_EQ(a.seq, 5001u);
  EXPECT_EQ(a.ack, 90001u);
  EXPECT_EQ(a.options.tsval, 779u);  // the client's latest
  EXPECT_EQ(a.options.tsecr, 4444u);
  EXPECT_EQ(Bytes(ack.frame.begin(), ack.frame.begin() + 6),
            Bytes(kBackendMac.begin(), kBackendMac.end()));
  ASSERT_EQ(h.released.size(), 1u);
  ASSERT_EQ(h.released[0].verdict, Verdict::tx);
  const Tcp g = tcp_of(h.released[0].frame);
  EXPECT_EQ(g.payload, "GET /");
  EXPECT_EQ(g.sport, snat);
  EXPECT_EQ(g.ack, 90001u);       // cookie + 1 in the backend's numbers
  EXPECT_EQ(g.options.tsecr, 4444u);  // Magline's TSval in the backend's clock
  EXPECT_EQ(counters().syn_proxy_completed, 1u);

  // The answer, in the client's numbers.
  const Outcome ok = h.run(from_backend(snat, kTcpAck).seq(90001).ack(5006).window(1000)
                               .tcp_options(ts_option(4450, 779)).payload("200 OK").bytes());
  ASSERT_EQ(ok.verdict, Verdict::tx) << to_string(ok);
  const Tcp o = tcp_of(ok.frame);
  EXPECT_EQ(dp::to_string(o.src), kVip);
  EXPECT_EQ(o.sport, 80);
  EXPECT_EQ(dp::to_string(o.dst), kClient);
  EXPECT_EQ(o.dport, 40000);
  EXPECT_EQ(o.seq, cookie + 1);
  EXPECT_EQ(o.ack, 5006u);
  EXPECT_EQ(o.options.tsval, ours + 6);
  EXPECT_EQ(o.window, 1000);  // both scale by 7
  EXPECT_EQ(o.payload, "200 OK");

  // A SACK block from the client, in the backend's numbers.
  Bytes sack{1, 1, 5, 10};
  for (uint8_t b : be32(cookie + 100)) sack.push_back(b);
  for (uint8_t b : be32(cookie + 200)) sack.push_back(b);
  const Outcome s = h.run(from_client(40000, kTcpAck).seq(5006).ack(cookie + 7)
                              .tcp_options(sack).bytes());
  ASSERT_EQ(s.verdict, Verdict::tx) << to_string(s);
  const uint8_t* t = s.frame.data() + 14 + 20;
  EXPECT_EQ(dp::load_be32(t + 8), 90007u);
  EXPECT_EQ(dp::load_be32(t + 24), 90100u);
  EXPECT_EQ(dp::load_be32(t + 28), 90200u);
  EXPECT_EQ(checksum_errors({s.frame.data(), s.frame.size()}), "");
}

TEST_F(SynProxy, OverIpv6) {
  dp::Service s = service("web6", "2001:db8:100::1", 80, Protocol::tcp, ForwardMode::full_nat,
                          {{"2001:db8::10", 8080}});
  s.syn_proxy = dp::SynProxy::on;
  h.add(s);
  h.neighbor("2001:db8::10", kBackendMac);
  auto client = [](uint8_t flags) {
    return Packet().eth(kRouterMac, kLbMac).ipv6("2001:db8:10::1", "2001:db8:100::1")
        .tcp(40000, 80, flags);
  };
  const Outcome synack =
      h.run(client(kTcpSyn).seq(7000).tcp_options(syn_options(1440, 50, 9)).bytes());
  ASSERT_EQ(synack.verdict, Verdict::tx) << to_string(synack);
  const Tcp sa = tcp_of(synack.frame);
  EXPECT_EQ(dp::to_string(sa.src), "2001:db8:100::1");
  EXPECT_EQ(sa.options.mss, 1440);  // 1500 less 60
  const Outcome syn = h.run(client(kTcpAck).seq(7001).ack(sa.seq + 1)
                                .tcp_options(ts_option(51, sa.options.tsval)).bytes());
  ASSERT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
  const Tcp s1 = tcp_of(syn.frame);
  EXPECT_EQ(dp::to_string(s1.src), kLbIp6);
  EXPECT_EQ(dp::to_string(s1.dst), "2001:db8::10");
  EXPECT_EQ(s1.options.mss, 1440);
  EXPECT_EQ(s1.options.wscale, 9);
  Bytes opts = syn_options(1440, 999, 7);
  std::copy_n(be32(51).begin(), 4, opts.begin() + 12);
  const Outcome ack = h.run(Packet().eth(kBackendMac, kLbMac).ipv6("2001:db8::10", kLbIp6)
                                .tcp(8080, s1.sport, kTcpSyn | kTcpAck).seq(1).ack(7001)
                                .tcp_options(opts).bytes());
  ASSERT_EQ(ack.verdict, Verdict::tx) << to_string(ack);
  EXPECT_EQ(tcp_of(ack.frame).ack, 2u);
  const Outcome data = h.run(Packet().eth(kBackendMac, kLbMac).ipv6("2001:db8::10", kLbIp6)
                                 .tcp(8080, s1.sport, kTcpAck).seq(2).ack(7001)
                                 .tcp_options(ts_option(1000, 51)).payload("hi").bytes());
  ASSERT_EQ(data.verdict, Verdict::tx) << to_string(data);
  const Tcp d = tcp_of(data.frame);
  EXPECT_EQ(d.seq, sa.seq + 1);
  EXPECT_EQ(d.options.tsval, sa.options.tsval + 1);
  EXPECT_EQ(dp::to_string(d.dst), "2001:db8:10::1");
}

TEST_F(SynProxy, WindowsTranslateBetweenScales) {
  web(dp::SynProxy::on);
  const Opened c = open(40000, 2);  // the backend scales by 2, the client was told 7
  const Outcome ok = h.run(from_backend(c.snat, kTcpAck).seq(90001).ack(5001).window(1000)
                               .tcp_options(ts_option(4450, 778)).bytes());
  ASSERT_EQ(ok.verdict, Verdict::tx) << to_string(ok);
  EXPECT_EQ(tcp_of(ok.frame).window, (1000 << 2) >> 7);
}

TEST_F(SynProxy, AClientWithoutTimestampsKeepsItsMssOnly) {
  web(dp::SynProxy::on);
  const Outcome out = h.run(from_client(40000, kTcpSyn).seq(5000)
                                .tcp_options({2, 4, 0x05, 0x00, 1, 3, 3, 7}).bytes());
  const Tcp sa = tcp_of(out.frame);
  EXPECT_EQ(sa.options.mss, 1460);
  EXPECT_FALSE(sa.options.timestamps);
  EXPECT_FALSE(sa.options.sack_permitted);
  EXPECT_EQ(sa.options.wscale, dp::kNoWscale);  // its scale would not survive the cookie
  const Outcome syn = h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).bytes());
  ASSERT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
  const Tcp s = tcp_of(syn.frame);
  EXPECT_EQ(s.options.mss, 1220);  // 1280 rounded down to a cookie's MSS
  EXPECT_FALSE(s.options.timestamps);
  EXPECT_EQ(s.options.wscale, dp::kNoWscale);
}

TEST_F(SynProxy, AnAckWithoutAValidCookieIsDroppedWhileEngaged) {
  web(dp::SynProxy::on);
  const Outcome out = h.run(from_client(40000, kTcpAck).seq(5001).ack(12345).bytes());
  EXPECT_EQ(out.verdict, Verdict::drop);
  EXPECT_EQ(out.reason, DropReason::syn_cookie_invalid);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 0u);
}

TEST_F(SynProxy, ACookieExpiresAfterTwoPeriods) {
  web(dp::SynProxy::on);
  const Tcp sa = tcp_of(h.run(from_client(40000, kTcpSyn).seq(5000).bytes(), 1000).frame);
  const uint64_t later = 1000 + 2 * (uint64_t(1) << dp::SynCookies::kPeriodShift);
  const Outcome out =
      h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).bytes(), later);
  EXPECT_EQ(out.reason, DropReason::syn_cookie_invalid);
}

TEST_F(SynProxy, TheBackendsResetReachesTheClientInItsNumbers) {
  web(dp::SynProxy::on);
  const Tcp sa = tcp_of(h.run(from_client(40000, kTcpSyn).seq(5000).bytes()).frame);
  const Outcome syn = h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).bytes());
  const uint16_t snat = tcp_of(syn.frame).sport;
  const Outcome rst = h.run(from_backend(snat, kTcpRst | kTcpAck).seq(0).ack(5001).bytes());
  ASSERT_EQ(rst.verdict, Verdict::tx) << to_string(rst);
  const Tcp r = tcp_of(rst.frame);
  EXPECT_EQ(dp::to_string(r.dst), kClient);
  EXPECT_EQ(r.seq, sa.seq + 1);
  EXPECT_TRUE(r.flags & kTcpRst);
}

TEST_F(SynProxy, ALostSynIsResentOnTheClientsNextSegment) {
  web(dp::SynProxy::on);
  const Tcp sa = tcp_of(h.run(from_client(40000, kTcpSyn).seq(5000).bytes()).frame);
  h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).bytes());
  h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).payload("GET").bytes());
  const Outcome again =
      h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).payload("GET").bytes());
  ASSERT_EQ(again.verdict, Verdict::tx) << to_string(again);
  const Tcp s = tcp_of(again.frame);
  EXPECT_EQ(s.flags, kTcpSyn);
  EXPECT_EQ(s.seq, 5000u);
  EXPECT_EQ(dp::to_string(s.dst), kBackend);
}

// `auto`: SYNs go to the backend until a second ends with more unfinished handshakes than the
// threshold (5 here); then cookies through the next second, and on while each second ends
// above it; a quiet second lets go.
TEST_F(SynProxy, AutoEngagesPastTheThresholdAndLetsGo) {
  web(dp::SynProxy::automatic);
  auto to = [&](uint16_t sport, uint64_t now) {
    return dp::to_string(tcp_of(h.run(from_client(sport, kTcpSyn).seq(5000).bytes(), now)
                                    .frame).dst);
  };
  for (uint16_t i = 0; i < 7; ++i) EXPECT_EQ(to(uint16_t(41000 + i), 1000 + i), kBackend) << i;
  for (uint16_t i = 0; i < 6; ++i) EXPECT_EQ(to(uint16_t(41100 + i), 2000 + i), kClient) << i;
  EXPECT_EQ(to(41200, 3000), kClient);   // the second before ended above the threshold
  EXPECT_EQ(to(41201, 4000), kBackend);  // ... and this one's did not
  EXPECT_EQ(counters().syn_cookies_sent, 7u);
}

// A SYN whose first copy opened an entry before the proxy engaged: once engaged, its repeat
// is answered with a cookie all the same (no lookup), and the returned cookie opens a proxied
// connection in place of the half-open entry; the backend first chosen is kept.
TEST_F(SynProxy, ARepeatedSynWhileEngagedGetsACookieThatSupersedesItsEntry) {
  web(dp::SynProxy::automatic);
  const Outcome first = h.run(from_client(41000, kTcpSyn).seq(5000).bytes(), 1000);
  ASSERT_EQ(dp::to_string(tcp_of(first.frame).dst), kBackend);
  for (uint16_t i = 1; i < 7; ++i) h.run(from_client(uint16_t(41000 + i), kTcpSyn).bytes(), 1000);
  const Outcome again = h.run(from_client(41000, kTcpSyn).seq(5000).bytes(), 2000);
  ASSERT_EQ(again.verdict, Verdict::tx) << to_string(again);
  const Tcp sa = tcp_of(again.frame);
  ASSERT_EQ(dp::to_string(sa.dst), kClient);
  ASSERT_EQ(sa.flags, kTcpSyn | kTcpAck);
  const Outcome ack = h.run(from_client(41000, kTcpAck).seq(5001).ack(sa.seq + 1).bytes(), 2000);
  ASSERT_EQ(ack.verdict, Verdict::tx) << to_string(ack);
  const Tcp syn = tcp_of(ack.frame);
  EXPECT_EQ(dp::to_string(syn.dst), kBackend);
  EXPECT_EQ(syn.flags, kTcpSyn);  // Magline's own SYN: a proxied connection
  EXPECT_EQ(counters().syn_cookies_valid, 1u);
  // The backend's answer to it completes the handshake.
  const Outcome done = h.run(from_backend(syn.sport, kTcpSyn | kTcpAck).seq(90000).ack(5001)
                                 .bytes(), 2000);
  ASSERT_EQ(done.verdict, Verdict::tx) << to_string(done);
  EXPECT_EQ(tcp_of(done.frame).flags, kTcpAck);
  EXPECT_EQ(counters().syn_proxy_completed, 1u);
}

// An ACK to a half-open entry that is not a returned cookie follows the entry as ever, engaged
// or not (the backend's own handshake).
TEST_F(SynProxy, AnAckToAHalfOpenEntryWithoutACookieFollowsIt) {
  web(dp::SynProxy::automatic);
  const Outcome first = h.run(from_client(41000, kTcpSyn).seq(5000).bytes(), 1000);
  const uint16_t snat = tcp_of(first.frame).sport;
  for (uint16_t i = 1; i < 7; ++i) h.run(from_client(uint16_t(41000 + i), kTcpSyn).bytes(), 1000);
  ASSERT_EQ(h.run(from_backend(snat, kTcpSyn | kTcpAck).seq(90000).ack(5001).bytes(), 2000)
                .verdict, Verdict::tx);
  const Outcome ack = h.run(from_client(41000, kTcpAck).seq(5001).ack(90001).bytes(), 2000);
  ASSERT_EQ(ack.verdict, Verdict::tx) << to_string(ack);
  EXPECT_EQ(tcp_of(ack.frame).sport, snat);
  EXPECT_EQ(tcp_of(ack.frame).flags, kTcpAck);
  EXPECT_EQ(counters().syn_cookies_valid, 0u);
}

// A backend that never answers: the connection's entries are half-open and lapse after the SYN
// timeout (30 s); the client's next segment still returns a valid cookie and opens it again.
TEST_F(SynProxy, ABackendThatNeverAnswersKeepsNothing) {
  web(dp::SynProxy::on);
  const Tcp sa = tcp_of(h.run(from_client(40000, kTcpSyn).seq(5000).bytes(), 1000).frame);
  ASSERT_EQ(h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1).bytes(), 1000).verdict,
            Verdict::tx);
  EXPECT_EQ(h.forwarder().flows().stats().occupied, 3u);  // forward, reply, ProxyFlow
  const Outcome again = h.run(from_client(40000, kTcpAck).seq(5001).ack(sa.seq + 1)
                                  .payload("GET").bytes(), 32'000);
  ASSERT_EQ(again.verdict, Verdict::tx) << to_string(again);
  EXPECT_EQ(tcp_of(again.frame).flags, kTcpSyn);
  EXPECT_EQ(counters().syn_cookies_valid, 2u);  // opened afresh, not resent
}

// A burst of SYN-ACKs that each complete a handshake with a held segment gives two frames
// apiece: all of them leave, in device bursts of at most 64.
TEST_F(SynProxy, ABurstOfCompletionsSendsEveryFrame) {
  web(dp::SynProxy::on);
  std::vector<Bytes> synacks;
  for (uint16_t i = 0; i < dp::kMaxBurst; ++i) {
    const uint16_t sport = uint16_t(42000 + i);
    const Tcp sa = tcp_of(h.run(from_client(sport, kTcpSyn).seq(5000).bytes()).frame);
    const Outcome syn = h.run(from_client(sport, kTcpAck).seq(5001).ack(sa.seq + 1).bytes());
    ASSERT_EQ(syn.verdict, Verdict::tx);
    ASSERT_EQ(h.run(from_client(sport, kTcpAck).seq(5001).ack(sa.seq + 1).payload("GET")
                        .bytes()).verdict, Verdict::held);
    synacks.push_back(from_backend(tcp_of(syn.frame).sport, kTcpSyn | kTcpAck).seq(90000)
                          .ack(5001).bytes());
  }
  const std::vector<Outcome> acks = h.run_burst(synacks);
  for (const Outcome& o : acks) EXPECT_EQ(o.verdict, Verdict::tx) << to_string(o);
  ASSERT_EQ(h.released.size(), size_t(dp::kMaxBurst));
  for (const Outcome& o : h.released) {
    ASSERT_EQ(o.verdict, Verdict::tx) << to_string(o);
    EXPECT_EQ(tcp_of(o.frame).payload, "GET");
  }
}

// Handshakes that complete, even with a FIN at once, count down: many of them stay below the
// threshold however fast they come.
TEST_F(SynProxy, AutoStaysOffForHandshakesThatComplete) {
  web(dp::SynProxy::automatic);
  for (uint16_t i = 0; i < 20; ++i) {
    const uint16_t sport = uint16_t(43000 + i);
    const Outcome syn = h.run(from_client(sport, kTcpSyn).bytes());
    ASSERT_EQ(dp::to_string(tcp_of(syn.frame).dst), kBackend) << i;
    const uint16_t snat = tcp_of(syn.frame).sport;
    ASSERT_EQ(h.run(from_backend(snat, kTcpSyn | kTcpAck).bytes()).verdict, Verdict::tx);
    const uint8_t close = i % 2 ? uint8_t(kTcpAck | dp::kTcpFin) : kTcpAck;
    ASSERT_EQ(h.run(from_client(sport, close).bytes()).verdict, Verdict::tx);
  }
  EXPECT_EQ(counters().syn_cookies_sent, 0u);
}

TEST_F(SynProxy, OffForwardsSynsAsEver) {
  web(dp::SynProxy::off);
  for (uint16_t i = 0; i < 20; ++i) {
    const Tcp t = tcp_of(h.run(from_client(uint16_t(41000 + i), kTcpSyn).bytes()).frame);
    EXPECT_EQ(dp::to_string(t.dst), kBackend);
  }
  EXPECT_EQ(counters().syn_cookies_sent, 0u);
}

}  // namespace
}  // namespace magline::test
