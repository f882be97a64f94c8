#include "perf/bench/generator.hpp"

#include <algorithm>
#include <cmath>

#include "dataplane/arp_nd.hpp"
#include "dataplane/parse.hpp"

namespace magline::bench {

Generator::Generator(const TrafficSpec& t, const Layout& l, const dp::MacAddr& lb,
                     const Link& link, rte_mempool* pool, uint64_t seed)
    : t_(t),
      l_(l),
      lb_(lb),
      link_(link),
      pool_(pool),
      tmpl_(build_template(t, l, lb)),
      chooser_(t, seed),
      new_threshold_(uint64_t(std::clamp(t.new_share, 0.0, 1.0) * 4294967296.0)),
      per_backend_(t.backends, 0),
      track_flows_(t.churn) {
  if (track_flows_) {
    first_backend_.assign(t.flows, kNone);
    moved_.assign(t.flows, 0);
  }
}

Generator::~Generator() {
  finish();
}

void Generator::finish() noexcept {
  if (n_held_) rte_pktmbuf_free_bulk(held_, n_held_);
  n_held_ = 0;
  if (n_spare_) rte_pktmbuf_free_bulk(spare_, n_spare_);
  n_spare_ = 0;
}

// A frame the sink is done with becomes one of the next generated frames if it is as the
// pool gave it (one segment, one reference, direct, this pool's): the newest on top, its lines
// still in this core's cache, with no trip through the mempool's cache and no write to the
// mbuf's second line (rte_pktmbuf_reset's `next` and `tx_offload`; one segment means `next` is
// NULL, and TX offloads are off while `ol_flags` is 0). Anything else, or what does not fit,
// goes back to the pool.
void Generator::done(rte_mbuf* m) noexcept {
  if (n_spare_ < kSpare && m->pool == pool_ && m->nb_segs == 1 && RTE_MBUF_DIRECT(m) &&
      rte_mbuf_refcnt_read(m) == 1) {
    spare_[n_spare_++] = m;
  } else {
    to_free_[n_free_++] = m;
  }
}

void Generator::start_measurement(uint64_t now) noexcept {
  measuring_ = true;
  rate_start_ = now;
  rate_sent_ = 0;
  frames_per_cycle_ = t_.rate_pps / double(rte_get_tsc_hz());
}

void Generator::clear_latency() noexcept {
  oneway_.clear();
  handshake_.clear();
}

void Generator::churn(uint32_t removed) noexcept {
  churned_ = true;
  removed_ = removed;
}

// ---------------------------------------------------------------------------------------------
// Receiving

// Up to four bursts per pass while full ones come: the sink must never be what fills Magline's
// TX ring (the worker would count those frames as tx_full).
void Generator::receive(uint64_t now) noexcept {
  rte_mbuf* m[kBurst];
  const uint32_t now32 = uint32_t(now);
  for (int round = 0; round < 4; ++round) {
    // Leave room for the answers this burst may produce.
    const unsigned want = std::min<unsigned>(kBurst, kHeld - n_held_);
    const unsigned n = link_.receive(m, want);
    // The frames were written on the forwarder's core: ask for all of their lines at once.
    for (unsigned i = 0; i < n; ++i)
      rte_prefetch0(rte_pktmbuf_mtod(m[i], void*));
    for (unsigned i = 0; i < n; ++i) {
      uint8_t* d = rte_pktmbuf_mtod(m[i], uint8_t*);
      // Neighbour discovery (Magline's own requests and announcements, across processes):
      // not IP, or ICMPv6. Everything else is the traffic's TCP or UDP.
      const uint16_t type = dp::load_be16(d + 12);
      if ((type != 0x0800 && type != 0x86dd) || (type == 0x86dd && d[14 + 6] == 58)) {
        on_neighbour(m[i], d);
      } else if (dp::MacAddr::from(d) == kBackendMac) {
        on_backend(m[i], d, now32);
      } else {
        on_client(m[i], d, now32);
      }
    }
    if (n_free_) {
      rte_pktmbuf_free_bulk(to_free_, n_free_);
      n_free_ = 0;
    }
    if (n < kBurst) break;
  }
}

void Generator::on_backend(rte_mbuf* m, uint8_t* d, uint32_t now32) noexcept {
  ++c_.backend_rx;
  const uint32_t id = stamp_id(d, l_);
  const uint32_t b = backend_index(dp::load_be32(d + l_.dst_low));
  if (b >= t_.backends || dp::load_be16(d + l_.l4 + 2) != kBackendPort || m->data_len != l_.len) {
    ++c_.malformed;
    done(m);
    return;
  }
  ++per_backend_[b];
  oneway_.add(uint32_t(now32 - stamp_tsc(d, l_)));
  if (!l_.udp) {
    const uint8_t flags = d[l_.l4 + 13];
    if (flags == dp::kTcpSyn) {
      // The backend accepts: SYN-ACK back through Magline, the stamp kept (handshake time).
      turn_around(d, l_, lb_, kBackendMac, dp::kTcpSyn | dp::kTcpAck);
      held_[n_held_++] = m;
      ++c_.synack_sent;
      return;
    }
    if (flags & dp::kTcpFin) {
      ++c_.fin_rx;
      if (id & kIdNew) {
        // The backend closes its side too (FIN+ACK back through the reply path), so that
        // both of Magline's entries end closing, as in a whole TCP close.
        turn_around(d, l_, lb_, kBackendMac, dp::kTcpFin | dp::kTcpAck);
        restamp(d, l_, now32);
        held_[n_held_++] = m;
        ++c_.fin_back_sent;
        return;
      }
    }
  }
  if ((id & kIdNew) == 0) {
    const uint32_t k = id & kIdMask;
    if (!measuring_) ++c_.warmup_received;
    if (track_flows_ && k < t_.flows) {
      const uint16_t first = first_backend_[k];
      if (first == kNone) {
        first_backend_[k] = uint16_t(b);
      } else if (first != b && !moved_[k]) {
        moved_[k] = 1;
        ++churn_.flows_moved;
        if (first != removed_) ++churn_.flows_moved_kept;
      }
      if (id & kIdAfterChurn) {
        if (first == removed_) {
          ++churn_.received_removed;
        } else {
          ++churn_.received_kept;
        }
      }
    }
    if (l_.udp && !measuring_) {
      // An established UDP flow's first datagrams (warm-up) are answered, back through
      // Magline's reply path, so that its entries are confirmed as a real flow's would be
      // (`udp`, evicted after every flow nobody answered).
      turn_around(d, l_, lb_, kBackendMac, 0);
      held_[n_held_++] = m;
      ++c_.udp_answer_sent;
      return;
    }
  }
  done(m);
}

void Generator::on_client(rte_mbuf* m, uint8_t* d, uint32_t now32) noexcept {
  ++c_.client_rx;
  if (!l_.udp) {
    const uint8_t flags = d[l_.l4 + 13];
    if (flags == (dp::kTcpSyn | dp::kTcpAck)) {
      ++c_.synack_rx;
      if (dp::load_be16(d + l_.l4) != kVipPort) ++c_.malformed;
      handshake_.add(uint32_t(now32 - stamp_tsc(d, l_)));
      if (stamp_id(d, l_) & kIdNew) {
        // The client completes the handshake and closes at once: FIN+ACK, stamped afresh.
        turn_around(d, l_, lb_, kClientMac, dp::kTcpFin | dp::kTcpAck);
        ++c_.finack_sent;
      } else {
        // An established flow (warm-up): the handshake's ACK, which makes Magline's entries
        // established both ways; the sink counts it as the flow's first frame.
        turn_around(d, l_, lb_, kClientMac, dp::kTcpAck);
        ++c_.ack_sent;
      }
      restamp(d, l_, now32);
      held_[n_held_++] = m;
      return;
    }
    if (flags == (dp::kTcpFin | dp::kTcpAck)) {
      ++c_.fin_back_rx;
      done(m);
      return;
    }
    if (flags & dp::kTcpRst) {
      ++c_.rst_rx;
      if (churned_) ++churn_.resets;
      done(m);
      return;
    }
  }
  if (l_.udp && dp::load_be16(d + l_.l4) == kVipPort) {  // a backend's answer (warm-up)
    ++c_.udp_answer_rx;
    done(m);
    return;
  }
  // The baseline's MAC swap sends the clients' frames straight back.
  ++c_.echo_rx;
  oneway_.add(uint32_t(now32 - stamp_tsc(d, l_)));
  done(m);
}

// Answers Magline's ARP requests and neighbour solicitations for a backend's address with the
// sink's MAC; counts everything else (its answers to the backends, its announcements).
void Generator::on_neighbour(rte_mbuf* m, uint8_t* d) noexcept {
  ++c_.neighbour_rx;
  const std::span<const uint8_t> frame(d, m->data_len);
  dp::Parsed p;
  uint8_t out[dp::kMaxArpNdFrameLen];
  size_t len = 0;
  if (dp::parse(frame, p) == dp::DropReason::none) {
    auto is_backend = [&](const dp::IpAddr& a) {
      const uint32_t low = dp::load_be32(a.data() + (a.family == dp::Family::v4 ? 0 : 12));
      return backend_index(low) < t_.backends && a == backend_address(!(a.family == dp::Family::v4),
                                                                     backend_index(low));
    };
    if (p.l3 == dp::L3::arp) {
      const dp::ArpInfo& a = p.arp;
      if (a.op == dp::kArpRequest && is_backend(a.target_ip) && a.sender_ip != a.target_ip) {
        const dp::EthHeader eth{dp::MacAddr::from(a.sender_mac), kBackendMac};
        len = dp::build_arp_reply(out, eth, a.target_ip, dp::MacAddr::from(a.sender_mac),
                                  a.sender_ip);
      } else if (a.op == dp::kArpReply && dp::MacAddr::from(d) == kBackendMac) {
        ++c_.neighbour_answers_rx;
      }
    } else if (p.l3 == dp::L3::ipv6) {
      dp::NdMessage nd;
      if (dp::parse_nd(frame, p, nd) == dp::NdError::none) {
        if (nd.type == dp::kNdNeighborSolicit && is_backend(nd.target)) {
          const dp::EthHeader eth{dp::MacAddr::from(d + 6), kBackendMac};
          len = dp::build_na(out, eth, nd.target, nd.src, nd.target,
                             dp::kNaSolicited | dp::kNaOverride);
        } else if (nd.type == dp::kNdNeighborAdvert && dp::MacAddr::from(d) == kBackendMac) {
          ++c_.neighbour_answers_rx;
        }
      }
    }
  }
  if (len == 0 || n_held_ >= kHeld) {
    done(m);
    return;
  }
  std::memcpy(d, out, len);
  m->data_len = uint16_t(len);
  m->pkt_len = uint32_t(len);
  held_[n_held_++] = m;
  ++c_.neighbour_answers_sent;
}

uint32_t Generator::send_neighbour_requests(uint32_t first) noexcept {
  uint32_t sent_total = 0;
  while (first < t_.backends) {
    rte_mbuf* m[kBurst];
    const uint32_t n = std::min<uint32_t>(kBurst, t_.backends - first);
    if (rte_pktmbuf_alloc_bulk(pool_, m, n) != 0) break;
    for (uint32_t i = 0; i < n; ++i) {
      uint8_t* d = rte_pktmbuf_mtod(m[i], uint8_t*);
      const dp::IpAddr b = backend_address(t_.ipv6, first + i);
      const dp::IpAddr lb = lb_address(t_.ipv6);
      size_t len;
      if (t_.ipv6) {
        const dp::IpAddr group = dp::solicited_node(lb);
        len = dp::build_ns({d, dp::kMaxArpNdFrameLen}, {dp::ipv6_multicast_mac(group), kBackendMac},
                           b, group, lb);
      } else {
        len = dp::build_arp_request({d, dp::kMaxArpNdFrameLen},
                                    {dp::MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, kBackendMac},
                                    b, lb);
      }
      m[i]->data_len = uint16_t(len);
      m[i]->pkt_len = uint32_t(len);
    }
    const uint32_t sent = link_.send(m, n);
    if (sent < n) rte_pktmbuf_free_bulk(m + sent, n - sent);
    c_.injected += sent;
    c_.neighbour_requests_sent += sent;
    sent_total += sent;
    first += sent;
    if (sent < n) break;
  }
  return sent_total;
}

// ---------------------------------------------------------------------------------------------
// Sending

void Generator::send_held() noexcept {
  if (n_held_ == 0) return;
  const unsigned sent = link_.send(held_, n_held_);
  c_.injected += sent;
  if (sent < n_held_) {
    std::memmove(held_, held_ + sent, (n_held_ - sent) * sizeof(held_[0]));
  }
  n_held_ -= sent;
}

uint32_t Generator::room() const noexcept {
  return link_.room();
}

void Generator::generate(uint32_t n, uint64_t now, bool warmup) noexcept {
  rte_mbuf* m[kBurst];
  // What each frame is, so that only the frames the link takes are counted: 0 established,
  // 1 a SYN, 2 established on a remaining backend after the churn, 3 on the removed one.
  uint8_t kind[kBurst];
  n = std::min<uint32_t>(n, kBurst);
  if (n == 0) return;
  // The sink's spare frames first, then the pool. A spare frame's header is reset as
  // rte_pktmbuf_reset() would, but for the second line (see done()). Every field is stored,
  // changed or not, as a NIC's receive path writes each descriptor's fields into its mbuf: the
  // forwarder under test then finds its frames' headers as it would behind a NIC (storing
  // only what differs made the ring's MAC swap 1.9x faster, and Magline 9% slower).
  const uint32_t reused = std::min(n, n_spare_);
  for (uint32_t i = 0; i < reused; ++i) {
    rte_mbuf* s = spare_[--n_spare_];
    s->data_off = uint16_t(std::min<uint32_t>(RTE_PKTMBUF_HEADROOM, s->buf_len));
    s->port = RTE_MBUF_PORT_INVALID;
    s->ol_flags = 0;
    s->packet_type = 0;
    s->vlan_tci = 0;
    s->vlan_tci_outer = 0;
    m[i] = s;
  }
  if (reused < n && rte_pktmbuf_alloc_bulk(pool_, m + reused, n - reused) != 0) {
    ++c_.alloc_failed;
    n = reused;
    if (n == 0) return;
  }
  const uint32_t now32 = uint32_t(now);
  const uint32_t after = churned_ ? kIdAfterChurn : 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t* d = rte_pktmbuf_mtod(m[i], uint8_t*);
    m[i]->data_len = l_.len;
    m[i]->pkt_len = l_.len;
    kind[i] = 0;
    if (warmup) {
      // TCP: the flow's SYN; the handshake completes through the sink (on_backend, on_client).
      // A later pass's SYN on an established connection is a retransmission to Magline: it
      // keeps the connection's entries and backend.
      const uint32_t k = warmup_next_++;
      fill_frame(d, tmpl_, l_, client_low(k), client_port(k), dp::kTcpSyn, k, now32);
      kind[i] = 1;
      continue;
    }
    const uint64_t r = chooser_.random();
    if ((r >> 32) < new_threshold_) {
      const uint64_t c = new_count_++;
      fill_frame(d, tmpl_, l_, new_client_low(c), client_port(c), dp::kTcpSyn,
                 kIdNew | uint32_t(c & kIdMask), now32);
      kind[i] = 1;
      continue;
    }
    const uint32_t k = chooser_.next(r);
    if (churned_ && track_flows_) kind[i] = first_backend_[k] == removed_ ? 3 : 2;
    fill_frame(d, tmpl_, l_, client_low(k), client_port(k), dp::kTcpAck, k | after, now32);
  }
  // A ring had room for all of them (checked; this lcore is its only producer); a port may
  // refuse some: they are freed, and a warm-up sends its flows again from the first refused.
  const uint32_t sent = link_.send(m, n);
  if (sent < n) {
    rte_pktmbuf_free_bulk(m + sent, n - sent);
    if (warmup) warmup_next_ -= n - sent;
    ++c_.backpressure;
  }
  for (uint32_t i = 0; i < sent; ++i) {
    c_.syn_sent += kind[i] == 1 && !l_.udp;
    churn_.sent_kept += kind[i] == 2;
    churn_.sent_removed += kind[i] == 3;
  }
  c_.generated += sent;
  c_.injected += sent;
}

void Generator::step_idle(uint64_t now) noexcept {
  receive(now);
  send_held();
}

void Generator::step_warmup(uint64_t now) noexcept {
  step_idle(now);
  const uint32_t left = t_.flows - warmup_next_;
  generate(std::min(left, room()), now, true);
}

void Generator::step(uint64_t now) noexcept {
  step_idle(now);
  uint32_t n = kBurst;
  if (t_.rate_pps > 0) {
    const uint64_t due = uint64_t(double(now - rate_start_) * frames_per_cycle_);
    if (due <= rate_sent_) return;
    n = uint32_t(std::min<uint64_t>(due - rate_sent_, kBurst));
  }
  const uint32_t free = room();
  if (free < n) {
    ++c_.backpressure;
    n = free;
  }
  const uint64_t before = c_.generated;
  generate(n, now, false);
  rate_sent_ += c_.generated - before;
}

ChurnResult Generator::churn_result() const {
  ChurnResult r = churn_;
  r.removed_backend = removed_;
  for (uint16_t b : first_backend_) {
    if (b == kNone) continue;
    ++r.flows_observed;
    if (b == removed_) ++r.flows_on_removed;
  }
  return r;
}

}  // namespace magline::bench
