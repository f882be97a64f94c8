#include "tests/packet/harness.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace magline::test {

namespace {
constexpr uint16_t kHeadroom = 128;
using Buffers = std::vector<std::unique_ptr<std::vector<uint8_t>>>;

dp::IpAddr ip(const char* s) {
  auto a = dp::parse_ip(s);
  if (!a) throw std::invalid_argument(s);
  return *a;
}
}  // namespace

std::string to_string(const Outcome& o) {
  switch (o.verdict) {
    case Verdict::tx: return "tx on port " + std::to_string(o.port);
    case Verdict::drop: return "drop: " + std::string(dp::drop_reason_name(o.reason));
    case Verdict::slow: return "slow path: " + std::to_string(int(o.slow));
    case Verdict::handoff: return "handed to worker " + std::to_string(o.worker);
    case Verdict::held: return "held";
  }
  return "?";
}

Harness::Harness(dp::ForwarderConfig config, const dp::Steering* steering,
                 const std::vector<const char*>& more_addrs)
    : traffic_(4096, 4096),
      workers_(std::max<uint16_t>(config.workers, uint16_t(config.worker + 1))),
      self_(config.worker) {
  dp::NodePort p;
  p.id = 0;
  p.name = "lan0";
  p.mac = dp::MacAddr{kLbMac};
  p.addrs = {{ip(kLbIp), 16}, {ip(kLbIp6), 64}};
  for (const char* a : more_addrs) {
    p.addrs.push_back({ip(a), uint8_t(ip(a).family == dp::Family::v4 ? 16 : 64)});
  }
  node_.ports.push_back(p);
  if (config.flow_capacity == dp::ForwarderConfig{}.flow_capacity) config.flow_capacity = 4096;
  dp::WorkerRings<dp::LocalRing> rings{&updates_, {}, {}, &slow_, nullptr};
  for (uint16_t w = 0; w < workers_; ++w) {
    const bool other = w != self_;
    peers_in_.push_back(other ? std::make_unique<dp::LocalRing<dp::PeerMessage>>() : nullptr);
    peers_out_.push_back(other ? std::make_unique<dp::LocalRing<dp::PeerMessage>>() : nullptr);
    rings.peers_in.push_back(peers_in_.back().get());
    rings.peers_out.push_back(peers_out_.back().get());
  }
  worker_ = std::make_unique<Worker>(config, node_, registry_, steering ? *steering : single_, io_,
                                     rings, traffic_, share_, dp::kMaxBurst);
}

uint32_t Harness::slot(const std::string& identity) {
  return slots_.try_emplace(identity, uint32_t(slots_.size())).first->second;
}

void Harness::update(const dp::Update& u) {
  updates_.enqueue(u);
  turn(now_ms_);
}

void Harness::turn(uint64_t now_ms, std::vector<dp::Handoff>* handed) {
  now_ms_ = now_ms;
  worker_->poll(now_ms);
  for (uint16_t w = 0; w < workers_; ++w) {
    if (!peers_out_[w]) continue;
    dp::PeerMessage m;
    while (peers_out_[w]->dequeue(m)) {
      if (m.kind != dp::PeerMessage::Kind::frame) {
        peers.sent.push_back({w, m});
      } else if (handed != nullptr) {
        handed->push_back({m.pkt, w});
      }
    }
  }
}

const dp::ServiceState& Harness::add(dp::Service s) {
  std::vector<uint16_t> ids;
  std::vector<uint32_t> fe_slots, be_slots;
  for (const dp::Frontend& f : s.frontends) {
    ids.push_back(*registry_.acquire(f, 0));
    fe_slots.push_back(slot(s.name + " " + dp::to_string(f)));
  }
  for (const dp::Backend& b : s.backends) {
    be_slots.push_back(slot(s.name + " " + dp::backend_id(b.addr, b.port)));
  }
  auto built = dp::ServiceState::build(s, {&node_, ids, fe_slots, be_slots});
  if (!built) throw std::runtime_error(built.error().message);
  const dp::ServiceState* old = nullptr;
  for (auto& existing : services_) {
    if (existing->spec().name == s.name) old = existing.get();
  }
  services_.push_back(*built);  // keep old states alive: flows may still name them
  update(dp::Update{dp::Update::Kind::service, old, built->get(), {}, {}, {}});
  return **built;
}

