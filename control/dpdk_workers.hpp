// The workers on DPDK: one lcore each, running the core's Worker (dataplane/worker.hpp) over the
// ports' RX and TX queues, with the rings between them and the control thread. The one place
// that wires them: `magline run` (through DpdkDataplane), magline-bench and the integration test
// all build their workers here.
//
//   control thread --- update ring (per worker) --------------------> worker i
//   control thread --- control TX ring ------------------------------> worker 0 (sends on its
//                                                                       own TX queues)
//   worker i ---------- slow ring (per worker) ----------------------> control thread
//   worker i ---------- peer ring (per ordered pair) ----------------> worker j
//
// Worker i owns RX queue i and TX queue i of every port. Each worker builds its Worker (and
// faults its flow table in) on its own lcore, so that the memory is local to it.
//
// Threads: everything here is called on the control thread, except what the workers do on
// their lcores. The header names no DPDK type but the mempool it is given.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/worker_link.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/idle_backoff.hpp"
#include "dataplane/result.hpp"

struct rte_mempool;

namespace magline::control {

struct WorkerSetup {
  dp::ForwarderConfig forwarder;  // worker, workers and flow_seed are set per worker
  const dp::Node* node = nullptr;
  const dp::Steering* steering = nullptr;
  std::vector<uint16_t> port_ids;  // DPDK port ids, in Node::ports order
  std::vector<unsigned> lcores;    // one per worker
  uint16_t burst = 32;
  dp::IdleConfig idle;
  uint32_t update_ring = 65536;  // messages; the peer, slow and control TX rings below
  uint32_t peer_ring = 8192;
  uint32_t slow_ring = 4096;
  uint32_t control_tx_ring = 4096;
};

class DpdkWorkers final : public WorkerLink {
 public:
  // Rings, QSBR and every worker's shared state; nothing runs yet. `pool`: where the slow path
  // takes its buffers. Errors: no worker, no memory for a ring.
  static Result<std::unique_ptr<DpdkWorkers>> create(WorkerSetup setup, rte_mempool* pool);
  // Stops the workers if they run, then frees what is left in the rings.
  ~DpdkWorkers() override;

  // Launches every worker on its lcore. `registry` (the Publisher's) outlives the workers.
  // Errors: an lcore that is not free.
  Result<void> launch(const dp::FrontendRegistry& registry);
  // Tells every worker to stop and waits for them (each applies what is in its update ring
  // first and publishes its final counters). Idempotent.
  void stop();
  bool running() const noexcept { return launched_; }
  // A worker that has returned (its lcore is idle again) before it was told to stop.
  bool failed(size_t worker) const noexcept;

  // WorkerLink.
  size_t workers() const noexcept override { return contexts_.size(); }
  uint32_t send_updates(size_t worker, const dp::Update* ups, uint32_t n) noexcept override;
  uint64_t applied(size_t worker) const noexcept override;
  uint64_t grace_start() noexcept override;
  bool grace_passed(uint64_t token) noexcept override;
  uint32_t receive_slow(size_t worker, dp::SlowPacket* out, uint32_t n) noexcept override;
  bool send_frame(const dp::Packet& p) noexcept override;
  dp::PacketPool& packets() noexcept override;
  const dp::WorkerShare& share(size_t worker) const noexcept override;
  dp::TrafficRows& traffic(size_t worker) noexcept override;

  struct Context;  // one worker's rings and state (dpdk_workers.cpp)

 private:
  DpdkWorkers() = default;
  struct Rings;
  WorkerSetup setup_;
  std::unique_ptr<Rings> rings_;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::atomic<bool> stop_{false};
  bool launched_ = false;
};

}  // namespace magline::control
