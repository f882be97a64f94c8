// The worker (dataplane/worker.hpp: the one burst dispatch) on a fake port: frames go in as
// bytes built with the packet builder, verdicts and frames come out. One port (198.18.0.1/16,
// 2001:db8::1/64, MAC kLbMac), backends on-link. Services and neighbours arrive through the
// worker's update ring, messages from other workers through its peer rings, as they do in
// `magline run`; what it sends other workers comes out of its peer rings.
#pragma once

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/forwarder.hpp"
#include "dataplane/local_ring.hpp"
#include "dataplane/worker.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::dp {
inline void PrintTo(DropReason r, std::ostream* os) { *os << drop_reason_name(r); }
}  // namespace magline::dp

namespace magline::test {

// held: kept by the forwarder for later (the SYN proxy holds a client's first data segment).
enum class Verdict { tx, drop, slow, handoff, held };

struct Outcome {
  Verdict verdict = Verdict::drop;
  dp::DropReason reason = dp::DropReason::none;  // drop
  dp::SlowReason slow = dp::SlowReason::arp;     // slow
  dp::NextHop next_hop;                          // slow, needs_neighbor
  uint16_t port = 0;                             // tx: egress port
  uint16_t worker = 0;                           // handoff: the worker it goes to
  Bytes frame;                                   // tx, slow and handoff: the frame as it leaves
};

std::string to_string(const Outcome& o);

// What the worker sent other workers (not handed-off frames: those are outcomes), by worker.
struct FakePeers {
  std::vector<std::pair<uint16_t, dp::PeerMessage>> sent;
};

// The worker's port: frames the test gives, and what the worker sends and frees.
struct FakeIo {
  std::vector<dp::Packet> arriving;
  size_t next = 0;
  std::vector<dp::Packet> sent;
  std::vector<dp::Packet> freed;

  uint16_t rx(uint16_t, dp::Packet* out, uint16_t n) noexcept {
    uint16_t got = 0;
    for (; got < n && next < arriving.size(); ++got) out[got] = arriving[next++];
    return got;
  }
  // Takes at most kMaxBurst frames a call, as a DPDK port's burst does.
  uint16_t tx(uint16_t port, dp::Packet* pkts, uint16_t n) noexcept {
    n = std::min(n, dp::kMaxBurst);
    for (uint16_t i = 0; i < n; ++i) {
      sent.push_back(pkts[i]);
      sent.back().port = port;
    }
    return n;
  }
  void free(const dp::Packet* pkts, uint16_t n) noexcept { freed.insert(freed.end(), pkts, pkts + n); }
};

inline constexpr const char* kLbIp = "198.18.0.1";
inline constexpr const char* kLbIp6 = "2001:db8::1";

class Harness {
 public:
  // `more_addrs`: addresses the port has beside kLbIp and kLbIp6 (more full-NAT sources).
  explicit Harness(dp::ForwarderConfig config = {}, const dp::Steering* steering = nullptr,
                   const std::vector<const char*>& more_addrs = {});

  // Installs (or replaces, by name) a service; returns its state.
  const dp::ServiceState& add(dp::Service s);
  void remove(const std::string& name);
  void neighbor(const char* ip, const Mac& mac);
  // The node's encapsulation settings and static routes: before add() of the services they
  // concern (a service resolves its backends' next hops when it is built).
  void encapsulation(const dp::EncapSettings& e) { node_.encap = e; }
  // Gives the port a kernel interface (the exception path), or takes it away.
  void kernel_interface(bool on = true) { node_.ports[0].kernel = on; }
  void route(const char* prefix, const char* via);
  void forget_neighbor(const char* ip);
  // A backend's path MTU as the control thread publishes it (0: forget it).
  void path_mtu(const char* backend, uint16_t mtu);
  // The DNAT frontend a backend serves (a FrontendRegistry id, dp::kAmbiguousFrontend), as the
  // control thread publishes it; none: it serves none.
  void dnat_return(const char* backend, uint16_t port, dp::Protocol proto,
                   std::optional<uint16_t> frontend);

  Outcome run(const Bytes& frame, uint64_t now_ms = 1000);
  // Several frames in one burst.
  std::vector<Outcome> run_burst(const std::vector<Bytes>& frames, uint64_t now_ms = 1000);
  // A frame another worker handed to this one (Forwarder::process_handed_off).
  Outcome take_handed_off(const Bytes& frame, uint64_t now_ms = 1000);
  // A message from another worker, delivered by a turn of the worker.
  void deliver(const dp::PeerMessage& m, uint64_t now_ms);

  // What Worker::run asks after each turn (its `Idle`), as a test states it.
  struct LoopIdle {
    virtual uint32_t after_turn(bool busy) noexcept = 0;
    virtual uint64_t sleep(uint32_t us) noexcept = 0;
  };
  // The worker's own loop (Worker::run) with `frames` waiting at its port, until `stop`.
  dp::WorkerIoCounters loop(const std::vector<Bytes>& frames, LoopIdle& idle,
                            const std::atomic<bool>& stop);

  dp::Forwarder& forwarder() { return worker_->forwarder(); }
  // Frames held in earlier bursts that the last burst sent or dropped.
  std::vector<Outcome> released;
  const dp::Node& node() const { return node_; }
  // The worker's traffic rows; slots are handed out in the order services' frontends and
  // backends are first added.
  dp::TrafficRows& traffic() { return traffic_; }
  FakePeers peers;

 private:
  using Worker = dp::Worker<FakeIo, dp::LocalRing>;
  std::vector<Outcome> burst(const std::vector<Bytes>& frames, uint64_t now_ms, bool handed_off);
  template <typename F>
  Outcome with_reason(F&& one);
  void update(const dp::Update& u);
  // One turn of the worker; what it sent other workers goes to `peers`, frames it handed over
  // to `handed` (when given).
  void turn(uint64_t now_ms, std::vector<dp::Handoff>* handed = nullptr);
  uint32_t slot(const std::string& identity);

  dp::Node node_;
  dp::FrontendRegistry registry_;
  dp::SingleWorker single_;
  dp::TrafficRows traffic_;
  dp::WorkerShare share_;
  FakeIo io_;
  dp::LocalRing<dp::Update> updates_;
  dp::LocalRing<dp::SlowPacket> slow_;
  std::vector<std::unique_ptr<dp::LocalRing<dp::PeerMessage>>> peers_in_, peers_out_;
  std::unique_ptr<Worker> worker_;
  uint16_t workers_ = 1;
  uint16_t self_ = 0;
  uint64_t now_ms_ = 0;
  std::map<std::string, uint32_t> slots_;
  std::map<void*, std::unique_ptr<std::vector<uint8_t>>> held_;  // buffers the forwarder holds  // counter slots by (service, frontend/backend)
  std::vector<std::shared_ptr<const dp::ServiceState>> services_;
};

// Service shorthands.
dp::Service service(const std::string& name, const char* vip, uint16_t port, dp::Protocol proto,
                    dp::ForwardMode mode, std::vector<std::pair<const char*, uint16_t>> backends);

// The source port a full-NAT frame left with.
uint16_t sport_of(const Bytes& frame);

}  // namespace magline::test
