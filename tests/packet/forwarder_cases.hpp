// What the forwarder's packet tests share: the client and router they use, a full-NAT
// handshake, and floods of made-up flows (forwarder_test.cpp, forwarder_flood_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/packet/harness.hpp"

namespace magline::test {

inline constexpr const char* kClient = "198.18.10.1";
inline constexpr const char* kClient6 = "2001:db8:10::1";
inline constexpr Mac kRouterMac{0x02, 0, 0, 0, 0, 0x0a};

// A full-NAT TCP handshake between kClient:sport and the web service (198.18.100.1:80, backend
// 198.18.1.10:8080): SYN, the backend's SYN-ACK, and with `ack` the client's ACK. Returns the
// source port Magline chose (0 after a failed step, which is reported).
inline uint16_t handshake(Harness& h, uint16_t sport, bool ack = true) {
  const Outcome syn = h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                                .tcp(sport, 80, dp::kTcpSyn).bytes());
  EXPECT_EQ(syn.verdict, Verdict::tx) << to_string(syn);
  if (syn.verdict != Verdict::tx) return 0;
  const uint16_t snat = sport_of(syn.frame);
  const Outcome synack = h.run(Packet().eth(kBackendMac, kLbMac).ipv4("198.18.1.10", kLbIp)
                                   .tcp(8080, snat, dp::kTcpSyn | dp::kTcpAck).bytes());
  EXPECT_EQ(synack.verdict, Verdict::tx) << to_string(synack);
  if (ack) {
    EXPECT_EQ(h.run(Packet().eth(kRouterMac, kLbMac).ipv4(kClient, "198.18.100.1")
                        .tcp(sport, 80, dp::kTcpAck).bytes()).verdict, Verdict::tx);
  }
  return snat;
}

// The i-th made-up source of a flood: 198.19.x.y.
inline std::string flood_source(uint32_t i) {
  return "198.19." + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255);
}

// A flood of one-frame flows from made-up sources (198.19.x.y): `n` TCP segments with `flags`
// (or UDP datagrams, or SCTP packets) to vip:port, from flow number `base` on, the i-th at time t0 + i ms. Each
// must be forwarded.
inline void flood(Harness& h, const char* vip, uint16_t port, dp::Protocol proto, uint32_t base,
           uint32_t n = 2000, uint8_t flags = dp::kTcpAck, uint64_t t0 = 1000) {
  for (uint32_t i = base; i < base + n; ++i) {
    const std::string src = flood_source(i);
    Packet f = Packet().eth(kRouterMac, kLbMac).ipv4(src.c_str(), vip);
    const uint16_t sport = uint16_t(1024 + i % 60000);
    if (proto == dp::Protocol::tcp) {
      f.tcp(sport, port, flags);
    } else if (proto == dp::Protocol::sctp) {
      f.sctp(sport, port, i + 1);
    } else {
      f.udp(sport, port);
    }
    const Outcome o = h.run(f.bytes(), t0 + (i - base));
    ASSERT_EQ(o.verdict, Verdict::tx) << i << ": " << to_string(o);
  }
}

}  // namespace magline::test
