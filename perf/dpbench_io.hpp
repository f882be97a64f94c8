// magline-dpbench's generating side (perf/dpbench.cpp): the frames written into net_null's
// buffers as they are received (a NIC's DMA), the worker that runs one path on the worker
// lcore, and what a run measures. One translation unit includes it.
#pragma once

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/checksum.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/ring.hpp"
#include "dataplane/worker.hpp"

namespace magline::bench {

constexpr uint16_t kBurst = 32;
const dp::MacAddr kLbMac{{0x02, 0, 0, 0, 0, 0x01}};
const dp::MacAddr kClientMac{{0x02, 0, 0, 0, 0, 0x0a}};
const dp::MacAddr kBackendMac{{0x02, 0, 0, 0, 0, 0x0b}};

// A 64-byte Ethernet/IPv4/TCP frame (with the FCS the wire would add: 60 bytes here).
inline std::vector<uint8_t> tcp_frame(uint32_t src, uint16_t sport, uint32_t dst,
                                      uint16_t dport, uint8_t flags) {
  std::vector<uint8_t> f(60, 0);
  kLbMac.store(f.data());
  kClientMac.store(f.data() + 6);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  dp::store_be16(ip + 2, 46);  // 20 IP + 20 TCP + 6 payload
  ip[8] = 64;
  ip[9] = dp::kProtoTcp;
  dp::store_be32(ip + 12, src);
  dp::store_be32(ip + 16, dst);
  dp::store_be16(ip + 10, dp::ipv4_header_checksum(ip, 20));
  uint8_t* tcp = ip + 20;
  dp::store_be16(tcp, sport);
  dp::store_be16(tcp + 2, dport);
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  dp::store_be16(tcp + 14, 65535);
  const dp::IpAddr s = dp::IpAddr::v4(src), d = dp::IpAddr::v4(dst);
  dp::store_be16(tcp + 16, dp::l4_checksum(s, d, dp::kProtoTcp, tcp, 26, 16));
  return f;
}

enum class Mode { macswap, hit, fresh, flood, kernel_flood, reply };

// The worker's port: net_null's buffers, each filled with the next frame of the traffic mix as
// it is received (a 64-byte copy, the work a NIC's DMA does: testpmd's baseline pays the same
// copy through net_null's copy=1), and sent back to net_null.
struct GenIo {
  uint16_t port_id = 0;
  uint16_t queue = 0;
  Mode mode = Mode::hit;
  const std::vector<uint8_t>* frame = nullptr;  // the template
  uint32_t flows = 0;                           // hit: how many distinct flows are cycled
  uint32_t seq = 0;
  uint32_t mixed = 0;  // flood: every other frame is a SYN
  uint32_t fresh = 0;  // flood: the SYNs' made-up clients
  const uint8_t* backend_of = nullptr;  // reply: flow k's backend, 198.18.1.x (Maglev's pick)
  uint64_t received = 0, sent = 0;

