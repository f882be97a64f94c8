#include "dataplane/slow_path.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "dataplane/arp_nd.hpp"
#include "dataplane/encap.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/reject.hpp"

namespace magline::dp {

namespace {

// A neighbour's life (RFC 4861 7.3.2, simplified to what a node without traffic feedback can
// tell; ARP entries follow the same states):
//   incomplete: requests broadcast every request_interval_ms, packets held; after
//               request_attempts unanswered requests -> failed, held packets dropped.
//   reachable:  known; workers have it. After reachable_ms without confirmation -> probing.
//   probing:    still used by the workers; unicast requests to the cached address. An answer
//               -> reachable; request_attempts unanswered -> forgotten (update valid=false) and
//               failed.
//   failed:     packets for it are dropped at once, so an unreachable next hop costs no more
//               than request_attempts requests per round; removed after a hold-down as long as
//               the round, then the next packet starts resolving again.
enum class State : uint8_t { incomplete, reachable, probing, failed };

struct Entry {
  State state = State::incomplete;
  MacAddr mac;  // reachable and probing
  uint16_t port = 0;
  uint32_t attempts = 0;     // requests sent in this round (incomplete, probing)
  uint64_t deadline_ms = 0;  // next request, probe or removal
  std::vector<Packet> held;  // incomplete only; Packet::port is the egress port
};

// How far a message vouches for a neighbour.
enum class Evidence : uint8_t {
  answer,      // an ARP reply or a solicited NA: it hears us (RFC 4861 7.3.1 confirmation)
  unsolicited  // a request, announcement or unsolicited NA: its address, not its reachability
};

bool is_unspecified(const IpAddr& a) noexcept {
  return a == IpAddr{{}, a.family};
}

}  // namespace

struct SlowPath::Impl {
  Node node;  // a copy: the caller's may be rebuilt on reload while this one still runs
  std::function<bool(const IpAddr&)> is_vip;
  std::function<bool(const IpAddr&)> speaks_for;  // empty: every VIP
  PacketPool& pool;
  SlowPathConfig cfg;
  SlowPathStats stats;
  std::map<IpAddr, Entry> entries;  // ordered: timers fire in the same order on every run
  size_t held_total = 0;
  struct PathMtu {
    uint16_t mtu = 0;
    uint64_t expires_ms = 0;
  };
  std::map<IpAddr, PathMtu> path_mtus;  // tunnelled backends' path MTUs, learned

  Impl(const Node& n, std::function<bool(const IpAddr&)> vip, PacketPool& p, SlowPathConfig c)
      : node(n), is_vip(std::move(vip)), pool(p), cfg(c) {}

  ~Impl() {
    for (auto& [ip, e] : entries) {
      for (Packet& p : e.held)
        pool.free(p);
    }
  }

  const NodePort* port_of(uint16_t id) const noexcept {
    for (const NodePort& p : node.ports) {
      if (p.id == id) return &p;
    }
    return nullptr;
  }

  // The addresses answered on `port`: its own (not another port's: each port is its own link),
  // every VIP, and the encapsulation's outer sources (routers send their ICMP errors about
  // tunnelled packets there).
  bool owns(const NodePort& port, const IpAddr& ip) const {
    for (const IfAddr& a : port.addrs) {
      if (a.addr == ip) return true;
    }
    return (is_vip(ip) && (!speaks_for || speaks_for(ip))) || node.encap.in_sources(ip);
  }

  static bool on_link(const NodePort& port, const IpAddr& ip) noexcept {
    for (const IfAddr& a : port.addrs) {
      if (a.subnet().contains(ip)) return true;
    }
    return false;
  }

  // RFC 4861 7.2.2 asks for an address of the interface; one on the target's subnet first, so
  // the neighbour can answer without a route.
  std::optional<IpAddr> source_for(const NodePort& port, const IpAddr& target) const noexcept {
    for (const IfAddr& a : port.addrs) {
      if (a.subnet().contains(target)) return a.addr;
    }
    if (const IfAddr* a = node.source_address(port.id, target.family)) return a->addr;
    return std::nullopt;
  }

