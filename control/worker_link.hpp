// What the control thread needs of the workers, however they run: lcores on DPDK ports
// (control/dpdk_workers.hpp), or threads and rings in a test. Control thread only; nothing here
// is per packet, and nothing blocks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/messages.hpp"
#include "dataplane/slow_path.hpp"
#include "dataplane/traffic.hpp"
#include "dataplane/worker.hpp"

namespace magline::control {

class WorkerLink {
 public:
  virtual ~WorkerLink() = default;
  virtual size_t workers() const noexcept = 0;

  // Publication (control/publication.hpp): the worker's update ring, how many updates it has
  // applied, and grace periods (a token after which every worker has finished a turn of its
  // loop: QSBR).
  virtual uint32_t send_updates(size_t worker, const dp::Update* ups, uint32_t n) noexcept = 0;
  virtual uint64_t applied(size_t worker) const noexcept = 0;
  virtual uint64_t grace_start() noexcept = 0;
  virtual bool grace_passed(uint64_t token) noexcept = 0;

  // The slow path: frames a worker handed over; frames to send (through worker 0, which owns a
  // TX queue of every port); buffers for the frames the slow path makes.
  virtual uint32_t receive_slow(size_t worker, dp::SlowPacket* out, uint32_t n) noexcept = 0;
  virtual bool send_frame(const dp::Packet& p) noexcept = 0;
  virtual dp::PacketPool& packets() noexcept = 0;

  // Counters: what each worker shares, and its rows (reset for a slot no state names).
  virtual const dp::WorkerShare& share(size_t worker) const noexcept = 0;
  virtual dp::TrafficRows& traffic(size_t worker) noexcept = 0;
};

}  // namespace magline::control
