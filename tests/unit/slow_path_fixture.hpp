// The slow path's test fixture (slow_path_test.cpp, slow_path_tunnel_test.cpp): a counted
// packet pool, what a call produced, and the frames the tests send.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dataplane/arp_nd.hpp"
#include "dataplane/slow_path.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::test {

using dp::SlowReason;

inline constexpr Mac kZeroMac{};
inline constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr Mac kLb2Mac{0x02, 0x00, 0x00, 0x00, 0x00, 0x04};
inline constexpr Mac kOtherMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x09};

inline dp::IpAddr ip(const char* text) {
  return *dp::parse_ip(text);
}

// Vector-backed buffers with headroom, counted: every test ends with none outstanding.
class FakePool : public dp::PacketPool {
 public:
  static constexpr uint16_t kHeadroom = 64;

  bool alloc(dp::Packet& p, uint16_t len) override {
    if (bufs_.size() >= limit) return false;
    auto buf = std::make_unique<Bytes>(kHeadroom + len, 0xee);
    p = dp::Packet{};
    p.handle = buf.get();
    p.data = buf->data() + kHeadroom;
    p.len = len;
    p.headroom = kHeadroom;
    bufs_.emplace(buf.get(), std::move(buf));
    ++allocs;
    return true;
  }

  void free(dp::Packet& p) override {
    EXPECT_EQ(bufs_.erase(p.handle), 1u) << "freed twice, or not from this pool";
    ++frees;
  }

  // A received frame, in a buffer of exactly its size (ASan sees any read past it).
  dp::Packet received(const Bytes& frame, uint16_t port) {
    dp::Packet p;
    EXPECT_TRUE(alloc(p, uint16_t(frame.size())));
    std::copy(frame.begin(), frame.end(), p.data);
    p.port = port;
    return p;
  }

  size_t live() const { return bufs_.size(); }

  size_t limit = std::numeric_limits<size_t>::max();
  size_t allocs = 0;
  size_t frees = 0;

 private:
  std::map<void*, std::unique_ptr<Bytes>> bufs_;
};

struct Sent {
  uint16_t port;
  Bytes frame;
  friend bool operator==(const Sent&, const Sent&) = default;
};

inline void PrintTo(const Sent& s, std::ostream* os) {
  *os << "port " << s.port << ": " << ::testing::PrintToString(s.frame);
}

inline std::string str(const dp::NeighborUpdate& u) {
  return dp::to_string(u.ip) + " " + dp::to_string(u.mac) + " port " + std::to_string(u.port) +
         (u.valid ? "" : " forget");
}

inline std::string update(const char* addr, const Mac& mac, uint16_t port, bool valid = true) {
  return str({ip(addr), dp::MacAddr{mac}, port, valid});
}

struct Out {
  std::vector<Sent> tx;
  std::vector<std::string> updates;
  std::vector<std::string> path_mtus;  // "backend mtu"
  std::vector<Sent> kernel;            // for a port's kernel interface
};

class SlowPathTest : public ::testing::Test {
 protected:
  static dp::Node test_node() {
    dp::Node n;
    n.ports.push_back(
        {0, "p0", dp::MacAddr{kLbMac}, {{ip("198.18.1.1"), 24}, {ip("2001:db8:1::1"), 64}}, 1500});
    n.ports.push_back(
        {1, "p1", dp::MacAddr{kLb2Mac}, {{ip("198.18.2.1"), 24}, {ip("2001:db8:2::1"), 64}}, 1500});
    n.encap.source_v4 = *dp::parse_prefix("198.18.250.0/24", dp::HostBits::reject);
    return n;
  }

  void SetUp() override { start(); }

  void TearDown() override {
    sp_.reset();
    EXPECT_EQ(pool_.live(), 0u) << "buffers leaked";
    EXPECT_EQ(pool_.allocs, pool_.frees);
  }

  void start() {
    sp_.reset();
    const std::set<dp::IpAddr> vips = {ip("198.18.100.1"), ip("198.18.1.50"),
                                       ip("2001:db8:100::1")};
    dp::Node node = test_node();
    node.ports[0].kernel = kernel_port0_;
    sp_ = std::make_unique<dp::SlowPath>(
        node, [vips](const dp::IpAddr& a) { return vips.count(a) == 1; }, pool_, cfg_);
  }