  // Allocates a buffer, lets `build` write a frame into it and queues it for `port`.
  template <class Build>
  bool emit(uint16_t port, Build&& build, SlowPathOutput& out) {
    Packet p;
    if (!pool.alloc(p, uint16_t(kMaxArpNdFrameLen))) {
      ++stats.alloc_failed;
      return false;
    }
    const size_t len = build(std::span<uint8_t>(p.data, kMaxArpNdFrameLen));
    if (len == 0) {
      pool.free(p);
      return false;
    }
    p.len = uint16_t(len);
    p.port = port;
    out.tx.push_back(p);
    return true;
  }

  void drop(Packet& p, uint64_t& counter) {
    ++counter;
    pool.free(p);
  }

  // ---- Resolution ----

  // Incomplete: broadcast / solicited-node multicast. Probing: unicast to the cached address
  // (RFC 4861 7.3.3; Linux probes ARP entries the same way).
  void send_request(const IpAddr& ip, const Entry& e, SlowPathOutput& out) {
    const NodePort* port = port_of(e.port);
    if (port == nullptr) return;
    const bool unicast = e.state == State::probing;
    const std::optional<IpAddr> src = source_for(*port, ip);
    EthHeader eth;
    eth.src = port->mac;
    bool sent = false;
    if (ip.family == Family::v4) {
      eth.dst = unicast ? e.mac : kBroadcastMac;
      // No IPv4 address on the port: an ARP probe's sender 0.0.0.0 (RFC 5227 2.1.1) still
      // gets an answer.
      const IpAddr sender = src.value_or(IpAddr{});
      const auto build = [&](auto buf) { return build_arp_request(buf, eth, sender, ip); };
      sent = emit(e.port, build, out);
    } else if (src) {
      const IpAddr dst = unicast ? ip : solicited_node(ip);
      eth.dst = unicast ? e.mac : ipv6_multicast_mac(dst);
      const auto build = [&](auto buf) { return build_ns(buf, eth, *src, dst, ip); };
      sent = emit(e.port, build, out);
    }
    if (sent) ++stats.requests_sent;
  }

  void fail(Entry& e, uint64_t now_ms) {
    for (Packet& p : e.held)
      drop(p, stats.dropped_unresolved);
    held_total -= e.held.size();
    e.held.clear();
    e.state = State::failed;
    e.deadline_ms = now_ms + uint64_t(cfg.request_attempts) * cfg.request_interval_ms;
  }

  // Runs an entry's timer if it is due; true when the entry is to be removed.
  bool advance(const IpAddr& ip, Entry& e, uint64_t now_ms, SlowPathOutput& out) {
    if (now_ms < e.deadline_ms) return false;
    switch (e.state) {
      case State::failed:
        return true;
      case State::reachable:
        e.state = State::probing;
        e.attempts = 0;
        [[fallthrough]];
      case State::incomplete:
      case State::probing:
        if (e.attempts < cfg.request_attempts) {
          send_request(ip, e, out);
          ++e.attempts;
          e.deadline_ms = now_ms + cfg.request_interval_ms;
          return false;
        }
        if (e.state == State::probing) out.updates.push_back({ip, e.mac, e.port, false});
        fail(e, now_ms);
        return false;
    }
    return false;
  }

  // ---- Held packets ----

  void transmit(Packet& p, const MacAddr& dst, SlowPathOutput& out) {
    const NodePort* port = port_of(p.port);
    if (port == nullptr || p.len < 12) {
      drop(p, stats.ignored);
      return;
    }
    dst.store(p.data);
    port->mac.store(p.data + 6);
    ++stats.released;
    out.tx.push_back(p);
  }

  void release(Entry& e, SlowPathOutput& out) {
    for (Packet& p : e.held)
      transmit(p, e.mac, out);
    held_total -= e.held.size();
    e.held.clear();
  }