void Harness::remove(const std::string& name) {
  for (auto& existing : services_) {
    if (existing->spec().name == name) {
      update(dp::Update{dp::Update::Kind::service, existing.get(), nullptr, {}, {}, {}});
    }
  }
}

void Harness::neighbor(const char* addr, const Mac& mac) {
  dp::Update u;
  u.kind = dp::Update::Kind::neighbor;
  u.neighbor = dp::NeighborUpdate{ip(addr), dp::MacAddr{mac}, 0, true};
  update(u);
}

void Harness::path_mtu(const char* backend, uint16_t mtu) {
  dp::Update u;
  u.kind = dp::Update::Kind::path_mtu;
  u.path_mtu = dp::PathMtuUpdate{ip(backend), mtu};
  update(u);
}

void Harness::dnat_return(const char* backend, uint16_t port, dp::Protocol proto,
                          std::optional<uint16_t> frontend) {
  dp::Update u;
  u.kind = dp::Update::Kind::dnat_return;
  u.dnat_return = {{ip(backend), port, uint8_t(proto)}, frontend.value_or(0), frontend.has_value()};
  update(u);
}

void Harness::route(const char* prefix, const char* via) {
  const auto to = dp::parse_prefix(prefix, dp::HostBits::reject);
  if (!to) throw std::invalid_argument(prefix);
  node_.routes.push_back({*to, ip(via), 0});
  forwarder().routes_changed();
}

void Harness::forget_neighbor(const char* addr) {
  dp::Update u;
  u.kind = dp::Update::Kind::neighbor;
  u.neighbor = dp::NeighborUpdate{ip(addr), dp::MacAddr{}, 0, false};
  update(u);
}

void Harness::deliver(const dp::PeerMessage& m, uint64_t now_ms) {
  const uint16_t from = self_ == 0 ? 1 : 0;
  peers_in_.at(from)->enqueue(m);
  turn(now_ms);
}

std::vector<Outcome> Harness::run_burst(const std::vector<Bytes>& frames, uint64_t now_ms) {
  return burst(frames, now_ms, false);
}

Outcome Harness::take_handed_off(const Bytes& frame, uint64_t now_ms) {
  return with_reason([&] { return burst({frame}, now_ms, true).front(); });
}

namespace {

// Each frame copied into a buffer of `bufs` with headroom and room to grow, as a Packet.
std::vector<dp::Packet> packets(const std::vector<Bytes>& frames, Buffers& bufs) {
  bufs.clear();
  for (const Bytes& f : frames) {
    bufs.push_back(std::make_unique<std::vector<uint8_t>>(kHeadroom + f.size() + 256));
  }
  std::vector<dp::Packet> pkts;
  for (size_t i = 0; i < frames.size(); ++i) {
    std::memcpy(bufs[i]->data() + kHeadroom, frames[i].data(), frames[i].size());
    dp::Packet p;
    p.handle = bufs[i].get();
    p.data = bufs[i]->data() + kHeadroom;
    p.len = uint16_t(frames[i].size());
    p.headroom = kHeadroom;
    pkts.push_back(p);
  }
  return pkts;
}

}  // namespace

dp::WorkerIoCounters Harness::loop(const std::vector<Bytes>& frames, LoopIdle& idle,
                                   const std::atomic<bool>& stop) {
  Buffers bufs;
  io_ = FakeIo{};
  io_.arriving = packets(frames, bufs);
  struct NoQsbr {
    void online() noexcept {}
    void quiescent() noexcept {}
    void offline() noexcept {}
  } q;
  worker_->run(stop, [this] { return now_ms_; }, q, idle);
  return worker_->io_counters();
}

