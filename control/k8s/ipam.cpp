#include "control/k8s/ipam.hpp"

#include <algorithm>
#include <utility>

#include "dataplane/hash.hpp"

namespace magline::k8s {

namespace {

using dp::uint128;

uint128 value_of(const dp::IpAddr& a) { return dp::address_value(a); }
dp::IpAddr addr_of(dp::Family f, uint128 v) { return dp::address_at(f, v); }

bool within(const AddressRange& r, const dp::IpAddr& a) {
  return a.family == r.first.family && !(a < r.first) && !(r.last < a);
}

bool collide(const std::set<std::pair<std::string, uint16_t>>& a,
             const std::set<std::pair<std::string, uint16_t>>& b) {
  for (const auto& p : a) {
    if (b.count(p)) return true;
  }
  return false;
}

}  // namespace

std::variant<IpRequest, Refused> request_of(const K8sService& svc) {
  IpRequest r;
  r.service = svc.meta.key();
  r.ns = svc.meta.ns;
  r.labels = svc.meta.labels;
  for (const std::string& f : svc.ip_families) {
    if (f == "IPv4") r.families.push_back(dp::Family::v4);
    if (f == "IPv6") r.families.push_back(dp::Family::v6);
  }
  if (r.families.empty()) {
    for (const std::string& ip : svc.cluster_ips) {
      if (const auto a = dp::parse_ip(ip)) r.families.push_back(a->family);
    }
  }
  if (r.families.empty()) r.families.push_back(dp::Family::v4);
  const auto note = [&](std::string_view key) -> std::string {
    const auto it = svc.meta.annotations.find(std::string(key));
    return it == svc.meta.annotations.end() ? "" : it->second;
  };
  const std::string ips = note(kLoadBalancerIpsAnnotation);
  if (!ips.empty() && !svc.load_balancer_ip.empty()) {
    return Refused{Refusal::bad_request, "both spec.loadBalancerIP and the " +
                                             std::string(kLoadBalancerIpsAnnotation) +
                                             " annotation are set"};
  }
  std::string_view list = ips.empty() ? std::string_view(svc.load_balancer_ip) : ips;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) continue;
    const auto a = dp::parse_ip(item);
    if (!a) {
      return Refused{Refusal::bad_request, "\"" + std::string(item) + "\" is not an IP address"};
    }
    for (const dp::IpAddr& other : r.requested) {
      if (other.family == a->family) {
        return Refused{Refusal::bad_request, "two addresses of one family asked for"};
      }
    }
    if (std::find(r.families.begin(), r.families.end(), a->family) == r.families.end()) {
      return Refused{Refusal::bad_request,
                     dp::to_string(*a) + " is of a family the Service does not have"};
    }
    r.requested.push_back(*a);
  }
  r.pool = note(kAddressPoolAnnotation);
  r.sharing_key = note(kAllowSharedIpAnnotation);
  for (const ServicePort& p : svc.ports) r.ports.emplace(p.protocol, p.port);
  return r;
}

std::string_view to_string(Refusal r) noexcept {
  switch (r) {
    case Refusal::bad_request: return "bad_request";
    case Refusal::unknown_pool: return "unknown_pool";
    case Refusal::not_allowed: return "not_allowed";
    case Refusal::outside_pools: return "outside_pools";
    case Refusal::taken: return "taken";
    case Refusal::exhausted: return "exhausted";
  }
  return "?";
}

Ipam::Ipam(std::vector<AddressPool> pools) : pools_(std::move(pools)) {
  for (const AddressPool& p : pools_) {
    Usage u{p.name, 0, 0};
    std::vector<uint128> low;
    for (const AddressRange& r : p.ranges) {
      low.push_back(value_of(r.first));
      u.size += double(value_of(r.last) - value_of(r.first)) + 1;
      for (const AddressRange& av : p.avoid) {
        if (!overlap(av, r)) continue;
        const uint128 lo = std::max(value_of(av.first), value_of(r.first));
        const uint128 hi = std::min(value_of(av.last), value_of(r.last));
        u.size -= double(hi - lo) + 1;
      }
    }
    usage_.push_back(u);
    low_.push_back(std::move(low));
  }
}

std::pair<int, int> Ipam::place_of(const dp::IpAddr& a) const {
  for (size_t i = 0; i < pools_.size(); ++i) {
    if (!in_pool(pools_[i], a)) continue;
    const auto& rs = pools_[i].ranges;
    for (size_t j = 0; j < rs.size(); ++j) {
      if (within(rs[j], a)) return {int(i), int(j)};
    }
  }
  return {-1, -1};
}