  void hold(Entry& e, Packet& p) {
    if (e.held.size() >= cfg.max_queued_per_neighbor || held_total >= cfg.max_queued_total) {
      drop(p, stats.dropped_queue_full);
      return;
    }
    e.held.push_back(p);
    ++held_total;
    ++stats.queued;
  }

  void on_needs_neighbor(SlowPacket& sp, uint64_t now_ms, SlowPathOutput& out) {
    Packet p = sp.pkt;
    p.port = sp.next_hop.port;
    const IpAddr& ip = sp.next_hop.ip;
    auto it = entries.find(ip);
    if (it == entries.end()) {
      if (port_of(p.port) == nullptr) return drop(p, stats.ignored);
      if (entries.size() >= cfg.max_neighbors) return drop(p, stats.dropped_table_full);
      it = entries.emplace(ip, Entry{State::incomplete, {}, p.port, 0, now_ms, {}}).first;
      hold(it->second, p);
      advance(ip, it->second, now_ms, out);  // the first request, now
      return;
    }
    Entry& e = it->second;
    switch (e.state) {
      case State::incomplete:
        return hold(e, p);
      case State::failed:
        return drop(p, stats.dropped_unresolved);
      case State::reachable:
      case State::probing:
        return transmit(p, e.mac, out);  // the worker has not applied the update yet
    }
  }

  // ---- Learning ----

  // Records that `ip` is at `mac` on `port`. `create`: a new entry may be made (the message was
  // for us: RFC 826's "merge" otherwise, RFC 4861 7.2.3). `override_mac`: a different cached
  // address may be replaced (RFC 4861 7.2.5: not by an NA without the Override flag).
  // Returns whether the information was taken.
  bool learn(const IpAddr& ip, const MacAddr& mac, const NodePort& port, bool create,
             bool override_mac, Evidence ev, uint64_t now_ms, SlowPathOutput& out) {
    if (mac.is_multicast() || mac.is_zero() || is_unspecified(ip)) return false;
    // Someone else claiming one of our addresses (RFC 5227 2.4 conflict): never cache it.
    if (node.is_local(ip) || is_vip(ip)) return false;
    auto it = entries.find(ip);
    if (it == entries.end()) {
      // Strangers may fill half the table at most, so that they cannot crowd out next hops.
      if (!create || !on_link(port, ip) || entries.size() >= cfg.max_neighbors / 2) return false;
      entries.emplace(ip, Entry{State::reachable, mac, port.id, 0, now_ms + cfg.reachable_ms, {}});
      out.updates.push_back({ip, mac, port.id, true});
      return true;
    }
    Entry& e = it->second;
    const bool known = e.state == State::reachable || e.state == State::probing;
    if (known && e.mac != mac && !override_mac) return false;
    const bool changed = !known || e.mac != mac || e.port != port.id;
    e.mac = mac;
    e.port = port.id;
    if (changed) out.updates.push_back({ip, mac, port.id, true});
    if (!known || ev == Evidence::answer) {
      e.state = State::reachable;
      e.attempts = 0;
      e.deadline_ms = now_ms + cfg.reachable_ms;
    }
    release(e, out);
    return true;
  }

  // ---- ARP ----

  // Returns whether it answered (a request for one of our addresses).
  bool on_arp(std::span<const uint8_t> frame, const Parsed& parsed, const NodePort& port,
              uint64_t now_ms, SlowPathOutput& out) {
    const ArpInfo& a = parsed.arp;
    const MacAddr sender_mac = MacAddr::from(a.sender_mac);
    if (parsed.l3 != L3::arp || (a.op != kArpRequest && a.op != kArpReply) ||
        sender_mac.is_multicast()) {
      ++stats.ignored;
      return false;
    }
    const bool for_us = owns(port, a.target_ip);
    const Evidence ev = a.op == kArpReply ? Evidence::answer : Evidence::unsolicited;
    const bool learned = learn(a.sender_ip, sender_mac, port, for_us, true, ev, now_ms, out);
    if (learned && a.op == kArpReply) ++stats.arp_replies_learned;
    // An announcement (sender IP = target IP, RFC 5227 3) asks nothing.
    if (a.op == kArpRequest && for_us && a.sender_ip != a.target_ip) {
      const EthHeader eth = answer_header(frame, parsed, port.mac, sender_mac);
      const auto build = [&](auto buf) {
        return build_arp_reply(buf, eth, a.target_ip, sender_mac, a.sender_ip);
      };
      if (emit(port.id, build, out)) ++stats.arp_requests_answered;
      return true;
    }
    if (!learned) ++stats.ignored;
    return false;
  }

