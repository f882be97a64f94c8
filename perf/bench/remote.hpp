// magline-bench across processes: the generator and sink here, on one net_memif port, and at
// the port's other end either the real daemon (`magline run --config FILE`) or, as the
// baseline, dpdk-testpmd's macswap on a memif port of its own.
//
//   this process, lcore 0                   the other process
//   +--------------------------+  memif   +---------------------------------------------+
//   | generator + sink         |<-------->| magline run: worker on core 1; control      |
//   | stats poller (a thread)  |  socket  |   thread and admin listener on core 0 (they |
//   |   GET /stats, loopback   |--------->|   sleep between passes: 200 us, requests)   |
//   +--------------------------+          | or dpdk-testpmd macswap: forwarding core 1, |
//                                         |   main lcore 0 (sleeps; prints stats)       |
//                                         +---------------------------------------------+
//
// Every process runs with --no-huge --no-shconf and its own --file-prefix, so that nothing is
// left in /dev/hugepages; a process that fails is killed (SIGKILL after SIGTERM) and its runtime
// directory removed; the children also die with this process (PR_SET_PDEATHSIG). Magline's
// figures come from its admin listener (/stats) while it runs and from its final counters
// (--stats FILE) after SIGTERM; testpmd's from its final forward statistics.
//
// Main lcore only (the poller's thread is private to a run).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dataplane/dpdk/port.hpp"
#include "dataplane/result.hpp"
#include "perf/bench/engine.hpp"

namespace magline::bench {

struct MemifOptions {
  bool server = false;           // this process's role on the memif socket; the peer's is the other
  std::string socket;            // the socket's name (abstract unless socket_abstract is false)
  bool socket_abstract = true;   // memif's socket-abstract=yes: no file to leave behind
  std::string magline = "";      // the magline binary
  std::string testpmd = "dpdk-testpmd";
  uint16_t admin_port = 0;       // Magline's admin listener on 127.0.0.1 (0: 19100 + pid % 1000)
  unsigned main_core = 0;        // this process, Magline's control thread, testpmd's main lcore
  unsigned worker_core = 1;      // Magline's worker, testpmd's forwarding core
  std::string workdir;           // configurations, logs, final counters (removed at the end)
  bool keep_workdir = false;
};

// The generator's memif port and its packet pool: made once per process, after the EAL.
class MemifBed {
 public:
  static Result<std::unique_ptr<MemifBed>> create(const MemifOptions& o);
  ~MemifBed();

  uint16_t port_id() const noexcept { return port_->id(); }
  rte_mempool* pool() const noexcept { return pool_->get(); }
  const MemifOptions& options() const noexcept { return o_; }
  // The device arguments of the peer's end of the socket (the other role), with `mac`.
  std::string peer_devargs(const std::string& mac) const;
  // As the client, (re)connects to the peer's socket (a new process each run); as the server,
  // nothing (the peer connects).
  void connect();
  // Waits for the link to the peer; false after `seconds`.
  bool wait_link(double seconds);
  // Frees whatever a run left in the port's queue.
  void drain() noexcept;

 private:
  MemifBed() = default;
  MemifOptions o_;
  std::optional<dpdk::PktPool> pool_;
  std::optional<dpdk::Port> port_;
};

// One run against `magline run` (Forwarding::magline_process) or testpmd's macswap
// (Forwarding::testpmd_macswap) at the far end of the memif port.
RunResult run_memif(MemifBed& bed, const RunOptions& options);

}  // namespace magline::bench
