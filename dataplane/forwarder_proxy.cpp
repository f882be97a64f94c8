// Full-NAT's SYN proxy in the forwarder: when a frontend's SYNs are answered with cookies, the
// connections returned cookies open, and their segments both ways. The segments themselves are
// syn_proxy.hpp's.
//
// Engagement (`syn_proxy: auto`): per frontend and worker, the SYNs of a second less the
// handshakes completed in it (a flood's SYNs complete none). When a second ends above the
// threshold, SYNs are answered with cookies through the next one, and for as long as each
// second ends above it (cookie SYN-ACKs count as SYNs, returned cookies as completions). A
// burst of genuine clients connecting at once completes its handshakes within the second and
// engages nothing.
#include <algorithm>

#include "dataplane/bytes.hpp"
#include "dataplane/forwarder_work.hpp"
#include "dataplane/syn_proxy.hpp"

namespace magline::dp {

namespace {

constexpr uint32_t kEngagedBit = 0x80000000u;

}  // namespace

bool Forwarder::syn_proxy_engaged(const ServiceState& s, uint32_t slot,
                                  uint64_t now_ms) noexcept {
  if (s.spec().syn_proxy == SynProxy::on) return true;
  LimitRow& row = traffic_.limit(slot);
  const uint32_t second = uint32_t(now_ms / 1000) & ~kEngagedBit;
  const int32_t threshold = int32_t(std::min<uint32_t>(config_.syn_proxy_threshold, INT32_MAX));
  if ((row.second & ~kEngagedBit) != second) {
    const bool last = (row.second & ~kEngagedBit) + 1 == second && row.half_open > threshold;
    row.second = second | (last ? kEngagedBit : 0);
    row.half_open = 0;
  }
  return row.second & kEngagedBit;
}

// Whether the SYN proxy will answer this frame for no connection (a bare SYN to a full-NAT TCP
// frontend whose proxy is engaged): the burst then prepares no entries for it.
bool Forwarder::syn_proxy_answers(Work& w, uint64_t now_ms) noexcept {
  const ServiceState& s = *w.fe.service;
  return s.spec().mode == ForwardMode::full_nat && w.p.key.proto == kProtoTcp && w.p.has_l4 &&
         bare_syn(w.p) && s.spec().syn_proxy != SynProxy::off &&
         syn_proxy_engaged(s, w.fe.slot, now_ms);
}

// Whether a client's ACK to a half-open entry that is not proxied returns a SYN cookie: its
// SYN opened the entry before the proxy engaged, and its SYN again, lost or unanswered, got a
// cookie (a bare SYN to an engaged proxy is answered whatever the table holds). The ACK then
// opens a proxied connection in place of the entry. Checked only while engaged.
bool Forwarder::returns_cookie(const Packet& pkt, const Work& w,
                               const ForwardFlow& f) noexcept {
  const ServiceState& s = *w.fe.service;
  if ((f.flags & kFlowSynProxy) || s.spec().mode != ForwardMode::full_nat ||
      s.spec().syn_proxy == SynProxy::off || w.p.key.proto != kProtoTcp || !w.p.has_l4 ||
      !ack_only(w.p) || !syn_proxy_engaged(s, w.fe.slot, now_ms_)) {
    return false;
  }
  const uint8_t* tcp = pkt.data + w.p.l4_off;
  return cookies_.check(w.p.key, load_be32(tcp + 4) - 1, load_be32(tcp + 8) - 1, now_ms_) >= 0;
}

void Forwarder::syn_guard_count(const ServiceState& s, uint32_t slot, int32_t delta) noexcept {
  if (s.spec().syn_proxy != SynProxy::automatic ||
      (s.spec().mode != ForwardMode::full_nat && s.spec().mode != ForwardMode::dnat)) {
    return;
  }
  int32_t& n = traffic_.limit(slot).half_open;
  n = std::clamp<int64_t>(int64_t(n) + delta, INT32_MIN / 2, INT32_MAX / 2);
}

// A full-NAT TCP frame with no connection: a SYN answered with a cookie when the proxy is
// engaged, an ACK returning a valid cookie opens a proxied connection (`mss_index` set), an
// ACK without one is dropped while engaged. Anything else opens as usual.
Forwarder::Gate Forwarder::syn_proxy_gate(Packet& pkt, Work& w, int& mss_index, uint64_t now_ms,
                                          BurstOut& out) noexcept {
  const ServiceState& s = *w.fe.service;
  const Parsed& p = w.p;
  if (!p.has_l4) return Gate::open;
  const uint8_t* tcp = pkt.data + p.l4_off;
  if (bare_syn(p)) {
    const bool engaged = w.cookie || syn_proxy_engaged(s, w.fe.slot, now_ms);
    syn_guard_count(s, w.fe.slot, 1);
    if (!engaged) return Gate::open;
    const TcpOptions o = read_tcp_options(tcp, tcp_header_len(tcp));
    const uint8_t mi = cookie_mss_index(o.mss, p.key.family);
    const uint32_t cookie = cookies_.make(p.key, load_be32(tcp + 4), mi, now_ms);
    const size_t headers = p.key.family == Family::v4 ? 40 : 60;
    const uint16_t mss = uint16_t(node_.ports[pkt.port].mtu - headers);
    const DropReason r = make_cookie_syn_ack(pkt, p, o, cookie, mss,
                                             cookie_tsval(now_ms, o.wscale, o.sack_permitted));
    if (r != DropReason::none) {
      drop(pkt, r, out);
    } else {
      ++counters_.syn_cookies_sent;
      transmit(pkt, pkt.port, MacAddr::from(pkt.data), out);  // to the client's MAC
    }
    return Gate::done;
  }
  if (!ack_only(p)) return Gate::open;
  const int mi = cookies_.check(p.key, load_be32(tcp + 4) - 1, load_be32(tcp + 8) - 1, now_ms);
  if (mi >= 0) {
    mss_index = mi;
    return Gate::proxy_open;
  }
  if (syn_proxy_engaged(s, w.fe.slot, now_ms)) {
    drop(pkt, DropReason::syn_cookie_invalid, out);
    return Gate::done;
  }
  return Gate::open;
}

// DNAT's guard against a SYN flood (engaged as the SYN proxy is, by `syn_proxy`): a bare SYN
// writes no entry while engaged, and the handshake's ACK opens the connection with the same
// backend (Maglev); the backend's SYN-ACK, which finds no entry, is translated from the
// backend alone (stateless_reply()). For a bare SYN to a DNAT frontend: counts the handshake
// begun; returns whether the SYN goes without state, its backend chosen (w.pick).
bool Forwarder::dnat_syn_without_state(Work& w, uint64_t now_ms) noexcept {
  const ServiceState& s = *w.fe.service;
  if (s.spec().mode != ForwardMode::dnat || s.spec().syn_proxy == SynProxy::off ||
      s.spec().affinity.client_ip) {
    return false;
  }
  const bool engaged = syn_proxy_engaged(s, w.fe.slot, now_ms);
  syn_guard_count(s, w.fe.slot, 1);
  if (!engaged || !s.has_backends()) return false;
  w.pick = s.pick(hash_flow(w.p.key, kFlowHashSeed));
  return returns_without_state(w, uint16_t(w.pick));
}

// An ACK opening a DNAT connection while the guard is engaged: its SYN most likely wrote
// nothing, so its handshake completes here.
void Forwarder::dnat_handshake_completed(const Work& w, uint64_t now_ms) noexcept {
  const ServiceState& s = *w.fe.service;
  if (s.spec().syn_proxy != SynProxy::off && syn_proxy_engaged(s, w.fe.slot, now_ms)) {
    syn_guard_count(s, w.fe.slot, -1);
  }
}

// The full-NAT tuple of Magline's SYN to the backend.
bool Forwarder::backend_syn_to(const Work& w, const ForwardFlow& f, uint16_t idx,
                               FlowKey& to) const noexcept {
  const std::optional<NextHop>& hop = w.fe.service->next_hop(idx);
  if (!hop) return false;
  const IfAddr* a = snat_.address(hop->port, w.p.key.family, f.snat_addr);
  if (a == nullptr) return false;
  to = FlowKey{};
  to.family = w.p.key.family;
  to.proto = kProtoTcp;
  to.src = a->addr.bytes;
  to.sport = f.snat_port;
  to.dst = f.backend_addr;
  to.dport = f.backend_port;
  return true;
}

// The connection's entries are in place (open()): records how to translate it, and turns the
// client's ACK into Magline's SYN to the backend.
bool Forwarder::proxy_begin(Packet& pkt, Work& w, FlowEntry* e, const FlowKey& reply_key,
                            uint64_t reply_hash, uint8_t mss_index, uint16_t idx,
                            uint64_t now_ms, BurstOut& out) noexcept {
  const Parsed& p = w.p;
  const uint8_t* tcp = pkt.data + p.l4_off;
  const TcpOptions o = read_tcp_options(tcp, tcp_header_len(tcp));
  ClientOptions c;
  c.mss_index = mss_index;
  c.timestamps = o.timestamps;
  if (o.timestamps) {
    const EchoedOptions echoed = cookie_options(o.tsecr);
    c.wscale = echoed.wscale;
    c.sack_permitted = echoed.sack_permitted;
  }
  FlowValue v{};
  ProxyFlow& f = v.proxy;
  f.flags = kFlowProxyRecord;
  f.client_options = pack(c);
  f.backend_wscale = kNoWscale;
  f.cookie = load_be32(tcp + 8) - 1;
  f.client_isn = load_be32(tcp + 4) - 1;
  f.seq_delta = o.tsval;  // until established: the client's latest TSval
  f.ts_delta = o.tsecr;   // ...and Magline's, which it echoes
  f.client_window = load_be16(tcp + 14);
  const ForwardFlow fwd = e->value.fwd;
  const FlowKey k = record_key(p.key);
  FlowEntry* rec = flows_.insert(k, flows_.hash(k), FlowState::tcp_syn, now_ms);
  if (rec == nullptr) {
    if (FlowEntry* r = flows_.find(reply_key, reply_hash, now_ms)) flows_.erase(r);
    if (FlowEntry* again = flows_.find(p.key, w.hash, now_ms)) flows_.erase(again);
    drop(pkt, DropReason::flow_table_full, out);
    return false;
  }
  rec->value = v;
  ++counters_.syn_cookies_valid;
  syn_guard_count(*w.fe.service, w.fe.slot, -1);
  FlowKey to;
  if (!backend_syn_to(w, fwd, idx, to)) {
    drop(pkt, DropReason::no_snat_address, out);
    return false;
  }
  if (const DropReason r = make_backend_syn(pkt, p, to, f, o.tsval); r != DropReason::none) {
    drop(pkt, r, out);
    return false;
  }
  deliver(pkt, w, idx, *w.fe.service->next_hop(idx), pkt.len, out);  // backend_syn_to() had it
  return true;
}

// A client frame of a proxied connection.
void Forwarder::proxy_forward(Packet& pkt, Work& w, FlowEntry* e, FlowState state,
                              FlowState next, uint16_t idx, uint64_t now_ms,
                              BurstOut& out) noexcept {
  const FlowKey k = record_key(w.p.key);
  FlowEntry* rec = flows_.find(k, flows_.hash(k), now_ms);
  if (rec == nullptr) {
    drop(pkt, DropReason::syn_proxy_record_lost, out);
    return;
  }
  if (!rec->value.proxy.established) {
    proxy_pending(pkt, w, e->value.fwd, rec, idx, out);
    return;
  }
  ForwardFlow& f = e->value.fwd;
  flows_.refresh(e, next, now_ms);
  flows_.refresh(rec, next, now_ms);
  if (next != state && tcp_closing_state(next)) {
    sync_.forward_seen(w.p.key, f, w.fe.service->next_hop(idx), next, now_ms);
  }
  proxy_to_backend({pkt.data, pkt.len}, w.p, rec->value.proxy);
  emit_forward(pkt, w, f, idx, out);
}

// A client frame before the backend has answered: its first data segment is held for the
// backend, anything else becomes Magline's SYN again (the first may have been lost).
void Forwarder::proxy_pending(Packet& pkt, Work& w, const ForwardFlow& fwd, FlowEntry* rec,
                              uint16_t idx, BurstOut& out) noexcept {
  const Parsed& p = w.p;
  ProxyFlow& f = rec->value.proxy;
  if (!p.has_l4 || (p.tcp_flags & (kTcpRst | kTcpSyn))) {
    drop(pkt, DropReason::syn_proxy_pending, out);
    return;
  }
  const uint8_t* tcp = pkt.data + p.l4_off;
  f.client_window = load_be16(tcp + 14);
  if (const TimestampAt t = find_timestamps(tcp, tcp_header_len(tcp)); t.tsval != 0) {
    f.seq_delta = load_be32(tcp + t.tsval);
  }
  if (p.l3_end > p.payload_off && !p.is_fragment && f.held == 0) {
    const uint16_t slot = held_next_;
    held_next_ = uint16_t((held_next_ + 1) % kHeldSlots);
    if (held_[slot].data != nullptr) drop(held_[slot], DropReason::syn_proxy_hold_lost, out);
    held_[slot] = pkt;
    held_owner_[slot] = flows_.hash(rec->key);
    f.held = uint16_t(slot + 1);
    ++counters_.syn_proxy_held;
    return;
  }
  FlowKey to;
  if (!backend_syn_to(w, fwd, idx, to)) {
    drop(pkt, DropReason::no_snat_address, out);
    return;
  }
  if (const DropReason r = make_backend_syn(pkt, p, to, f, f.seq_delta); r != DropReason::none) {
    drop(pkt, r, out);
    return;
  }
  deliver(pkt, w, idx, *w.fe.service->next_hop(idx), pkt.len, out);  // backend_syn_to() had it
}

size_t Forwarder::take_held(Packet* out, size_t max) noexcept {
  size_t n = 0;
  for (Packet& p : held_) {
    if (n == max) return n;
    if (p.data == nullptr) continue;
    out[n++] = p;
    p = Packet{};
  }
  while (n_retry_ > 0 && n < max) out[n++] = retry_[--n_retry_];
  return n + held_fragments_.take_all(out + n, max - n);
}

// A backend frame of a proxied connection. Its SYN-ACK completes the handshake: answered with
// the ACK (and the held segment); the rest is translated for the client. Returns true when the
// frame goes on to the client.
bool Forwarder::proxy_reply(Packet& pkt, Work& w, FlowEntry* e, FlowState next,
                            uint64_t now_ms, BurstOut& out) noexcept {
  const Parsed& p = w.p;
  const ReplyFlow& r = e->value.reply;
  const FrontendRef& fr = registry_.at(r.frontend);
  FlowKey fk;
  fk.family = p.key.family;
  fk.proto = kProtoTcp;
  fk.src = r.client_addr;
  fk.sport = r.client_port;
  fk.dst = fr.addr.bytes;
  fk.dport = fr.port;
  const FlowKey k = record_key(fk);
  const uint64_t h = flows_.hash(k);
  FlowEntry* rec = flows_.find(k, h, now_ms);
  if (rec == nullptr || !p.has_l4) {
    drop(pkt, DropReason::syn_proxy_record_lost, out);
    return false;
  }
  ProxyFlow& f = rec->value.proxy;
  const uint8_t* tcp = pkt.data + p.l4_off;
  if ((p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == (kTcpSyn | kTcpAck)) {
    if (load_be32(tcp + 8) != f.client_isn + 1) {
      drop(pkt, DropReason::syn_proxy_unexpected, out);
      return false;
    }
    const TcpOptions o = read_tcp_options(tcp, tcp_header_len(tcp));
    uint32_t client_tsval = o.tsecr;  // a repeated SYN-ACK (our ACK was lost): what it echoes
    uint16_t held = 0;
    if (!f.established) {
      held = f.held;
      client_tsval = complete_proxy_flow(f, {pkt.data, pkt.len}, p);
      ++counters_.syn_proxy_completed;
      // Established both ways now: the three entries leave the half-open rank.
      flows_.refresh(rec, FlowState::tcp_established, now_ms);
      flows_.refresh(e, FlowState::tcp_established, now_ms);
      if (FlowEntry* fwd = flows_.find(fk, flows_.hash(fk), now_ms)) {
        flows_.refresh(fwd, FlowState::tcp_established, now_ms);
      }
    }
    if (const DropReason d = make_backend_ack(pkt, p, f, client_tsval, o.tsval);
        d != DropReason::none) {
      drop(pkt, d, out);
    } else {
      transmit(pkt, pkt.port, MacAddr::from(pkt.data), out);  // back to where it came from
    }
    if (held != 0) release_held(f, uint16_t(held - 1), h, fk, r.frontend, now_ms, out);
    return false;
  }
  if (!f.established) {
    if (!(p.tcp_flags & kTcpRst)) {
      drop(pkt, DropReason::syn_proxy_pending, out);
      return false;
    }
    proxy_reset_to_client({pkt.data, pkt.len}, p, f);  // the backend refused
    flows_.refresh(rec, FlowState::tcp_closed, now_ms);
    return true;
  }
  flows_.refresh(rec, next, now_ms);
  proxy_to_client({pkt.data, pkt.len}, p, f);
  return true;
}

// The client segment held in `slot` for the connection whose ProxyFlow `f` (key hash
// `record_hash`) has just completed, on to the backend; unless a newer one has displaced it.
void Forwarder::release_held(const ProxyFlow& f, uint16_t slot, uint64_t record_hash,
                             const FlowKey& fk, uint16_t frontend, uint64_t now_ms,
                             BurstOut& out) noexcept {
  if (held_[slot].data == nullptr || held_owner_[slot] != record_hash) return;
  Packet pkt = held_[slot];
  held_[slot] = Packet{};
  Work hw;
  hw.fe = by_id_[frontend];
  if (const DropReason r = parse({pkt.data, pkt.len}, hw.p); r != DropReason::none) {
    drop(pkt, r, out);
    return;
  }
  FlowEntry* e = flows_.find(fk, flows_.hash(fk), now_ms);
  const int idx = e != nullptr && hw.fe.service != nullptr
                      ? hw.fe.service->find_backend(e->value.fwd.backend_addr,
                                                    e->value.fwd.backend_port)
                      : -1;
  if (idx < 0) {
    drop(pkt, DropReason::syn_proxy_record_lost, out);
    return;
  }
  proxy_to_backend({pkt.data, pkt.len}, hw.p, f);
  emit_forward(pkt, hw, e->value.fwd, uint16_t(idx), out);
}

}  // namespace magline::dp