  uint16_t rx(uint16_t, dp::Packet* pkts, uint16_t n) noexcept {
    n = dpdk::rx_burst(port_id, queue, pkts, n, 0);
    const std::vector<uint8_t>& f = *frame;
    for (uint16_t i = 0; i < n; ++i) {
      std::memcpy(pkts[i].data, f.data(), f.size());
      pkts[i].len = uint16_t(f.size());
      // The client: flow k of the mix (hit: k cycles over the flows in a scattered order;
      // new: k never repeats). Checksums are left as they are: the pipeline updates them
      // incrementally and never verifies them. An odd step modulo a power of two visits every
      // flow once per round (no division: the generator stands in for the NIC and should cost
      // next to nothing).
      if (mode == Mode::kernel_flood && (++mixed & 1)) {
        // For the node itself (198.18.0.1), from made-up clients: no service's, no connection's.
        const uint32_t j = fresh++;
        dp::store_be32(pkts[i].data + 26, 0xc6140000u | (j >> 14));
        dp::store_be32(pkts[i].data + 30, 0xc6120001u);
        continue;
      }
      if (mode == Mode::flood && (++mixed & 1)) {
        // A flood SYN from a made-up client never seen before (198.20.x.y).
        const uint32_t j = fresh++;
        dp::store_be32(pkts[i].data + 26, 0xc6140000u | (j >> 14));
        dp::store_be16(pkts[i].data + 34, uint16_t(1024 + (j & 0x3fff)));
        pkts[i].data[47] = dp::kTcpSyn;
        continue;
      }
      const uint32_t k = mode == Mode::fresh ? seq++
                         : (flows & (flows - 1)) == 0 ? (seq += 2654435761u) & (flows - 1)
                                                      : (seq += 2654435761u) % flows;
      if (mode == Mode::reply) {
        // Flow k's backend answering its client: 198.18.1.x:8080 -> 198.19.x.y:port.
        dp::store_be32(pkts[i].data + 26, 0xc6120100u | backend_of[k]);
        dp::store_be32(pkts[i].data + 30, 0xc6130000u | (k >> 14));
        dp::store_be16(pkts[i].data + 34, 8080);
        dp::store_be16(pkts[i].data + 36, uint16_t(1024 + (k & 0x3fff)));
        continue;
      }
      dp::store_be32(pkts[i].data + 26, 0xc6130000u | (k >> 14));  // 198.19.x.y
      dp::store_be16(pkts[i].data + 34, uint16_t(1024 + (k & 0x3fff)));
    }
    received += n;
    return n;
  }
  uint16_t tx(uint16_t, dp::Packet* pkts, uint16_t n) noexcept {
    const uint16_t took = dpdk::tx_burst(port_id, queue, pkts, n);
    sent += took;
    return took;
  }
  void free(const dp::Packet* pkts, uint16_t n) noexcept { dpdk::free_packets(pkts, n); }
};

// One worker as `magline run` runs it (dataplane/worker.hpp), on a GenIo.
struct Bench {
  using W = dp::Worker<GenIo, dpdk::SpscRing>;
  GenIo io;
  std::optional<dpdk::SpscRing<dp::Update>> updates;
  std::optional<dpdk::SpscRing<dp::SlowPacket>> slow;
  dp::TrafficRows traffic;
  dp::WorkerShare share;
  std::unique_ptr<W> worker;
  const dp::ForwarderCounters& counters() const { return worker->forwarder().counters(); }
  const dp::FlowTable& flows() const { return worker->forwarder().flows(); }
};

struct Job {
  Mode mode;
  uint16_t port;
  uint16_t queue;
  double seconds;
  const std::vector<uint8_t>* frame;  // the template
  uint32_t flows;                     // hit: how many distinct flows are cycled
  Bench* bench;
  const uint8_t* backend_of = nullptr;  // reply: each flow's backend
  // results
  uint64_t packets = 0;
  uint64_t forwarded = 0;
  uint64_t cycles = 0;
};

inline int worker(void* arg) {
  Job& job = *static_cast<Job*>(arg);
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t start = rte_get_tsc_cycles();
  const uint64_t end = start + uint64_t(job.seconds * double(hz));
  uint64_t now_tsc = start;
  if (job.mode != Mode::macswap) {
    GenIo& io = job.bench->io;
    io.port_id = job.port;
    io.queue = job.queue;
    io.mode = job.mode;
    io.frame = job.frame;
    io.flows = job.flows;
    io.backend_of = job.backend_of;
    const uint64_t received = io.received, sent = io.sent;
    while ((now_tsc = rte_get_tsc_cycles()) < end) job.bench->worker->poll(now_tsc / (hz / 1000));
    job.packets = io.received - received;
    job.forwarded = io.sent - sent;
    job.cycles = rte_get_tsc_cycles() - start;
    return 0;
  }
  dp::Packet pkts[kBurst];
  GenIo gen{job.port, job.queue, Mode::hit, job.frame, job.flows};
  while ((now_tsc = rte_get_tsc_cycles()) < end) {
    const uint16_t n = gen.rx(0, pkts, kBurst);
    for (uint16_t i = 0; i < n; ++i) {
      uint8_t tmp[6];
      std::memcpy(tmp, pkts[i].data, 6);
      std::memcpy(pkts[i].data, pkts[i].data + 6, 6);
      std::memcpy(pkts[i].data + 6, tmp, 6);
    }
    const uint16_t sent = gen.tx(0, pkts, n);
    if (sent < n) dpdk::free_packets(pkts + sent, uint16_t(n - sent));
  }
  job.packets = gen.received;
  job.forwarded = gen.sent;
  job.cycles = rte_get_tsc_cycles() - start;
  return 0;
}

// A measured job's entry; warm-ups enter by worker() directly. A symbol of its own, so that
// perf/instructions.py has callgrind count from here and cut its profile at each measured job.
[[gnu::noinline]] inline int measured(void* arg) {
  return worker(arg);
}

}  // namespace magline::bench