  // ---- Neighbour discovery ----

  // RFC 4861 7.2.3 / 7.2.4: learn the sender from its source link-layer address option, and
  // answer it (or all nodes, for duplicate address detection from ::).
  bool on_ns(std::span<const uint8_t> frame, const Parsed& parsed, const NdMessage& m,
             const NodePort& port, uint64_t now_ms, SlowPathOutput& out) {
    if (!owns(port, m.target)) {
      ++stats.ignored;
      return false;
    }
    if (m.has_ll) learn(m.src, m.ll, port, true, true, Evidence::unsolicited, now_ms, out);
    // From :: (duplicate address detection): defend the address to all nodes, unsolicited.
    const bool dad = is_unspecified(m.src);
    const IpAddr dst = dad ? all_nodes() : m.src;
    MacAddr to = m.has_ll ? m.ll : MacAddr::from(frame.data() + 6);
    if (dad) to = ipv6_multicast_mac(dst);
    const uint8_t flags = dad ? kNaOverride : uint8_t(kNaSolicited | kNaOverride);
    const EthHeader eth = answer_header(frame, parsed, port.mac, to);
    const auto build = [&](auto buf) { return build_na(buf, eth, m.target, dst, m.target, flags); };
    if (emit(port.id, build, out)) ++stats.nd_solicitations_answered;
    return true;
  }

  // RFC 4861 7.2.5: updates an existing entry only; without a target link-layer address option
  // a solicited NA still confirms the cached address.
  void on_na(const NdMessage& m, const NodePort& port, uint64_t now_ms, SlowPathOutput& out) {
    const bool solicited = (m.flags & kNaSolicited) != 0;
    const bool override_mac = (m.flags & kNaOverride) != 0;
    const Evidence ev = solicited ? Evidence::answer : Evidence::unsolicited;
    bool learned = false;
    if (m.has_ll) {
      learned = learn(m.target, m.ll, port, false, override_mac, ev, now_ms, out);
    } else if (auto it = entries.find(m.target); it != entries.end() && solicited) {
      const Entry& e = it->second;
      if (e.state == State::reachable || e.state == State::probing) {
        learned = learn(m.target, e.mac, port, false, false, ev, now_ms, out);
      }
    }
    if (learned) {
      ++stats.nd_advertisements_learned;
    } else {
      ++stats.ignored;
    }
  }

  // Returns whether it answered (a solicitation for one of our addresses).
  bool on_ndp(std::span<const uint8_t> frame, const Parsed& parsed, const NodePort& port,
              uint64_t now_ms, SlowPathOutput& out) {
    NdMessage m;
    if (parse_nd(frame, parsed, m) != NdError::none) {
      ++stats.ignored;  // includes router solicitations, advertisements and redirects
      return false;
    }
    if (m.type == kNdNeighborSolicit) return on_ns(frame, parsed, m, port, now_ms, out);
    on_na(m, port, now_ms, out);
    return false;
  }

  // A ping to one of the port's addresses or a VIP is answered from that address, back to the
  // neighbour it came from (operators check a VIP's reachability that way). True when `pkt` was
  // turned into the reply and queued.
  bool on_echo(Packet& pkt, const Parsed& parsed, const NodePort& port, SlowPathOutput& out) {
    if (!owns(port, parsed.key.dst_addr()) || make_echo_reply(pkt, parsed) != DropReason::none) {
      ++stats.ignored;
      return false;
    }
    pkt.port = port.id;
    out.tx.push_back(pkt);
    ++stats.echo_requests_answered;
    return true;
  }

