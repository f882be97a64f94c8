#include "tests/packet/harness.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace magline::test {

namespace {
constexpr uint16_t kHeadroom = 128;

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
  }
  return "?";
}

Harness::Harness(dp::ForwarderConfig config, const dp::Steering* steering,
                 const std::vector<const char*>& more_addrs)
{
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
  fwd_ = std::make_unique<dp::Forwarder>(config, node_, registry_,
                                         steering ? *steering : single_, peers, traffic_);
}

const dp::ServiceState& Harness::add(dp::Service s) {
  std::vector<uint16_t> ids;
  for (const dp::Frontend& f : s.frontends) ids.push_back(*registry_.acquire(f, 0));
  auto built = dp::ServiceState::build(s, {&node_, ids, {}, {}});
  if (!built) throw std::runtime_error(built.error().message);
  const dp::ServiceState* old = nullptr;
  for (auto& existing : services_) {
    if (existing->spec().name == s.name) old = existing.get();
  }
  fwd_->apply(dp::Update{dp::Update::Kind::service, old, built->get(), {}});
  services_.push_back(*built);  // keep old states alive: flows may still name them
  return **built;
}

void Harness::remove(const std::string& name) {
  for (auto& existing : services_) {
    if (existing->spec().name == name) {
      fwd_->apply(dp::Update{dp::Update::Kind::service, existing.get(), nullptr, {}});
    }
  }
}

void Harness::neighbor(const char* addr, const Mac& mac) {
  dp::Update u;
  u.kind = dp::Update::Kind::neighbor;
  u.neighbor = dp::NeighborUpdate{ip(addr), dp::MacAddr{mac}, 0, true};
  fwd_->apply(u);
}

void Harness::forget_neighbor(const char* addr) {
  dp::Update u;
  u.kind = dp::Update::Kind::neighbor;
  u.neighbor = dp::NeighborUpdate{ip(addr), dp::MacAddr{}, 0, false};
  fwd_->apply(u);
}

std::vector<Outcome> Harness::run_burst(const std::vector<Bytes>& frames, uint64_t now_ms) {
  return burst(frames, now_ms, false);
}

Outcome Harness::take_handed_off(const Bytes& frame, uint64_t now_ms) {
  return with_reason([&] { return burst({frame}, now_ms, true).front(); });
}

std::vector<Outcome> Harness::burst(const std::vector<Bytes>& frames, uint64_t now_ms,
                                    bool handed_off) {
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<dp::Packet> pkts;
  for (const Bytes& f : frames) {
    bufs.emplace_back(kHeadroom + f.size() + 256);
  }
  for (size_t i = 0; i < frames.size(); ++i) {
    std::memcpy(bufs[i].data() + kHeadroom, frames[i].data(), frames[i].size());
    dp::Packet p;
    p.handle = &bufs[i];
    p.data = bufs[i].data() + kHeadroom;
    p.len = uint16_t(frames[i].size());
    p.headroom = kHeadroom;
    pkts.push_back(p);
  }
  dp::BurstOut out;
  if (handed_off) {
    fwd_->process_handed_off(pkts.data(), uint16_t(pkts.size()), now_ms, out);
  } else {
    fwd_->process(pkts.data(), uint16_t(pkts.size()), now_ms, out);
  }

  std::vector<Outcome> results(frames.size());
  auto index_of = [&](const dp::Packet& p) {
    return size_t(static_cast<std::vector<uint8_t>*>(p.handle) - bufs.data());
  };
  for (uint16_t i = 0; i < out.n_tx; ++i) {
    Outcome& o = results[index_of(out.tx[i])];
    o.verdict = Verdict::tx;
    o.port = out.tx[i].port;
    o.frame.assign(out.tx[i].data, out.tx[i].data + out.tx[i].len);
  }
  for (uint16_t i = 0; i < out.n_slow; ++i) {
    Outcome& o = results[index_of(out.slow[i].pkt)];
    o.verdict = Verdict::slow;
    o.slow = out.slow[i].reason;
    o.next_hop = out.slow[i].next_hop;
    o.frame.assign(out.slow[i].pkt.data, out.slow[i].pkt.data + out.slow[i].pkt.len);
  }
  // Drops carry no reason in BurstOut; run() recovers it from the counters.
  for (uint16_t i = 0; i < out.n_drop; ++i) {
    results[index_of(out.drop[i])].verdict = Verdict::drop;
  }
  for (uint16_t i = 0; i < out.n_handoff; ++i) {
    const dp::Packet& p = out.handoff[i].pkt;
    Outcome& o = results[index_of(p)];
    o.verdict = Verdict::handoff;
    o.worker = out.handoff[i].worker;
    o.frame.assign(p.data, p.data + p.len);
  }
  if (size_t(out.n_tx) + out.n_slow + out.n_drop + out.n_handoff != frames.size()) {
    throw std::logic_error("a frame was lost by the forwarder");
  }
  return results;
}

Outcome Harness::run(const Bytes& frame, uint64_t now_ms) {
  return with_reason([&] { return run_burst({frame}, now_ms).front(); });
}

// Runs one frame; a drop's reason is the counter that moved.
template <typename F>
Outcome Harness::with_reason(F&& one) {
  const auto before = fwd_->counters().drops;
  Outcome o = one();
  if (o.verdict == Verdict::drop) {
    const auto& after = fwd_->counters().drops;
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