bool Ipam::allows(const AddressPool& p, const IpRequest& r) const {
  if (!r.pool.empty() && r.pool != p.name) return false;
  if (!p.namespaces.empty() &&
      std::find(p.namespaces.begin(), p.namespaces.end(), r.ns) == p.namespaces.end()) {
    return false;
  }
  for (const auto& [k, v] : p.service_labels) {
    const auto it = r.labels.find(k);
    if (it == r.labels.end() || it->second != v) return false;
  }
  return true;
}

bool Ipam::in_pool(const AddressPool& p, const dp::IpAddr& a) const {
  const auto in = [&](const std::vector<AddressRange>& rs) {
    return std::any_of(rs.begin(), rs.end(), [&](const AddressRange& r) { return within(r, a); });
  };
  return in(p.ranges) && !in(p.avoid);
}

const AddressPool* Ipam::pool_of(const dp::IpAddr& a) const {
  for (const AddressPool& p : pools_) {
    if (in_pool(p, a)) return &p;
  }
  return nullptr;
}

bool Ipam::may_share(const dp::IpAddr& a, const IpRequest& r) const {
  const auto it = held_.find(a);
  if (it == held_.end()) return true;
  for (const Holder& h : it->second) {
    if (h.service == r.service) continue;
    if (r.sharing_key.empty() || h.sharing_key != r.sharing_key || collide(h.ports, r.ports)) {
      return false;
    }
  }
  return true;
}

std::optional<dp::IpAddr> Ipam::first_free(const AddressPool& p, dp::Family f) {
  std::vector<uint128>& low = low_[size_t(&p - pools_.data())];
  for (size_t j = 0; j < p.ranges.size(); ++j) {
    const AddressRange& range = p.ranges[j];
    if (range.first.family != f) continue;
    // Address by address from the first one that may be free, stepping over avoided runs:
    // O(addresses taken since the last call, + avoided runs) per call, not O(held).
    uint128 v = std::max(value_of(range.first), low[j]);
    const uint128 end = value_of(range.last);
    while (true) {
      const dp::IpAddr a = addr_of(f, v);
      const auto av = std::find_if(p.avoid.begin(), p.avoid.end(),
                                   [&](const AddressRange& x) { return within(x, a); });
      if (av != p.avoid.end()) {
        const uint128 last = value_of(av->last);
        if (last >= end) break;
        v = last + 1;
        continue;
      }
      if (!held_.count(a)) {
        low[j] = v;
        return a;
      }
      if (v == end) break;
      ++v;
    }
    low[j] = end;  // full: everything up to `end` is held or avoided
  }
  return std::nullopt;
}

std::optional<dp::IpAddr> Ipam::shared_with_key(const AddressPool& p, dp::Family f,
                                                const IpRequest& r) const {
  if (r.sharing_key.empty()) return std::nullopt;
  for (const auto& [a, holders] : held_) {
    if (a.family != f || holders.empty() || !in_pool(p, a)) continue;
    const bool same_key = std::any_of(holders.begin(), holders.end(), [&](const Holder& h) {
      return h.sharing_key == r.sharing_key;
    });
    if (same_key && may_share(a, r)) return a;
  }
  return std::nullopt;
}

bool Ipam::still_valid(const Assignment& a, const IpRequest& r) const {
  if (a.addrs.size() != r.families.size()) return false;
  const AddressPool* pool = nullptr;
  for (size_t i = 0; i < a.addrs.size(); ++i) {
    if (a.addrs[i].family != r.families[i]) return false;
    const AddressPool* p = pool_of(a.addrs[i]);
    if (p == nullptr || !allows(*p, r)) return false;
    if (pool != nullptr && p != pool) return false;
    pool = p;
    if (!may_share(a.addrs[i], r)) return false;
  }
  for (const dp::IpAddr& want : r.requested) {
    if (std::find(a.addrs.begin(), a.addrs.end(), want) == a.addrs.end()) return false;
  }
  return true;
}

const Assignment& Ipam::take(const IpRequest& r, Assignment a) {
  for (const dp::IpAddr& addr : a.addrs) {
    std::vector<Holder>& hs = held_[addr];
    if (hs.empty()) {
      if (const int i = place_of(addr).first; i >= 0) ++usage_[size_t(i)].used;
    }
    hs.push_back({r.service, r.sharing_key, r.ports});
  }
  a.sharing_key = r.sharing_key;
  changed_.insert(r.service);
  return by_service_[r.service] = std::move(a);
}