  // What a call produced. Every frame must parse with correct checksums; it is copied out and
  // its buffer returned to the pool.
  Out collect(dp::SlowPathOutput& o) {
    Out out;
    for (dp::Packet& p : o.tx) {
      Bytes frame(p.data, p.data + p.len);
      EXPECT_EQ(checksum_errors(frame), "");
      out.tx.push_back({p.port, std::move(frame)});
      pool_.free(p);
    }
    for (dp::Packet& p : o.kernel) {
      out.kernel.push_back({p.port, Bytes(p.data, p.data + p.len)});
      pool_.free(p);
    }
    for (const dp::NeighborUpdate& u : o.updates)
      out.updates.push_back(str(u));
    for (const dp::PathMtuUpdate& m : o.path_mtus)
      out.path_mtus.push_back(dp::to_string(m.backend) + " " + std::to_string(m.mtu));
    EXPECT_EQ(o.worker_updates().size(), o.updates.size() + o.path_mtus.size());
    return out;
  }

  Out handle(const Bytes& frame, SlowReason why, uint16_t port, uint64_t now,
             dp::NextHop hop = {}) {
    dp::SlowPathOutput o;
    sp_->handle({pool_.received(frame, port), why, hop}, now, o);
    return collect(o);
  }
  Out arp(const Bytes& frame, uint16_t port, uint64_t now) {
    return handle(frame, SlowReason::arp, port, now);
  }
  Out ndp(const Bytes& frame, uint16_t port, uint64_t now) {
    return handle(frame, SlowReason::ndp, port, now);
  }
  Out needs(const Bytes& frame, const char* next_hop, uint16_t port, uint64_t now) {
    // The worker hands the packet over from the port it came in on (7 here, irrelevant).
    return handle(frame, SlowReason::needs_neighbor, 7, now, {ip(next_hop), port});
  }
  Out tick(uint64_t now) {
    dp::SlowPathOutput o;
    sp_->tick(now, o);
    return collect(o);
  }
  const dp::SlowPathStats& stats() const { return sp_->stats(); }

  dp::SlowPathConfig cfg_ = [] {
    dp::SlowPathConfig c;
    c.request_interval_ms = 1000;
    c.request_attempts = 3;
    c.reachable_ms = 30'000;
    c.max_queued_per_neighbor = 4;
    c.max_queued_total = 6;
    c.max_neighbors = 8;
    c.max_path_mtus = 2;
    return c;
  }();
  bool kernel_port0_ = false;  // port 0 has a kernel interface (the exception path)
  FakePool pool_;
  std::unique_ptr<dp::SlowPath> sp_;
};

// ---- Frames ----

inline Bytes arp_request(const char* sender, const Mac& sender_mac, const char* target,
                  const Mac& dst = kBroadcast) {
  return Packet()
      .eth(sender_mac, dst)
      .arp(dp::kArpRequest, sender_mac, sender, kZeroMac, target)
      .pad(18)
      .bytes();
}

inline Bytes arp_reply(const char* sender, const Mac& sender_mac, const char* target,
                const Mac& target_mac) {
  return Packet()
      .eth(sender_mac, target_mac)
      .arp(dp::kArpReply, sender_mac, sender, target_mac, target)
      .pad(18)
      .bytes();
}

// A packet the workers have fully rewritten, waiting only for its Ethernet addresses.
inline Packet waiting(const char* dst, uint16_t sport) {
  return Packet().eth(kZeroMac, kZeroMac).ipv4("198.18.50.1", dst).udp(sport, 80).payload("data");
}
inline Packet waiting6(const char* dst, uint16_t sport) {
  return Packet().eth(kZeroMac, kZeroMac).ipv6("2001:db8:50::1", dst).udp(sport, 80);
}

inline Mac solicited_mac(const char* target) {
  return dp::ipv6_multicast_mac(dp::solicited_node(ip(target))).b;
}

inline Bytes ns(const char* src, const char* target, const Mac& from = kClientMac) {
  const std::string group = dp::to_string(dp::solicited_node(ip(target)));
  return Packet().eth(from, solicited_mac(target)).ipv6(src, group).ndp_ns(target, from).bytes();
}

inline Bytes na(const char* src, const char* dst, const Mac& to, const char* target, uint8_t flags,
         const Mac& ll) {
  return Packet().eth(ll, to).ipv6(src, dst).ndp_na(target, flags, ll).bytes();
}

}  // namespace magline::test
