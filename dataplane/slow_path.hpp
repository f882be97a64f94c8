// The slow path, run by the control thread: what the workers hand over instead of forwarding.
//
// - ARP (RFC 826) and NDP (RFC 4861): answers requests for the node's port addresses, for
//   every VIP and for the encapsulation's outer sources; learns senders; resolves next hops for
//   the workers (requests sent, retried and given up after a bound), and publishes every change
//   as a NeighborUpdate for the workers.
// - Packets waiting for a neighbour: held in a bounded queue per neighbour (and in total),
//   transmitted with their Ethernet header completed once it resolves, dropped (with a counted
//   reason) when it does not resolve in time or a queue is full.
// - Announcements: gratuitous ARP and unsolicited neighbour advertisements for every address at
//   start and when VIPs appear.
// - Entries age out: a resolved neighbour is probed again after `reachable_ms`, and forgotten
//   (NeighborUpdate with `valid = false`) when the probe gets no answer.
// - Path MTUs: a router's ICMP error about a packet Magline encapsulated (encap.hpp) gives that
//   backend's path MTU, published as a PathMtuUpdate and forgotten after a while.
// - Splitting: an encapsulated packet too big for the path whose inner packet is IPv4 without DF
//   is split into pieces that fit (encap.hpp), each sent like a frame waiting for its neighbour.
// - The exception path: frames for the node itself (SlowReason::kernel) go to the kernel
//   interface of their port, and so do the ARP and NDP frames of a port with one that Magline
//   does not answer itself (replies, advertisements, router advertisements): the kernel
//   resolves its own neighbours. Magline keeps answering requests for its addresses, so that
//   they are answered whatever the kernel does.
//
// Single-threaded (the control thread); never called per packet on a worker. Allocates only
// through PacketPool and its own bounded containers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/drop_reason.hpp"
#include "dataplane/messages.hpp"
#include "dataplane/node.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

// Buffers for packets the slow path sends on its own (requests, replies, announcements).
class PacketPool {
 public:
  virtual ~PacketPool() = default;
  // A fresh buffer with at least `len` bytes of room; false when the pool is exhausted.
  virtual bool alloc(Packet& p, uint16_t len) = 0;
  virtual void free(Packet& p) = 0;
};

struct SlowPathConfig {
  uint32_t request_interval_ms = 1000;   // between retries of an unanswered request
  uint32_t request_attempts = 3;         // then the neighbour is unreachable
  uint32_t reachable_ms = 300'000;       // a resolved entry is probed again after this
  uint32_t max_queued_per_neighbor = 16;
  uint32_t max_queued_total = 1024;
  uint32_t max_neighbors = 4096;
  uint32_t path_mtu_expiry_ms = 600'000;  // a learned path MTU is forgotten after this (Linux's
                                          // mtu_expires)
  uint32_t max_path_mtus = 4096;           // backends with a learned path MTU at once
};

struct SlowPathStats {
  uint64_t arp_requests_answered = 0;
  uint64_t arp_replies_learned = 0;
  uint64_t nd_solicitations_answered = 0;
  uint64_t nd_advertisements_learned = 0;
  uint64_t echo_requests_answered = 0;  // pings to a port address or a VIP
  uint64_t requests_sent = 0;
  uint64_t queued = 0;
  uint64_t released = 0;           // held packets sent after resolution
  uint64_t dropped_unresolved = 0;  // neighbor did not answer in time
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_table_full = 0;  // no room for another neighbour entry
  uint64_t alloc_failed = 0;        // a request, reply or announcement not sent: pool empty
  uint64_t ignored = 0;             // not for us, malformed, unsupported
  uint64_t path_mtus_learned = 0;   // a tunnelled backend's path MTU learned, or lowered
  uint64_t path_mtus_expired = 0;   // ...and forgotten after path_mtu_expiry_ms
  uint64_t path_mtus_refused = 0;   // not learned: max_path_mtus backends have one already
  uint64_t split_packets = 0;       // encapsulated packets too big for the path, split
  uint64_t split_pieces = 0;        // ...into this many pieces, each sent on
  uint64_t split_failed = 0;        // could not be split (inner options, no room): dropped
  uint64_t kernel_frames = 0;       // frames for a port's kernel interface (the exception path)
};

// What the slow path produced: packets to transmit on a port, frames for a port's kernel
// interface, and neighbour and path MTU changes for the workers. The caller drains them after
// each call.
struct SlowPathOutput {
  std::vector<Packet> tx;      // Packet::port is the egress port
  std::vector<Packet> kernel;  // Packet::port is the port whose kernel interface takes it
  std::vector<NeighborUpdate> updates;
  std::vector<PathMtuUpdate> path_mtus;

  // The changes, as the workers' updates.
  std::vector<Update> worker_updates() const;
};

class SlowPath {
 public:
  // `is_vip(addr)`: whether an address is a frontend address Magline answers for.
  SlowPath(const Node& node, std::function<bool(const IpAddr&)> is_vip, PacketPool& pool,
           SlowPathConfig config = {});

  // Takes ownership of the packet: it ends up transmitted (in `out.tx`), held, or freed.
  void handle(SlowPacket sp, uint64_t now_ms, SlowPathOutput& out);

  // Timers: retries, give-ups, ageing. Call at least every 100 ms.
  void tick(uint64_t now_ms, SlowPathOutput& out);

  // Answers ARP and neighbour solicitations for a VIP only where `speaks_for(vip)` (the L2
  // speaker, control/l2_speaker.hpp); by default for every VIP.
  void speak_only_for(std::function<bool(const IpAddr&)> speaks_for);

  // Gratuitous ARP / unsolicited neighbour advertisement for every port address and VIP in
  // `vips` (each on the port whose subnet holds it, else on every port).
  void announce(std::span<const IpAddr> vips, uint64_t now_ms, SlowPathOutput& out);

  const SlowPathStats& stats() const noexcept;
  // Held packets are freed through the pool on destruction.
  ~SlowPath();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace magline::dp
