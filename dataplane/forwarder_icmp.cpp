// ICMP errors about connections Magline translates: the forwarder's side of icmp_error.hpp
// (which connection an error is about, and where it goes).
#include "dataplane/forwarder.hpp"

#include "dataplane/encap.hpp"
#include "dataplane/forwarder_work.hpp"
#include "dataplane/icmp_error.hpp"

namespace magline::dp {

// An ICMP error (destination unreachable, fragmentation needed, packet too big, time exceeded)
// quoting a packet of a connection Magline translates goes to the host that sent that packet,
// with the quote as that host sent it: path MTU discovery through the load balancer. The quote
// reversed is the connection's key: its original direction when a client-side router answered a
// reply (the error goes to the backend), its reply direction when a backend-side router answered
// a forwarded packet (the error goes to the client). Errors about anything else are dropped.
//
// A router's "fragmentation needed" or "packet too big" about a packet Magline encapsulated goes
// to the control thread, which learns the backend's path MTU from it (encap.hpp).
void Forwarder::icmp_error(Packet& pkt, Work& w, BurstOut& out) noexcept {
  const IcmpInner& in = w.p.inner;
  const uint8_t proto = in.key.proto;
  if ((proto == kProtoIpip || proto == kProtoIpv6 || proto == kProtoUdp) &&
      tunnel_path_mtu({pkt.data, pkt.len}, w.p, node_)) {
    if (!slow_share(pmtu_window_, pmtu_left_, kEchoPerWindow)) {
      drop(pkt, DropReason::path_mtu_rate_limited, out);
    } else {
      to_slow_path(pkt, SlowReason::path_mtu, {}, out);
    }
    return;
  }
  if (!in.has_ports || (proto != kProtoTcp && proto != kProtoUdp && proto != kProtoSctp)) {
    kernel_or_drop(pkt, w.p, DropReason::icmp_error_no_flow, out);  // the node's own, perhaps
    return;
  }
  const FlowKey k = in.key.reversed();
  FlowEntry* e = flows_.find(k, flows_.hash(k), now_ms_);
  if (e == nullptr) {
    // Not here: with several workers, RSS spreads ICMP by its outer addresses alone. The worker
    // the NIC gives the connection's own frames (`k`, arriving where this error did) holds it.
    const uint16_t owner = steering_.worker_of(k, pkt.port);
    if (owner != config_.worker && !handed_off_) {
      ++counters_.handoffs_sent;
      out.handoff[out.n_handoff++] = {pkt, owner};
      return;
    }
    // The owner has lost it (expired, evicted). A DNAT or DSR connection's backend is Maglev's
    // choice over the tuple, which any worker can make (as a flow that lost its entry gets it);
    // full-NAT's source port was only in the entry.
    const FrontendHit fe = frontends_.find(k.dst, k.family, k.dport, k.proto);
    const ServiceState* s = fe.service;
    if (s == nullptr && dnat_frontend_of_reply(k) != nullptr) {  // a DNAT backend's side
      icmp_error_to_client_routed(pkt, w, k, out);
      return;
    }
    if (s == nullptr) {
      kernel_or_drop(pkt, w.p, DropReason::icmp_error_no_flow, out);  // the node's own, perhaps
      return;
    }
    if (s->spec().mode == ForwardMode::full_nat || s->spec().affinity.client_ip ||
        !s->has_backends()) {
      drop(pkt, DropReason::icmp_error_no_flow, out);
      return;
    }
    const Backend& b = s->backend(s->pick(hash_flow(k, kFlowHashSeed)));
    ForwardFlow f{};
    f.flags = flags_of(s->spec().mode);
    f.backend_addr = b.addr.bytes;
    f.backend_port = b.port;
    icmp_error_to_backend(pkt, w, s->frontend_id(fe.index), f, out);
    return;
  }
  if (e->value.fwd.flags & (kFlowAffinity | kFlowProxyRecord)) {
    drop(pkt, DropReason::icmp_error_no_flow, out);
    return;
  }
  if (e->value.fwd.flags & kFlowReply) {
    icmp_error_to_client(pkt, w, e->value.reply, std::nullopt, out);
  } else {
    icmp_error_to_backend(pkt, w, e->key.tag, e->value.fwd, out);
  }
}

// About a forwarded packet of a DNAT connection without a reply entry (one entry, or its reply
// entry lost): the quote's destination, the backend, names the frontend, as for the
// connection's replies (stateless_reply()), and the error is routed to the client. `k`: the
// quote reversed, the reply's key.
void Forwarder::icmp_error_to_client_routed(Packet& pkt, const Work& w, const FlowKey& k,
                                            BurstOut& out) noexcept {
  const uint16_t id = *dnat_frontend_of_reply(k);
  const ClientRoute to_client = route_to_client(id, k);
  if (to_client.drop != DropReason::none) {
    drop(pkt, to_client.drop, out);
    return;
  }
  ReplyFlow r{};
  r.flags = uint8_t(kFlowReply | flags_of(ForwardMode::dnat));
  r.frontend = id;
  icmp_error_to_client(pkt, w, r, to_client.hop, out);
}

// To the backend, quoting the reply as the backend sent it (full-NAT: to Magline's address and
// source port; DNAT: to the client) and, in full-NAT, from Magline's address. Direct-return
// backends hold the VIP themselves: the error goes as it is (IPIP, GUE: encapsulated).
void Forwarder::icmp_error_to_backend(Packet& pkt, const Work& w, uint16_t frontend_id,
                                      const ForwardFlow& f, BurstOut& out) noexcept {
  const ServiceState* s = by_id_[frontend_id].service;
  const int idx = s != nullptr ? s->find_backend(f.backend_addr, f.backend_port) : -1;
  if (idx < 0) {
    drop(pkt, DropReason::icmp_error_no_flow, out);
    return;
  }
  const std::optional<NextHop>& hop = s->next_hop(size_t(idx));
  if (!hop) {
    drop(pkt, DropReason::backend_unreachable, out);
    return;
  }
  const ForwardMode mode = mode_of(f.flags);
  if (encapsulates(mode)) {
    // Through the connection's tunnel, with its entropy (forward()'s flow hash).
    const uint32_t bits = entropy(flows_.hash(w.p.inner.key.reversed()));
    if (encapsulate_for(pkt, w.p, s->backend(size_t(idx)).addr, *hop, mode, bits, out) !=
        Encapsulated::send) {
      return;
    }
  } else if (mode != ForwardMode::dsr_l2) {
    const Family family = w.p.key.family;
    FlowKey quote = w.p.inner.key;  // the reply as the client saw it: frontend -> client
    quote.src = f.backend_addr;
    quote.sport = f.backend_port;
    IpAddr outer_src = w.p.key.src_addr();
    if (mode == ForwardMode::full_nat) {
      const IfAddr* snat = snat_.address(hop->port, family, f.snat_addr);
      if (snat == nullptr) {
        drop(pkt, DropReason::no_snat_address, out);
        return;
      }
      quote.dst = snat->addr.bytes;
      quote.dport = f.snat_port;
      outer_src = snat->addr;
    }
    const IpAddr backend{f.backend_addr, family};
    if (const DropReason r = rewrite_icmp_error({pkt.data, pkt.len}, w.p, outer_src, backend, quote);
        r != DropReason::none) {
      drop(pkt, r, out);
      return;
    }
  }
  ++counters_.icmp_errors;
  send_to(pkt, *hop, out);
}

// To the client, from the frontend's address, quoting the packet as the client sent it (to the
// frontend), back the way the connection came, or by `route` when given (a DNAT connection
// without a reply entry).
void Forwarder::icmp_error_to_client(Packet& pkt, const Work& w, const ReplyFlow& r,
                                     const std::optional<NextHop>& route,
                                     BurstOut& out) noexcept {
  if (!route && r.last_hop == LastHops::kNone) {
    drop(pkt, DropReason::last_hop_table_full, out);
    return;
  }
  const FrontendRef& fe = registry_.at(r.frontend);
  const Family family = w.p.key.family;
  FlowKey quote = w.p.inner.key;  // a forwarded packet: (Magline or client) -> backend
  if (mode_of(r.flags) == ForwardMode::full_nat) {
    quote.src = r.client_addr;
    quote.sport = r.client_port;
  }
  quote.dst = fe.addr.bytes;
  quote.dport = fe.port;
  const IpAddr client{quote.src, family};
  if (const DropReason d = rewrite_icmp_error({pkt.data, pkt.len}, w.p, fe.addr, client, quote);
      d != DropReason::none) {
    drop(pkt, d, out);
    return;
  }
  ++counters_.icmp_errors;
  if (route) {
    send_to(pkt, *route, out);
    return;
  }
  const Neighbor& hop = last_hops_.at(r.last_hop);
  transmit(pkt, hop.port, hop.mac, out);
}

}  // namespace magline::dp
