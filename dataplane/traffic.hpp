// A worker's traffic counters per frontend and per backend, and its neighbour hints, in rows
// indexed by stable slots (CounterSlots: one per (service, frontend) and per (service, backend)
// identity), so that they outlive every update of the service: a Prometheus counter never goes
// backwards while its frontend or backend exists (as VPP's per-thread counters, indexed by
// object, not by table version).
//
// Threads: the worker that owns the rows is their only writer while it runs (relaxed atomic
// stores of its own running totals); other threads read them with relaxed loads (totals need no
// ordering). A slot is reset (reset_frontend/reset_backend, any thread) only while no service
// state names it: no worker writes it then, and the publish that later hands the slot to a new
// identity orders the reset before the worker's next write.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "dataplane/big_array.hpp"
#include "dataplane/connection_limit.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

struct TrafficCounter {
  uint64_t packets = 0;
  uint64_t bytes = 0;

  // The owning worker only: its plain reads are of its own stores.
  void add(uint32_t frame_bytes) noexcept {
    std::atomic_ref<uint64_t>(packets).store(packets + 1, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(bytes).store(bytes + frame_bytes, std::memory_order_relaxed);
  }
  TrafficCounter load() const noexcept {
    return {std::atomic_ref<const uint64_t>(packets).load(std::memory_order_relaxed),
            std::atomic_ref<const uint64_t>(bytes).load(std::memory_order_relaxed)};
  }
  void reset() noexcept {
    std::atomic_ref<uint64_t>(packets).store(0, std::memory_order_relaxed);
    std::atomic_ref<uint64_t>(bytes).store(0, std::memory_order_relaxed);
  }
};

// Where the worker last found a backend's next hop in its neighbour table, valid while the
// table is at the same generation (the forwarder bumps it on every neighbour change, and never
// uses 0): the hit path skips the neighbour lookup. A slot's identity includes the backend's
// address, whose next hop is fixed by the node's addresses and routes for the process's life,
// so a hint stays right for as long as its slot keeps its identity; a reset slot holds
// generation 0, which matches nothing. Written and read by the owning worker only.
struct NeighborHint {
  uint32_t generation = 0;
  uint16_t port = 0;
  MacAddr mac;
};

// A backend's row: one half cache line.
struct alignas(32) BackendRow {
  TrafficCounter traffic;
  NeighborHint hint;
};
static_assert(sizeof(BackendRow) == 32 && sizeof(LimitRow) == 32);

class TrafficRows {
 public:
  // Slots of each kind: the most frontends and backends a node serves at once (the control
  // thread refuses a change that would need more). 1 MiB + 8 MiB per worker, faulted in at
  // construction; and a new-connection bucket per frontend (connection_limit.hpp), 2 MiB more.
  static constexpr uint32_t kFrontendSlots = 65536;
  static constexpr uint32_t kBackendSlots = 1u << 18;

  // What the default rows take.
  static constexpr uint64_t kBytes =
      uint64_t(kFrontendSlots) * (sizeof(TrafficCounter) + sizeof(LimitRow)) +
      uint64_t(kBackendSlots) * sizeof(BackendRow);

  TrafficRows(uint32_t frontends = kFrontendSlots, uint32_t backends = kBackendSlots)
      : frontends_(frontends), limits_(frontends), backends_(backends) {}

  TrafficCounter& frontend(uint32_t slot) noexcept { return frontends_[slot]; }
  LimitRow& limit(uint32_t slot) noexcept { return limits_[slot]; }
  BackendRow& backend(uint32_t slot) noexcept { return backends_[slot]; }
  TrafficCounter frontend_total(uint32_t slot) const noexcept { return frontends_[slot].load(); }
  uint64_t refused_total(uint32_t slot) const noexcept { return limits_[slot].refused_total(); }
  TrafficCounter backend_total(uint32_t slot) const noexcept {
    return backends_[slot].traffic.load();
  }
  void reset_frontend(uint32_t slot) noexcept {
    frontends_[slot].reset();
    limits_[slot].reset();
  }
  void reset_backend(uint32_t slot) noexcept {
    backends_[slot].traffic.reset();
    std::atomic_ref<uint32_t>(backends_[slot].hint.generation).store(0, std::memory_order_relaxed);
  }
  uint32_t frontend_slots() const noexcept { return uint32_t(frontends_.size()); }
  uint32_t backend_slots() const noexcept { return uint32_t(backends_.size()); }

 private:
  BigArray<TrafficCounter> frontends_;
  BigArray<LimitRow> limits_;
  BigArray<BackendRow> backends_;
};

}  // namespace magline::dp
