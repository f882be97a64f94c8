#include "dataplane/steering.hpp"

namespace magline::dp {

namespace {

// The first port p of first, first+1, ... (cyclic in [lo, hi]) that `owned(p)` accepts and
// `usable` takes, giving up after `usable` said no `max_checks` times.
template <typename Owned>
std::optional<uint16_t> search(uint16_t first, uint16_t lo, uint16_t hi, Owned owned,
                               bool (*usable)(void*, uint16_t), void* ctx,
                               uint32_t max_checks) noexcept {
  if (lo > hi) return std::nullopt;
  if (first < lo || first > hi) first = lo;
  const uint32_t span = uint32_t(hi - lo) + 1;
  uint32_t p = first;
  uint32_t checks = 0;
  for (uint32_t k = 0; k < span && checks < max_checks; ++k, p = p == hi ? lo : p + 1) {
    if (!owned(uint16_t(p))) continue;
    if (usable(ctx, uint16_t(p))) return uint16_t(p);
    ++checks;
  }
  return std::nullopt;
}

bool covered_by_rules(uint8_t proto) noexcept {
  return proto == RssSteering::kTcp || proto == RssSteering::kUdp;
}

}  // namespace

std::optional<uint16_t> SingleWorker::find_reply_port(const FlowKey&, uint16_t, uint16_t,
                                                      uint16_t first, uint16_t lo, uint16_t hi,
                                                      bool (*usable)(void*, uint16_t),
                                                      void* ctx,
                                                      uint32_t max_checks) const noexcept {
  return search(first, lo, hi, [](uint16_t) { return true; }, usable, ctx, max_checks);
}

std::vector<PartitionRule> partition_rules(const std::vector<IpAddr>& addrs, uint16_t workers,
                                           bool tcp, bool udp) {
  std::vector<PartitionRule> rules;
  if (workers == 0 || (workers & (workers - 1)) != 0) return rules;
  for (const IpAddr& a : addrs) {
    for (const uint8_t proto : {kProtoTcp, kProtoUdp}) {
      if ((proto == kProtoTcp && !tcp) || (proto == kProtoUdp && !udp)) continue;
      for (uint16_t q = 0; q < workers; ++q) {
        rules.push_back({a, proto, q, uint16_t(workers - 1), q});
      }
    }
  }
  return rules;
}

bool RssWorkers::by_rules(const FlowKey& k, uint16_t port) const noexcept {
  const PortSteering& s = ports_[port];
  if (s.partitioned.empty() || !covered_by_rules(k.proto)) return false;
  for (const IpAddr& a : s.partitioned) {
    if (a.family == k.family && IpAddr::same_bytes(a.bytes, k.dst)) return true;
  }
  return false;
}

uint16_t RssWorkers::worker_of(const FlowKey& k, uint16_t port) const noexcept {
  if (by_rules(k, port)) return partition_owner(k.dport, ports_[port].workers);
  return ports_[port].rss.queue_of(k);
}

std::optional<uint16_t> RssWorkers::find_reply_port(const FlowKey& reply, uint16_t port,
                                                    uint16_t worker, uint16_t first, uint16_t lo,
                                                    uint16_t hi, bool (*usable)(void*, uint16_t),
                                                    void* ctx,
                                                    uint32_t max_checks) const noexcept {
  const PortSteering& s = ports_[port];
  if (by_rules(reply, port)) {
    const uint16_t w = s.workers;
    return search(first, lo, hi, [&](uint16_t p) { return partition_owner(p, w) == worker; },
                  usable, ctx, max_checks);
  }
  return s.rss.find_port(reply, worker, first, lo, hi,
                         [&](uint16_t p) { return !usable(ctx, p); }, max_checks);
}

}  // namespace magline::dp