  // A router's ICMP error about a packet Magline encapsulated: the backend's path MTU, for
  // `path_mtu_expiry_ms` (then forgotten, so that a path that grows is found again, as RFC 1191
  // and RFC 8201 have hosts do). Only a smaller MTU replaces a live one; the same refreshes it.
  void on_path_mtu(std::span<const uint8_t> frame, const Parsed& p, uint64_t now_ms,
                   SlowPathOutput& out) {
    const std::optional<TunnelMtu> t = tunnel_path_mtu(frame, p, node);
    if (!t) {
      ++stats.ignored;
      return;
    }
    const uint16_t configured = node.encap.mtu;
    auto it = path_mtus.find(t->backend);
    if (it == path_mtus.end()) {
      if (configured != 0 && t->mtu >= configured) return;  // nothing to learn
      if (path_mtus.size() >= cfg.max_path_mtus) {
        ++stats.path_mtus_refused;
        return;
      }
      it = path_mtus.emplace(t->backend, PathMtu{}).first;
    } else if (t->mtu > it->second.mtu) {
      return;
    }
    const bool changed = it->second.mtu != t->mtu;
    it->second = {t->mtu, now_ms + cfg.path_mtu_expiry_ms};
    if (changed) {
      ++stats.path_mtus_learned;
      out.path_mtus.push_back({t->backend, t->mtu});
    }
  }

  // An encapsulated packet too big for the path, its inner packet IPv4 without DF: split into
  // pieces that fit (encap.hpp), each sent to the backend's next hop like any frame waiting for
  // its neighbour. The path MTU is the backend's learned one, else the configured or the
  // egress port's, as the worker took it.
  void on_split(SlowPacket& sp, uint64_t now_ms, SlowPathOutput& out) {
    const std::span<const uint8_t> frame(sp.pkt.data, sp.pkt.len);
    Parsed outer;
    const NodePort* port = port_of(sp.next_hop.port);
    std::optional<InnerSplit> plan;
    if (port != nullptr && parse(frame, outer) == DropReason::none) {
      uint16_t mtu = node.encap_mtu(port->id);
      if (auto it = path_mtus.find(outer.key.dst_addr()); it != path_mtus.end()) {
        mtu = std::min(mtu, it->second.mtu);
      }
      plan = plan_inner_split(frame, outer, mtu);
    }
    if (!plan) return drop(sp.pkt, stats.split_failed);
    const uint16_t room = uint16_t(plan->inner_off + plan->chunk + kIpv4MinHeaderLen);
    for (uint16_t k = 0; k < plan->count; ++k) {
      Packet piece;
      if (!pool.alloc(piece, room)) {
        ++stats.alloc_failed;
        break;
      }
      piece.len = write_inner_piece(frame, outer, *plan, k, piece.data);
      SlowPacket waiting{piece, SlowReason::needs_neighbor, sp.next_hop};
      on_needs_neighbor(waiting, now_ms, out);
      ++stats.split_pieces;
    }
    ++stats.split_packets;
    pool.free(sp.pkt);
  }

