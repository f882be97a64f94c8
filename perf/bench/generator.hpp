// The far side of Magline's port, on the main lcore: the clients (generator) and the backends
// (sink), which are also the clients' and backends' TCP peers.
//
//   clients  -> established flows: opened in the warm-up by a whole handshake (TCP: SYN, the
//               backend's SYN-ACK, the client's ACK), so that Magline's entries are established
//               both ways, which it never evicts (a flow opened by a bare ACK that nobody answers
//               is tcp_midstream: unconfirmed, evicted first in a full table, and re-opened after
//               a churn by the new Maglev table); then TCP ACK (or UDP) frames, flow chosen by
//               the distribution;
//               new connections: a SYN from a fresh 5-tuple, with probability new_share;
//               on a SYN-ACK: FIN+ACK (the handshake's last segment closes the connection, so
//               Magline's entries end closing and evictable, as short connections do), or, for
//               an established flow's (warm-up), the handshake's ACK
//   backends -> on an established UDP flow's datagram during the warm-up: an answer back through
//               Magline (its reply path), so that the flow's entries are confirmed;
//               on a SYN: SYN-ACK back through Magline (its reply path); on a new connection's
//               FIN+ACK: FIN+ACK back (the backend's half of the close); everything else is
//               counted, its latency taken from the stamp, its flow's backend noted (churn)
//   neighbours -> across processes Magline resolves the backends itself: the backends ask for
//               Magline's address first (it learns them from the request, RFC 826), and the
//               sink answers its ARP requests and neighbour solicitations for them
//
// Every mbuf it allocates goes into Magline's RX ring or back to the pool; nothing is allocated
// per frame on the heap. Main lcore only.
#pragma once

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdint>
#include <vector>

#include "perf/bench/engine.hpp"
#include "perf/bench/histogram.hpp"
#include "perf/bench/link.hpp"
#include "perf/bench/traffic.hpp"

namespace magline::bench {

struct GenCounters {
  uint64_t generated = 0;     // established frames and SYNs made by the clients
  uint64_t injected = 0;      // every frame put into Magline's RX ring (replies included)
  uint64_t backpressure = 0;  // passes that found the ring full
  uint64_t alloc_failed = 0;
  uint64_t syn_sent = 0, synack_sent = 0, synack_rx = 0, finack_sent = 0, fin_rx = 0;
  uint64_t fin_back_sent = 0, fin_back_rx = 0;  // the backends' FIN+ACKs
  uint64_t ack_sent = 0;  // the clients' ACKs ending the established flows' handshakes (warm-up)
  uint64_t udp_answer_sent = 0, udp_answer_rx = 0;  // the backends' answers to UDP flows (warm-up)
  uint64_t rst_rx = 0;
  uint64_t echo_rx = 0;  // frames that came back to the clients unchanged but for the MACs
  uint64_t backend_rx = 0, client_rx = 0;
  uint64_t malformed = 0;  // not what Magline should have sent (wrong port, backend, ...)
  uint64_t warmup_received = 0;
  // Neighbour discovery (ARP, NDP): frames received (Magline's requests, answers and
  // announcements), requests the backends sent, and answers the sink gave. The frames sent are
  // also in `injected`.
  uint64_t neighbour_rx = 0, neighbour_requests_sent = 0, neighbour_answers_sent = 0;
  uint64_t neighbour_answers_rx = 0;  // Magline's answers to the backends' requests
};

class Generator {
 public:
  Generator(const TrafficSpec& t, const Layout& l, const dp::MacAddr& lb, const Link& link,
            rte_mempool* pool, uint64_t seed);
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  ~Generator();

  // One pass of the main lcore's loop: receive (and answer) what Magline sent, send held
  // answers, then send new frames: warm-up (each established flow once, in order), or the
  // traffic at its rate (its clock starts at start_measurement), or none (idle).
  void step_warmup(uint64_t now) noexcept;
  void step(uint64_t now) noexcept;
  void step_idle(uint64_t now) noexcept;
  bool warmup_done() const noexcept { return warmup_next_ >= t_.flows; }
  void restart_warmup() noexcept { warmup_next_ = 0; }

  // Each backend from `first` on asks for Magline's address (ARP request, or a neighbour
  // solicitation with its link-layer address), so that Magline learns where it is; returns
  // how many were sent (fewer when the link is full). Setup, not per frame.
  uint32_t send_neighbour_requests(uint32_t first) noexcept;

  void start_measurement(uint64_t now) noexcept;
  void clear_latency() noexcept;
  // From now on, frames of flows first seen on `removed` count as that backend's.
  void churn(uint32_t removed) noexcept;
  // Frees answers that could not be sent (the forwarder stopped).
  void finish() noexcept;

  size_t pending() const noexcept { return n_held_; }
  const GenCounters& counters() const noexcept { return c_; }
  const std::vector<uint64_t>& per_backend() const noexcept { return per_backend_; }
  const LatencyHistogram& oneway() const noexcept { return oneway_; }
  const LatencyHistogram& handshake() const noexcept { return handshake_; }
  ChurnResult churn_result() const;

 private:
  static constexpr uint16_t kBurst = 32;
  static constexpr uint32_t kHeld = 512;
  static constexpr uint32_t kSpare = 256;
  static constexpr uint16_t kNone = 0xffff;

  void receive(uint64_t now) noexcept;
  void on_backend(rte_mbuf* m, uint8_t* d, uint32_t now32) noexcept;
  void on_client(rte_mbuf* m, uint8_t* d, uint32_t now32) noexcept;
  void on_neighbour(rte_mbuf* m, uint8_t* d) noexcept;
  void done(rte_mbuf* m) noexcept;
  void send_held() noexcept;
  uint32_t room() const noexcept;
  void generate(uint32_t n, uint64_t now, bool warmup) noexcept;

  TrafficSpec t_;
  Layout l_;
  dp::MacAddr lb_;
  Link link_;
  rte_mempool* pool_;
  std::vector<uint8_t> tmpl_;
  FlowChooser chooser_;
  uint64_t new_threshold_;  // a frame opens a connection when 32 random bits fall below this
  uint64_t new_count_ = 0;
  uint32_t warmup_next_ = 0;
  bool measuring_ = false;
  uint64_t rate_start_ = 0;
  uint64_t rate_sent_ = 0;
  double frames_per_cycle_ = 0;

  // Answers (SYN-ACKs, FIN+ACKs, neighbour advertisements) waiting for room in Magline's RX.
  rte_mbuf* held_[kHeld];
  uint32_t n_held_ = 0;
  // Received frames: to be generated again (done()), or freed after each received burst.
  rte_mbuf* spare_[kSpare];
  uint32_t n_spare_ = 0;
  rte_mbuf* to_free_[64];
  uint32_t n_free_ = 0;

  GenCounters c_;
  std::vector<uint64_t> per_backend_;
  LatencyHistogram oneway_;
  LatencyHistogram handshake_;

  // Churn: each established flow's first backend, and whether it was seen elsewhere since.
  bool track_flows_ = false;
  bool churned_ = false;
  uint32_t removed_ = 0;
  std::vector<uint16_t> first_backend_;
  std::vector<uint8_t> moved_;
  ChurnResult churn_;
};

}  // namespace magline::bench
