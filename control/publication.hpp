// Publication: how a change of services reaches every worker, and when what it replaced may be
// freed. The heart of the design (DESIGN.md, "Publishing"); the one place its safety argument is
// written down.
//
// send(change) queues the change's updates for every worker, in order, and pushes them into each
// worker's ring as far as it has room (the rest goes on later turns: a worker is never waited
// for). A worker drains its ring at the start of a turn of its loop, so it applies a publish's
// updates together, between two bursts. The states the change replaced or removed are retired:
// freed (the last reference this side drops) two grace periods after every update of the change
// is in the rings.
//
// Why two grace periods. A grace period (QSBR, dataplane/dpdk/qsbr.hpp) is a token T after which
// every online worker has reported a quiescent state with T or later; a worker reports at the
// end of every turn, and holds no pointer to a service state across turns except those its own
// update ring gave it (the forwarder's frontend map and id table). Let U be the update that
// replaces state S, in worker W's ring before T1 = grace_start() is taken.
// 1. When T1 has passed, W has ended a turn after T1 was taken (the report loads the token with
//    acquire, which synchronises with grace_start's release add, which came after U's enqueue).
//    So W's next drain sees U. But W may not have applied U yet: it may have drained its ring
//    just before U arrived, and reported T1 at the end of that same turn. Applying U reads S
//    (Forwarder::apply drops S's frontends, comparing them with U.old_state): S must live.
// 2. T2 = grace_start() is taken after T1 has passed. W reports T2 at the end of a turn that
//    began after its report of T1, so that turn began by draining U and applying it: by its
//    end, W holds no pointer to S. When T2 has passed, no worker does: S may be freed.
// One grace period would free S while a worker might still be about to apply U.
//
// The argument needs every worker to count from the first update it may see: a reader that is
// offline (or not registered yet) holds no grace period up, so a worker still starting would
// let S be freed before it drains U. Every worker's reader is therefore registered and online
// before the first update is sent (DpdkWorkers::create; the tests do the same): a worker that
// has not started holds grace periods up instead. (Until the eighth session the reader went
// online only when the worker's loop began, after its flow table was faulted in: a state
// retired meanwhile, e.g. by the first Kubernetes list, could be freed under it.)
//
// A grace period counts only from when the updates are in the rings (not merely queued here):
// a change's batch starts its first grace period once every worker's ring has taken every
// update queued up to and including that change's.
//
// Control thread only. Never blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <vector>

#include "control/publisher.hpp"
#include "control/worker_link.hpp"

namespace magline::control {

class Publication {
 public:
  explicit Publication(WorkerLink& link);
  // Frees what is still retiring. Precondition: no worker runs any more.
  ~Publication();

  // Sends a change's updates to every worker and retires what it replaced. A change without
  // updates does nothing.
  void send(Change change);
  // Updates that retire nothing (neighbours).
  void send(const std::vector<dp::Update>& updates);

  // One turn of the control loop: more of the queued updates into the rings, grace periods
  // started and checked, what they cover freed. Returns how many batches were freed.
  size_t poll();

  // Whether every update sent so far is in every ring and applied.
  bool in_effect() const noexcept;
  // How many times poll() has found everything sent so far in effect after a send(), and how
  // long the latest took from that send() (the update latency /metrics reports).
  uint64_t completed() const noexcept { return completed_; }
  std::chrono::steady_clock::duration last_latency() const noexcept { return last_latency_; }

  size_t retiring() const noexcept { return batches_.size(); }
  size_t queued(size_t worker) const noexcept { return queues_[worker].size() - heads_[worker]; }

 private:
  struct Batch {
    std::vector<std::shared_ptr<const dp::ServiceState>> states;
    std::vector<uint64_t> marks;  // per worker: the updates that must be in its ring first
    int stage = 0;                // 0: in the rings yet?  1, 2: grace period `token`
    uint64_t token = 0;
  };
  void queue(const std::vector<dp::Update>& updates);
  void flush();

  WorkerLink& link_;
  std::vector<std::vector<dp::Update>> queues_;  // per worker: queued, not yet in the ring
  std::vector<size_t> heads_;                    // ...from this index on
  std::vector<uint64_t> queued_total_;           // per worker: updates ever queued
  std::vector<uint64_t> sent_total_;             // per worker: updates ever in the ring
  std::list<Batch> batches_;
  std::chrono::steady_clock::time_point sent_at_{};
  bool awaiting_effect_ = false;
  uint64_t completed_ = 0;
  std::chrono::steady_clock::duration last_latency_{};
};

}  // namespace magline::control
