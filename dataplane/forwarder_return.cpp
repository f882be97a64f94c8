// DNAT replies for which this node holds no entry (forwarder.hpp, "Several nodes"): translated
// from the backend alone when it serves one DNAT frontend (the control thread's map,
// Update::Kind::dnat_return), and routed to the client. Off the hit path.
#include "dataplane/forwarder.hpp"
#include "dataplane/forwarder_work.hpp"
#include "dataplane/rewrite.hpp"

namespace magline::dp {

// A frame for no frontend and no connection. When its source is a backend of one DNAT frontend
// and it is not for this node, it is a reply whose connection another node opened (or whose
// entry was lost): its source becomes the frontend's and it is routed to the client. Else it is
// the kernel's or dropped, as any frame for no one.
void Forwarder::stateless_reply(Packet& pkt, const Work& w, BurstOut& out) noexcept {
  const Parsed& p = w.p;
  const uint16_t* id = dnat_frontend_of_reply(p.key);
  if (id == nullptr) {
    kernel_or_drop(pkt, p, DropReason::no_service, out);
    return;
  }
  const ClientRoute to_client = route_to_client(*id, p.key);
  if (to_client.drop != DropReason::none) {
    drop(pkt, to_client.drop, out);
    return;
  }
  const FrontendRef& f = registry_.at(*id);
  const Tuple to{f.addr.bytes.data(), p.key.dst.data(), f.port, p.key.dport};
  if (const DropReason d = rewrite_tuple({pkt.data, pkt.len}, p, to); d != DropReason::none) {
    drop(pkt, d, out);
    return;
  }
  ++counters_.stateless_replies;
  send_to(pkt, to_client.hop, out);
}

// The frontend (or kAmbiguousFrontend) of the DNAT connection a reply with key `reply` is for,
// by its source, the backend; null when it is no DNAT backend's or it goes to this node.
const uint16_t* Forwarder::dnat_frontend_of_reply(const FlowKey& reply) const noexcept {
  if (dnat_returns_.size() == 0 || routes_.is_local(reply.dst_addr())) return nullptr;
  return dnat_returns_.find(Endpoint{reply.src_addr(), reply.sport, reply.proto});
}

// Where a DNAT reply without an entry goes, for the frontend the backends' map gave
// (dnat_frontend_of_reply()): the route to its destination, the client; or why it cannot go.
Forwarder::ClientRoute Forwarder::route_to_client(uint16_t frontend,
                                                  const FlowKey& reply) const noexcept {
  if (frontend == kAmbiguousFrontend) return {DropReason::reply_ambiguous, {}};
  const std::optional<NextHop> hop = routes_.resolve(reply.dst_addr());
  if (!hop) return {DropReason::no_route_to_client, {}};
  return {DropReason::none, *hop};
}

// Whether the replies of a DNAT connection to backend `idx` can be translated without an
// entry: the map names this frontend for the backend, and a route leads to the client through a
// neighbour known now (else the reply entry's last hop, the client's frame's source MAC, is the
// better way back).
bool Forwarder::returns_without_state(const Work& w, uint16_t idx) noexcept {
  if (!config_.dnat_one_entry) return false;
  const ServiceState& s = *w.fe.service;
  if (!returns_alone(s, idx, s.frontend_id(w.fe.index), w.p.key.proto)) return false;
  const std::optional<NextHop> hop = routes_.resolve(w.p.key.src_addr());
  return hop && hop_known(hop->ip);
}

// Whether the backends' map names `frontend` for backend `idx` of `s` (protocol `proto`):
// remembered per backend slot until the next DNAT-return or service update.
bool Forwarder::returns_alone(const ServiceState& s, uint16_t idx, uint16_t frontend,
                              uint8_t proto) noexcept {
  const uint32_t slot = s.backend_slot(idx);
  ReturnMemo& m = return_memo_[slot & (kReturnMemo - 1)];
  if (m.generation == returns_generation_ && m.slot == slot && m.frontend == frontend &&
      m.proto == proto) {
    return m.alone;
  }
  const Backend& b = s.backend(idx);
  const uint16_t* id = dnat_returns_.find(Endpoint{b.addr, b.port, proto});
  m = {slot, returns_generation_, frontend, proto, id != nullptr && *id == frontend};
  return m.alone;
}

// Whether next hop `ip` is among the neighbours; the last one found is remembered until the
// next neighbour change (most clients come through one router).
bool Forwarder::hop_known(const IpAddr& ip) noexcept {
  if (known_hop_generation_ == neighbor_generation_ && known_hop_ == ip) return true;
  if (neighbors_.find(ip) == nullptr) return false;
  known_hop_ = ip;
  known_hop_generation_ = neighbor_generation_;
  return true;
}

}  // namespace magline::dp