void Ipam::release(const std::string& service) {
  const auto it = by_service_.find(service);
  if (it == by_service_.end()) return;
  for (const dp::IpAddr& a : it->second.addrs) {
    auto h = held_.find(a);
    if (h == held_.end()) continue;
    auto& hs = h->second;
    hs.erase(std::remove_if(hs.begin(), hs.end(),
                            [&](const Holder& x) { return x.service == service; }),
             hs.end());
    if (!hs.empty()) continue;
    held_.erase(h);
    if (const auto [i, j] = place_of(a); i >= 0) {
      --usage_[size_t(i)].used;
      uint128& low = low_[size_t(i)][size_t(j)];
      low = std::min(low, value_of(a));  // free again: first_free starts no later than here
    }
  }
  changed_.insert(service);
  by_service_.erase(it);
}

std::set<std::string> Ipam::take_changed() { return std::exchange(changed_, {}); }

const Assignment* Ipam::find(const std::string& service) const {
  const auto it = by_service_.find(service);
  return it == by_service_.end() ? nullptr : &it->second;
}

bool Ipam::restore(const IpRequest& r, const std::vector<dp::IpAddr>& addrs) {
  release(r.service);
  Assignment a{addrs, "", "kept", r.sharing_key};
  if (addrs.empty() || !still_valid(a, r)) return false;
  a.pool = pool_of(addrs[0])->name;
  take(r, std::move(a));
  return true;
}

std::variant<Assignment, Refused> Ipam::assign(const IpRequest& r) {
  if (const Assignment* held = find(r.service); held != nullptr && still_valid(*held, r)) {
    return *held;
  }
  release(r.service);
  if (r.families.empty()) return Refused{Refusal::bad_request, "the Service has no IP family"};
  if (!r.pool.empty() &&
      std::none_of(pools_.begin(), pools_.end(),
                   [&](const AddressPool& p) { return p.name == r.pool; })) {
    return Refused{Refusal::unknown_pool, "no address pool is named \"" + r.pool + "\""};
  }

  // Addresses asked for: each in a pool the Service may use, one pool for all, and free for it.
  if (!r.requested.empty()) {
    Assignment a;
    const AddressPool* pool = nullptr;
    for (const dp::Family f : r.families) {
      const auto want = std::find_if(r.requested.begin(), r.requested.end(),
                                     [&](const dp::IpAddr& x) { return x.family == f; });
      if (want == r.requested.end()) {
        return Refused{Refusal::bad_request,
                       std::string("no address asked for its ") +
                           (f == dp::Family::v4 ? "IPv4" : "IPv6") + " family"};
      }
      const AddressPool* p = pool_of(*want);
      if (p == nullptr || !allows(*p, r)) {
        return Refused{Refusal::outside_pools,
                       dp::to_string(*want) + " is in no address pool this Service may use"};
      }
      if (pool != nullptr && p != pool) {
        return Refused{Refusal::bad_request, "the addresses asked for are in different pools"};
      }
      pool = p;
      if (!may_share(*want, r)) {
        return Refused{Refusal::taken, dp::to_string(*want) +
                                           " is another Service's (sharing needs the same " +
                                           std::string(kAllowSharedIpAnnotation) +
                                           " key and no common port)"};
      }
      a.addrs.push_back(*want);
    }
    a.pool = pool->name;
    a.why = "requested";
    return take(r, std::move(a));
  }

  // Otherwise the first pool that allows it (auto_assign, unless named) and has every family.
  bool any_allowed = false;
  for (const AddressPool& p : pools_) {
    if (!allows(p, r) || (r.pool.empty() && !p.auto_assign)) continue;
    const bool has_families = std::all_of(r.families.begin(), r.families.end(), [&](auto f) {
      return std::any_of(p.ranges.begin(), p.ranges.end(),
                         [&](const AddressRange& x) { return x.first.family == f; });
    });
    if (!has_families) continue;
    any_allowed = true;
    Assignment a;
    a.pool = p.name;
    bool shared = false;
    for (const dp::Family f : r.families) {
      std::optional<dp::IpAddr> addr = shared_with_key(p, f, r);
      shared |= addr.has_value();
      if (!addr) addr = first_free(p, f);
      if (!addr) break;
      a.addrs.push_back(*addr);
    }
    if (a.addrs.size() != r.families.size()) continue;
    a.why = shared ? "shared under key \"" + r.sharing_key + "\" in pool " + p.name
                   : "first free address of pool " + p.name;
    return take(r, std::move(a));
  }
  if (!any_allowed) {
    return Refused{Refusal::not_allowed,
                   r.pool.empty() ? "no address pool with auto_assign serves this Service "
                                    "(namespace, labels, IP families)"
                                  : "pool " + r.pool +
                                        " does not serve this Service (namespace, labels, IP "
                                        "families)"};
  }
  return Refused{Refusal::exhausted, "every address pool this Service may use is full"};
}

std::vector<Ipam::Usage> Ipam::usage() const { return usage_; }

}  // namespace magline::k8s
