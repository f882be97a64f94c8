// magline-bench's in-process test bed and one measured run.
//
//   main lcore (core 0)                         worker lcore (core 1)
//   +--------------------------------+  to_lb   +----------------------------------+
//   | generator: clients' frames     |--------->| net_ring port "net_ring_mbench"  |
//   | sink: backends (SYN -> SYN-ACK)|<---------| Magline's worker_main (or, for   |
//   |       clients (SYN-ACK -> FIN) | from_lb  | the baseline, a MAC swap)        |
//   +--------------------------------+          +----------------------------------+
//
// The generator and the sink share the main lcore and talk to the rings directly (they are the
// other end of Magline's port); Magline sees an ordinary ethdev. Magline runs the real worker
// loop (control/worker.hpp) with a real Publisher's updates, as `magline run` starts it, minus
// the control thread's slow path and admin listener: neighbours are installed as updates.
//
// Threads: everything here runs on the main lcore, except worker_main and the baseline's loop,
// which it launches on lcore 1. One run at a time.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dpdk/port.hpp"
#include "dataplane/drop_reason.hpp"
#include "dataplane/result.hpp"
#include "perf/bench/link.hpp"
#include "perf/bench/traffic.hpp"

struct rte_ring;

namespace magline::bench {

// The rings, their port and the packet pool: made once per process (after the EAL).
class Testbed {
 public:
  // `ring_size`: slots of Magline's RX ring (a power of two; one fewer frames fit); its TX
  // ring has four times as many.
  static Result<std::unique_ptr<Testbed>> create(uint32_t ring_size);
  ~Testbed();

  rte_ring* to_lb() const noexcept { return to_lb_; }
  rte_ring* from_lb() const noexcept { return from_lb_; }
  uint16_t port_id() const noexcept { return port_->id(); }
  dp::MacAddr lb_mac() const noexcept { return port_->mac(); }
  rte_mempool* pool() const noexcept { return pool_->get(); }
  uint32_t ring_size() const noexcept { return ring_size_; }
  // Frees whatever is left in both rings (between runs).
  void drain() noexcept;

