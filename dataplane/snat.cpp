#include "dataplane/snat.hpp"

#include <algorithm>

namespace magline::dp {

SnatAllocator::SnatAllocator(const Node& node, const Steering& steering, uint16_t worker,
                             uint16_t lo, uint16_t hi, FlowTable& flows,
                             const FrontendMap& frontends)
    : steering_(steering),
      worker_(worker),
      lo_(lo),
      hi_(hi),
      flows_(flows),
      frontends_(frontends),
      uses_(new uint32_t[65536]()) {
  // Node::source_addresses scans a port's addresses: look each answer up once, not per frame.
  for (const NodePort& port : node.ports) {
    std::array<Addrs, 2> both;
    for (const Family f : {Family::v4, Family::v6}) {
      Addrs& a = both[f == Family::v6];
      for (const IfAddr* addr : node.source_addresses(port.id, f)) {
        if (a.n == kMaxSnatAddresses) break;
        a.subnet[a.n] = addr->subnet();
        a.addr[a.n++] = addr;
      }
    }
    addrs_.push_back(both);
  }
  ports_ = addrs_.size();
}

uint8_t SnatAllocator::choices(const NextHop& hop, Family family) const noexcept {
  if (hop.port >= ports_) return 0;
  const Addrs& a = addrs_[hop.port][family == Family::v6];
  if (a.n <= 1) return a.n;  // none, or the one
  uint8_t set = 0;
  for (uint8_t i = 0; i < a.n; ++i) {
    if (a.subnet[i].contains(hop.ip)) set |= uint8_t(1u << i);
  }
  return set != 0 ? set : 1;
}

bool SnatAllocator::port_free(const FlowKey& reply, uint64_t hash, uint64_t now_ms) noexcept {
  const uint16_t p = reply.dport;
  if (flows_.may_hold(hash, now_ms)) return false;
  const bool frontend_port = (used_[p >> 6] >> (p & 63)) & 1;
  return !frontend_port ||
         frontends_.find(reply.dst, reply.family, p, reply.proto).service == nullptr;
}

bool SnatAllocator::foresee(const NextHop& hop, FlowKey& reply,
                            uint64_t flow_hash) const noexcept {
  const uint8_t set = choices(hop, reply.family);
  if (set == 0) return false;
  const uint8_t index = nth_choice(set, first_choice(flow_hash, unsigned(__builtin_popcount(set))));
  reply.dst = address(hop.port, reply.family, index)->addr.bytes;
  const std::optional<uint16_t> port = steering_.find_reply_port(
      reply, hop.port, worker_, first_port(flow_hash), lo_, hi_,
      [](void*, uint16_t) { return true; }, nullptr, 1);
  if (!port) return false;
  reply.dport = *port;
  return true;
}

std::optional<uint16_t> SnatAllocator::search(const FlowKey& reply, uint16_t port,
                                              uint64_t flow_hash, uint32_t max_checks,
                                              uint64_t now_ms) noexcept {
  struct Ctx {
    SnatAllocator* self;
    FlowKey key;
    uint64_t now_ms;
  } ctx{this, reply, now_ms};
  auto usable = [](void* c, uint16_t candidate) {
    auto* x = static_cast<Ctx*>(c);
    x->key.dport = candidate;
    return x->self->port_free(x->key, x->self->flows_.hash(x->key), x->now_ms);
  };
  return steering_.find_reply_port(reply, port, worker_, first_port(flow_hash), lo_, hi_, usable,
                                   &ctx, max_checks);
}

SnatAllocator::Outcome SnatAllocator::choose(const NextHop& hop, FlowKey& reply,
                                             uint64_t flow_hash, uint16_t foreseen_port,
                                             uint64_t foreseen_hash, uint64_t now_ms,
                                             uint8_t& index) noexcept {
  const uint8_t set = choices(hop, reply.family);
  if (set == 0) return Outcome::no_address;
  const unsigned count = unsigned(__builtin_popcount(set));
  const unsigned first = first_choice(flow_hash, count);
  const uint8_t foreseen = nth_choice(set, first);
  index = foreseen;
  reply.dst = address(hop.port, reply.family, index)->addr.bytes;
  reply.dport = foreseen_port;
  // What foresee() gave, when free (as it nearly always is).
  if (foreseen_hash != 0 && port_free(reply, foreseen_hash, now_ms)) return Outcome::foreseen;
  const uint32_t checks = std::max(kMinSnatPortChecks, kMaxSnatPortChecks / count);
  std::optional<uint16_t> port;
  for (unsigned k = 0; k < count && !port; ++k) {
    index = nth_choice(set, (first + k) % count);
    reply.dst = address(hop.port, reply.family, index)->addr.bytes;
    port = search(reply, hop.port, flow_hash, checks, now_ms);
  }
  if (!port) return Outcome::exhausted;
  reply.dport = *port;
  // The same address and port as foreseen: `foreseen_hash` is still the reply key's.
  return index == foreseen && *port == foreseen_port ? Outcome::foreseen : Outcome::searched;
}

}  // namespace magline::dp
