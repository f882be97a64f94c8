// A Forwarder on a fake port: frames go in as bytes built with the packet builder, verdicts and
// frames come out. One port (198.18.0.1/16, 2001:db8::1/64, MAC kLbMac), backends on-link.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/forwarder.hpp"
#include "tests/support/packet_builder.hpp"

namespace magline::dp {
inline void PrintTo(DropReason r, std::ostream* os) { *os << drop_reason_name(r); }
}  // namespace magline::dp

namespace magline::test {

enum class Verdict { tx, drop, slow, handoff };

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

class FakePeers final : public dp::PeerLink {
 public:
  bool send(uint16_t worker, const dp::PeerMessage& m) noexcept override {
    sent.push_back({worker, m});
    return accept;
  }
  std::vector<std::pair<uint16_t, dp::PeerMessage>> sent;
  bool accept = true;
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
  void forget_neighbor(const char* ip);

  Outcome run(const Bytes& frame, uint64_t now_ms = 1000);
  // Several frames in one burst.
  std::vector<Outcome> run_burst(const std::vector<Bytes>& frames, uint64_t now_ms = 1000);
  // A frame another worker handed to this one (Forwarder::process_handed_off).
  Outcome take_handed_off(const Bytes& frame, uint64_t now_ms = 1000);

  dp::Forwarder& forwarder() { return *fwd_; }
  const dp::Node& node() const { return node_; }
  FakePeers peers;

 private:
  std::vector<Outcome> burst(const std::vector<Bytes>& frames, uint64_t now_ms, bool handed_off);
  template <typename F>
  Outcome with_reason(F&& one);

  dp::Node node_;
  dp::FrontendRegistry registry_;
  dp::SingleWorker single_;
  dp::TrafficRows traffic_;
  std::unique_ptr<dp::Forwarder> fwd_;
  std::vector<std::shared_ptr<const dp::ServiceState>> services_;
};

// Service shorthands.
dp::Service service(const std::string& name, const char* vip, uint16_t port, dp::Protocol proto,
                    dp::ForwardMode mode, std::vector<std::pair<const char*, uint16_t>> backends);

// The source port a full-NAT frame left with.
uint16_t sport_of(const Bytes& frame);

}  // namespace magline::test