 private:
  Testbed() = default;
  std::optional<dpdk::PktPool> pool_;
  std::optional<dpdk::Port> port_;
  rte_ring* to_lb_ = nullptr;
  rte_ring* from_lb_ = nullptr;
  uint32_t ring_size_ = 0;
};

// magline and ring_macswap run in this process over net_ring; magline_process (`magline run`)
// and testpmd_macswap (dpdk-testpmd) are other processes at the far end of a net_memif port.
enum class Forwarding : uint8_t { magline, ring_macswap, magline_process, testpmd_macswap };

struct RunOptions {
  TrafficSpec traffic;
  Forwarding forwarding = Forwarding::magline;
  size_t flow_capacity = 0;  // 0: from the traffic (4 entry slots per flow, at least 2^16)
  unsigned worker_lcore = 1;
  uint64_t seed = 1;
};

// Counts over an interval (the measurement window) or over the whole run.
struct Window {
  double seconds = 0;
  uint64_t cycles = 0;
  // Magline's (or the baseline forwarder's) counters.
  uint64_t rx = 0, tx = 0, polls = 0, idle_polls = 0, new_connections = 0;
  uint64_t drops = 0;
  // The generator's and the sink's.
  uint64_t generated = 0;     // frames the generator made (established and SYNs)
  uint64_t injected = 0;      // frames put into Magline's RX ring (generated + replies)
  uint64_t backpressure = 0;  // generator passes that found the ring full
  uint64_t handshakes = 0;    // SYN-ACKs the clients received
  uint64_t sink_rx = 0;
};

struct ChurnResult {
  bool done = false;
  uint32_t removed_backend = 0;
  uint64_t flows_observed = 0;    // established flows seen at a backend before the churn
  uint64_t flows_on_removed = 0;  // ...of them on the backend that left
  uint64_t flows_moved = 0;       // seen at another backend than first afterwards
  uint64_t flows_moved_kept = 0;  // ...of them not on the removed backend (should be 0)
  uint64_t sent_kept = 0, received_kept = 0;        // frames of flows on remaining backends
  uint64_t sent_removed = 0, received_removed = 0;  // ...of flows on the removed one
  uint64_t resets = 0;                              // RSTs the clients received after the churn
};

struct RunResult {
  RunOptions options;
  Layout layout;
  std::string error;  // non-empty: the run failed (and why)
  double hz = 0;
  Window window;                // the measured interval
  Window total;                 // from the worker's launch to its stop (exact, after the drain)
  double idle_poll_cycles = 0;  // cost of one idle poll, measured with no traffic
  uint64_t flow_capacity = 0;
  uint64_t flow_table_bytes = 0;
  uint64_t flows_occupied = 0;
  uint64_t warmup_opened = 0;  // established flows open before the measurement
  double warmup_seconds = 0;
  std::array<uint64_t, dp::kDropReasonCount> drops{};  // whole run, by reason
  uint64_t tx_full = 0, slow_full = 0, to_slow_path = 0, slow_received = 0;
  uint64_t rejected = 0, reset_removed_backend = 0, rescheduled = 0, stateless = 0;
  // The sink, whole run.
  uint64_t backend_rx = 0, client_rx = 0, syn_sent = 0, synack_sent = 0, synack_rx = 0;
  uint64_t finack_sent = 0, fin_rx = 0, fin_back_sent = 0, fin_back_rx = 0, ack_sent = 0;
  uint64_t udp_answer_sent = 0, udp_answer_rx = 0;
  uint64_t rst_rx = 0, echo_rx = 0, malformed = 0;
  uint64_t neighbour_rx = 0, neighbour_sent = 0;  // ARP and NDP frames (across processes)
  uint64_t generated_total = 0, injected_total = 0;
  std::vector<uint64_t> per_backend;  // frames each backend received
  // Latency (cycles): generator to backend (one way, through Magline once) and SYN to SYN-ACK
  // (through Magline twice and the sink's answer), from the window's start to the end.
  double oneway_p50 = 0, oneway_p99 = 0, oneway_p999 = 0, oneway_max = 0;
  uint64_t oneway_samples = 0;
  double handshake_p50 = 0, handshake_p99 = 0, handshake_p999 = 0;
  uint64_t handshake_samples = 0;
  ChurnResult churn;
  // Across processes: the window's edges are known to within this (seconds, both together),
  // the forwarder's resident memory at the end (VmHWM, bytes), and how it was started.
  double window_edge_error_s = 0;
  uint64_t forwarder_rss_bytes = 0;
  std::string forwarder_note;
};

// A forwarder's counters as the main lcore reads them.
struct ForwarderView {
  uint64_t rx = 0, tx = 0, polls = 0, idle_polls = 0, new_connections = 0, drops = 0;
  uint64_t tsc = 0;    // when they were true, if known (a remote reading); 0: when read
  uint64_t error = 0;  // ...to within +- this many cycles
};

struct GenCounters;
class Generator;

// The forwarder a run measures, wherever it runs. Main lcore only, one run at a time.
class Target {
 public:
  virtual ~Target() = default;
  // Launches the forwarder; returns when it forwards (fills r.flow_capacity, r.flow_table_bytes)
  // or an error.
  virtual std::string start(RunResult& r) = 0;
  // A new reading of its counters, if there is one. `g`: the generator's (a forwarder that
  // cannot be read, testpmd, is seen through them).
  virtual std::optional<ForwarderView> poll(const GenCounters& g) = 0;
  // Whether it counts opened connections (Magline: the warm-up waits for them) and has to
  // learn the backends' addresses (ARP, NDP) before traffic.
  virtual bool counts_connections() const = 0;
  virtual bool resolves_neighbours() const { return false; }
  // Removes backend traffic.backends / 2.
  virtual void churn() {}
  // Stops it (always safe, also after a failed start) and fills r's totals, drops and counts
  // from its final counters; `g` as above.
  virtual void stop(RunResult& r, const GenCounters& g) = 0;
};

// One run against any target: opens every established flow, measures for traffic.seconds,
// drains, stops the target and reads its counters.
RunResult run_target(Target& target, const Link& link, const dp::MacAddr& lb_mac,
                     rte_mempool* pool, const RunOptions& options);

// One run: launches the forwarder on the worker lcore, opens every established flow, measures
// for traffic.seconds, drains, stops the forwarder and reads its counters.
RunResult run_once(Testbed& bed, const RunOptions& options);

}  // namespace magline::bench
