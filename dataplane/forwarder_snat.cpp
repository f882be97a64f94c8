// Full-NAT's source addresses and ports: which of a port's addresses a connection may use, where
// its search for a port starts, and whether a port is free. Part of the Forwarder (forwarder.cpp
// calls these from open() and prefetch_reply()); not for other users.
#include "dataplane/forwarder.hpp"

#include <optional>

namespace magline::dp {

uint8_t Forwarder::snat_choices(const NextHop& hop, Family family) const noexcept {
  if (hop.port >= snat_.size()) return 0;
  const SnatAddrs& a = snat_[hop.port][family == Family::v6];
  if (a.n <= 1) return a.n;  // none, or the one
  uint8_t choices = 0;
  for (uint8_t i = 0; i < a.n; ++i) {
    if (a.subnet[i].contains(hop.ip)) choices |= uint8_t(1u << i);
  }
  return choices != 0 ? choices : 1;
}

// Whether a new connection may take `reply_key.dport` as its full-NAT source port: no open
// connection's replies come to it (`hash` is reply_key's), and no frontend (a NodePort on the
// same address) listens on it.
bool Forwarder::snat_port_free(const FlowKey& reply_key, uint64_t hash) noexcept {
  const uint16_t p = reply_key.dport;
  if (flows_.find(reply_key, hash, now_ms_) != nullptr) return false;
  const bool frontend_port = (port_used_[p >> 6] >> (p & 63)) & 1;
  return !frontend_port ||
         frontends_.find(reply_key.dst_addr(), p, reply_key.proto).service == nullptr;
}

// Where a connection's search for a source port starts: spread over the range by its hash.
uint16_t Forwarder::first_snat_port(uint64_t flow_hash) const noexcept {
  const uint32_t span = uint32_t(config_.snat_port_hi - config_.snat_port_lo) + 1;
  return uint16_t(config_.snat_port_lo + reduce32(uint32_t(flow_hash >> 32), span));
}

std::optional<uint16_t> Forwarder::choose_snat_port(const FlowKey& reply_key, uint16_t port,
                                                    uint64_t flow_hash,
                                                    uint32_t max_checks) noexcept {
  struct Ctx {
    Forwarder* self;
    FlowKey key;
  } ctx{this, reply_key};
  auto usable = [](void* c, uint16_t candidate) {
    auto* x = static_cast<Ctx*>(c);
    x->key.dport = candidate;
    return x->self->snat_port_free(x->key, x->self->flows_.hash(x->key));
  };
  return steering_.find_reply_port(reply_key, port, config_.worker, first_snat_port(flow_hash),
                                   config_.snat_port_lo, config_.snat_port_hi, usable, &ctx,
                                   max_checks);
}

}  // namespace magline::dp
