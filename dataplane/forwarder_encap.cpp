// Encapsulation for IPIP and GUE services: the forwarder's side of encap.hpp (the path MTU,
// the outer source, the ICMP error a packet too big gets).
#include <algorithm>

#include "dataplane/encap.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/reject.hpp"

namespace magline::dp {

// Wraps a frame for `backend` in IPIP or GUE (encap.hpp), within the path MTU: the node's
// encapsulation MTU, else the egress port's, or the backend's learned from a router's ICMP
// error when that is smaller. Returns `send` when the frame is ready to go to `hop`; `split`
// when it was too big, IPv4 without DF, and went encapsulated to the slow path to be split
// (`encapsulation.fragment`); `done` when it was dealt with otherwise: too big (answered with
// an ICMP error), or no outer source address.
Forwarder::Encapsulated Forwarder::encapsulate_for(Packet& pkt, const Parsed& p,
                                                   const IpAddr& backend, const NextHop& hop,
                                                   ForwardMode mode, uint32_t flow_bits,
                                                   BurstOut& out) noexcept {
  const EncapSettings& es = node_.encap;
  const uint16_t overhead = encap_overhead(mode, backend.family);
  uint16_t mtu = node_.encap_mtu(hop.port);
  if (path_mtus_.size() != 0) {
    if (const uint16_t* learned = path_mtus_.find(backend)) mtu = std::min(mtu, *learned);
  }
  bool split = false;
  if (uint32_t(p.l3_end - p.l3_off) + overhead > mtu) {
    if (p.l3 != L3::ipv4 || (pkt.data[p.l3_off + 6] & 0x40) || !es.fragment) {
      too_big(pkt, p, uint16_t(mtu - overhead), out);
      return Encapsulated::done;
    }
    // IPv4 without DF: encapsulated as it is, and split by the slow path, within its share.
    if (!slow_share(split_window_, split_left_, kSplitPerWindow)) {
      drop(pkt, DropReason::encap_fragment_limited, out);
      return Encapsulated::done;
    }
    split = true;
  }
  EncapHeader h;
  h.mode = mode;
  h.dst = backend;
  h.gue_port = es.gue_port;
  h.entropy = flow_bits;
  const std::optional<IpPrefix>& sources = es.sources(backend.family);
  if (sources) {
    h.src = encap_source(*sources, flow_bits);
  } else if (const std::optional<IpAddr>& a =
                 encap_sources_[hop.port][backend.family == Family::v6]) {
    h.src = *a;
  } else {
    drop(pkt, DropReason::no_encap_source, out);
    return Encapsulated::done;
  }
  if (const DropReason r = encapsulate(pkt, p, h); r != DropReason::none) {
    drop(pkt, r, out);
    return Encapsulated::done;
  }
  if (split) {
    to_slow_path(pkt, SlowReason::split, hop, out);
    return Encapsulated::split;
  }
  return Encapsulated::send;
}

// Tells the client its packet is too big for the path (`mtu`: what fits before encapsulation):
// ICMP "fragmentation needed" (RFC 1191) or ICMPv6 "packet too big" (RFC 8201), from the address
// it was sent to, back the way it came. An IPv4 packet without DF that may not be split
// (`encapsulation.fragment` off) is dropped: its sender asked for no ICMP.
void Forwarder::too_big(Packet& pkt, const Parsed& p, uint16_t mtu, BurstOut& out) noexcept {
  const bool v4 = p.l3 == L3::ipv4;
  if (v4 && !(pkt.data[p.l3_off + 6] & 0x40)) {
    drop(pkt, DropReason::encap_too_big, out);
    return;
  }
  const DropReason r = v4 ? make_icmp_error(pkt, p, kIcmpUnreachable, kIcmpFragNeeded, mtu)
                          : make_icmp_error(pkt, p, kIcmpv6PacketTooBig, 0, mtu);
  if (r != DropReason::none) {
    drop(pkt, r, out);
    return;
  }
  ++counters_.too_big;
  out.tx[out.n_tx++] = pkt;  // the Ethernet addresses swapped; same port
}

}  // namespace magline::dp