  void handle(SlowPacket& sp, uint64_t now_ms, SlowPathOutput& out) {
    if (sp.reason == SlowReason::needs_neighbor) return on_needs_neighbor(sp, now_ms, out);
    if (sp.reason == SlowReason::split) return on_split(sp, now_ms, out);
    const std::span<const uint8_t> frame(sp.pkt.data, sp.pkt.len);
    Parsed parsed;
    const NodePort* port = port_of(sp.pkt.port);
    // ARP and NDP that Magline did not answer itself go on to the kernel too (on a port with a
    // kernel interface): the replies and advertisements its own requests asked for.
    bool to_kernel = false;
    if (port == nullptr || parse(frame, parsed) != DropReason::none) {
      ++stats.ignored;
    } else if (sp.reason == SlowReason::kernel) {
      to_kernel = true;
    } else if (sp.reason == SlowReason::echo) {
      if (on_echo(sp.pkt, parsed, *port, out)) return;  // the packet became the reply
    } else if (sp.reason == SlowReason::arp) {
      to_kernel = !on_arp(frame, parsed, *port, now_ms, out);
    } else if (sp.reason == SlowReason::path_mtu) {
      on_path_mtu(frame, parsed, now_ms, out);
    } else {
      to_kernel = !on_ndp(frame, parsed, *port, now_ms, out);
    }
    if (to_kernel && port->kernel) {
      ++stats.kernel_frames;
      out.kernel.push_back(sp.pkt);
      return;
    }
    if (sp.reason == SlowReason::kernel) ++stats.ignored;  // no kernel interface (any more)
    pool.free(sp.pkt);
  }

  void tick(uint64_t now_ms, SlowPathOutput& out) {
    for (auto it = path_mtus.begin(); it != path_mtus.end();) {
      if (it->second.expires_ms > now_ms) {
        ++it;
        continue;
      }
      ++stats.path_mtus_expired;
      out.path_mtus.push_back({it->first, 0});
      it = path_mtus.erase(it);
    }
    for (auto it = entries.begin(); it != entries.end();) {
      if (advance(it->first, it->second, now_ms, out)) {
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
  }

  void announce_on(const NodePort& port, const IpAddr& ip, SlowPathOutput& out) {
    EthHeader eth;
    eth.dst = kBroadcastMac;
    eth.src = port.mac;
    const auto build = [&](auto buf) {
      return ip.family == Family::v4 ? build_gratuitous_arp(buf, eth, ip)
                                     : build_unsolicited_na(buf, eth, ip);
    };
    emit(port.id, build, out);
  }

  void announce(std::span<const IpAddr> vips, SlowPathOutput& out) {
    for (const NodePort& port : node.ports) {
      for (const IfAddr& a : port.addrs)
        announce_on(port, a.addr, out);
    }
    for (const IpAddr& vip : vips) {
      const NodePort* home = nullptr;
      for (const NodePort& port : node.ports) {
        if (home == nullptr && on_link(port, vip)) home = &port;
      }
      for (const NodePort& port : node.ports) {
        if (home == nullptr || home == &port) announce_on(port, vip, out);
      }
    }
  }
};

SlowPath::SlowPath(const Node& node, std::function<bool(const IpAddr&)> is_vip, PacketPool& pool,
                   SlowPathConfig config)
    : impl_(std::make_unique<Impl>(node, std::move(is_vip), pool, config)) {}

SlowPath::~SlowPath() = default;

std::vector<Update> SlowPathOutput::worker_updates() const {
  std::vector<Update> ups;
  ups.reserve(updates.size() + path_mtus.size());
  for (const NeighborUpdate& n : updates) {
    Update& u = ups.emplace_back();
    u.kind = Update::Kind::neighbor;
    u.neighbor = n;
  }
  for (const PathMtuUpdate& m : path_mtus) {
    Update& u = ups.emplace_back();
    u.kind = Update::Kind::path_mtu;
    u.path_mtu = m;
  }
  return ups;
}

void SlowPath::handle(SlowPacket sp, uint64_t now_ms, SlowPathOutput& out) {
  impl_->handle(sp, now_ms, out);
}

void SlowPath::tick(uint64_t now_ms, SlowPathOutput& out) {
  impl_->tick(now_ms, out);
}

void SlowPath::speak_only_for(std::function<bool(const IpAddr&)> speaks_for) {
  impl_->speaks_for = std::move(speaks_for);
}

void SlowPath::announce(std::span<const IpAddr> vips, uint64_t, SlowPathOutput& out) {
  impl_->announce(vips, out);
}

const SlowPathStats& SlowPath::stats() const noexcept {
  return impl_->stats;
}

}  // namespace magline::dp
