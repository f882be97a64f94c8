// A worker lcore's loop: run to completion over the worker's RX queue of every port.
//
//   drain updates from the control thread (apply them)
//   for each port:  drain peer messages, receive a burst, forward it, transmit, free drops,
//                   hand slow-path frames to the control thread
//   on an idle poll: reclaim expired flows
//   report a quiescent state (QSBR)
//
// Peer messages are drained right before every receive: a DNAT connection's reply entry is
// sent before its first packet leaves, so it is in place before any reply can be received.
// Frames the forwarder hands to another worker (ICMP errors about connections that worker holds)
// travel on the same peer rings; the receiving worker forwards them as a burst of their own.
// The worker never blocks, allocates, or logs once running.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/dpdk/qsbr.hpp"
#include "dataplane/dpdk/ring.hpp"
#include "dataplane/forwarder.hpp"

namespace magline::control {

using UpdateRing = dpdk::SpscRing<dp::Update>;
using PeerRing = dpdk::SpscRing<dp::PeerMessage>;
using SlowRing = dpdk::SpscRing<dp::SlowPacket>;
using TxRing = dpdk::SpscRing<dp::Packet>;

// Counters the worker keeps beside the forwarder's (also written by the worker only).
struct WorkerIoCounters {
  uint64_t polls = 0;
  uint64_t idle_polls = 0;
  uint64_t tx_full = 0;       // the device did not take a frame: freed
  uint64_t slow_full = 0;     // the control thread's ring was full: freed
  uint64_t handoff_full = 0;  // another worker's peer ring was full: a handed-off frame freed
};

// What a worker needs; built by the control thread before launch, owned by the Runtime.
struct WorkerContext {
  uint16_t index = 0;
  dp::ForwarderConfig config;
  const dp::Node* node = nullptr;
  const dp::FrontendRegistry* registry = nullptr;
  const dp::Steering* steering = nullptr;
  // The worker's counter rows (frontends, backends): written by the worker, read by the admin
  // listener; reset by the control thread only for slots no service state names.
  std::unique_ptr<dp::TrafficRows> traffic;
  std::vector<uint16_t> ports;  // DPDK port ids, in Node::ports order
  uint16_t burst = 32;
  UpdateRing* updates = nullptr;        // control -> this worker
  std::vector<PeerRing*> peers_in;      // from each worker (nullptr for itself)
  std::vector<PeerRing*> peers_out;     // to each worker (nullptr for itself)
  SlowRing* slow = nullptr;             // this worker -> control
  // Frames the control thread sends (ARP and NDP answers and requests, released frames): worker
  // 0 transmits them on its own TX queues. Devices such as af_packet have exactly as many TX
  // queues as RX queues, and every RX queue must be polled, so the control thread has none.
  TxRing* control_tx = nullptr;         // worker 0 only
  const dpdk::Qsbr* qsbr = nullptr;
  const std::atomic<bool>* stop = nullptr;
  std::atomic<uint64_t> applied{0};  // updates applied so far (release: after applying them)

  // Written by the worker; read by others only after it has stopped (rte_eal_wait_lcore), or
  // through the snapshot below.
  dp::ForwarderCounters counters;
  WorkerIoCounters io;
  dp::FlowTableStats flows;
  // A copy the worker refreshes about every 100 ms for live readers (admin listener), guarded
  // by a sequence number so that a reader never sees a torn copy.
  std::atomic<uint64_t> published_seq{0};
  dp::ForwarderCounters published_counters;
  dp::FlowTableStats published_flows;
  WorkerIoCounters published_io;
};

// The lcore entry point (rte_lcore_function_t): `arg` is a WorkerContext*. Returns 0, or -1 if
// the worker could not start (it then never went online).
int worker_main(void* arg);

// A consistent copy of a running worker's counters (any thread).
void read_worker_counters(const WorkerContext& w, dp::ForwarderCounters& counters,
                          dp::FlowTableStats& flows, WorkerIoCounters& io);

}  // namespace magline::control