std::vector<Outcome> Harness::burst(const std::vector<Bytes>& frames, uint64_t now_ms,
                                    bool handed_off) {
  Buffers bufs;
  const std::vector<dp::Packet> pkts = packets(frames, bufs);
  io_ = FakeIo{};
  slow_ = dp::LocalRing<dp::SlowPacket>();
  released.clear();
  if (handed_off) {
    // Handed over by another worker: a peer message, forwarded as a burst of its own.
    const uint16_t from = self_ == 0 ? 1 : 0;
    for (const dp::Packet& p : pkts) {
      dp::PeerMessage m;
      m.kind = dp::PeerMessage::Kind::frame;
      m.pkt = p;
      peers_in_.at(from)->enqueue(m);
    }
  } else {
    io_.arriving = pkts;
  }
  std::vector<dp::Handoff> handed;
  turn(now_ms, &handed);

  std::vector<Outcome> results(frames.size());
  std::vector<bool> done(frames.size());
  // The outcome of a frame of this burst, or of one held in an earlier burst (`released`).
  auto outcome_of = [&](const dp::Packet& p) -> Outcome& {
    for (size_t i = 0; i < frames.size(); ++i) {
      if (bufs[i].get() == p.handle) {
        done[i] = true;
        return results[i];
      }
    }
    const auto it = held_.find(p.handle);
    if (it == held_.end()) throw std::logic_error("a frame from nowhere");
    bufs.push_back(std::move(it->second));  // valid until the end of the burst
    held_.erase(it);
    return released.emplace_back();
  };
  for (const dp::Packet& p : io_.sent) {
    Outcome& o = outcome_of(p);
    o.verdict = Verdict::tx;
    o.port = p.port;
    o.frame.assign(p.data, p.data + p.len);
  }
  dp::SlowPacket sp;
  while (slow_.dequeue(sp)) {
    Outcome& o = outcome_of(sp.pkt);
    o.verdict = Verdict::slow;
    o.slow = sp.reason;
    o.next_hop = sp.next_hop;
    o.frame.assign(sp.pkt.data, sp.pkt.data + sp.pkt.len);
  }
  // Drops carry no reason on the way out; run() recovers it from the counters.
  for (const dp::Packet& p : io_.freed) outcome_of(p).verdict = Verdict::drop;
  for (const dp::Handoff& h : handed) {
    Outcome& o = outcome_of(h.pkt);
    o.verdict = Verdict::handoff;
    o.worker = h.worker;
    o.frame.assign(h.pkt.data, h.pkt.data + h.pkt.len);
  }
  // What went nowhere is held by the forwarder (the SYN proxy): its buffer must live on.
  for (size_t i = 0; i < frames.size(); ++i) {
    if (done[i]) continue;
    results[i].verdict = Verdict::held;
    void* handle = bufs[i].get();
    held_[handle] = std::move(bufs[i]);
  }
  return results;
}

Outcome Harness::run(const Bytes& frame, uint64_t now_ms) {
  return with_reason([&] { return run_burst({frame}, now_ms).front(); });
}

// Runs one frame; a drop's reason is the counter that moved.
template <typename F>
Outcome Harness::with_reason(F&& one) {
  const auto before = worker_->forwarder().counters().drops;
  Outcome o = one();
  if (o.verdict == Verdict::drop) {
    const auto& after = worker_->forwarder().counters().drops;
    for (size_t r = 0; r < after.size(); ++r) {
      if (after[r] != before[r]) o.reason = dp::DropReason(r);
    }
  }
  return o;
}

dp::Service service(const std::string& name, const char* vip, uint16_t port, dp::Protocol proto,
                    dp::ForwardMode mode, std::vector<std::pair<const char*, uint16_t>> backends) {
  dp::Service s;
  s.name = name;
  s.frontends = {{ip(vip), port, proto, dp::FrontendKind::load_balancer}};
  for (auto& [addr, bport] : backends) s.backends.push_back({ip(addr), bport, 1, {}});
  s.mode = mode;
  s.table_size = 251;
  return s;
}

uint16_t sport_of(const Bytes& frame) {
  dp::Parsed p;
  if (dp::parse(frame, p) != dp::DropReason::none) throw std::runtime_error("unparsable");
  return p.key.sport;
}

}  // namespace magline::test
