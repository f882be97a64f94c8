#include "control/l2_speaker.hpp"

#include <algorithm>

#include "dataplane/hash.hpp"

namespace magline::control {

namespace {
constexpr uint64_t kRendezvousSeed = 0x6d61676c696e6532ull;  // "magline2"
}  // namespace

uint64_t rendezvous_weight(std::string_view node, const dp::IpAddr& addr) noexcept {
  const uint64_t n = dp::hash_bytes(reinterpret_cast<const uint8_t*>(node.data()), node.size(),
                                    kRendezvousSeed);
  return dp::hash_bytes(addr.data(), addr.size(), n);
}

std::string l2_owner(const dp::IpAddr& addr, const std::vector<std::string>& live) {
  const std::string* best = nullptr;
  uint64_t best_weight = 0;
  for (const std::string& node : live) {
    const uint64_t w = rendezvous_weight(node, addr);
    if (best == nullptr || w > best_weight || (w == best_weight && node < *best)) {
      best = &node;
      best_weight = w;
    }
  }
  return best ? *best : std::string();
}

std::vector<dp::IpAddr> L2Speaker::update(const std::set<dp::IpAddr>& addrs,
                                          const std::vector<std::string>& live, bool self_live) {
  live_ = live;
  self_live_ = self_live;
  // This node counts as live while it holds its Lease, whether or not the last list of Leases
  // (which may be a retry period old) showed it yet.
  members_ = live;
  const bool listed = std::binary_search(live.begin(), live.end(), identity_);
  if (self_live && !listed) {
    members_.insert(std::upper_bound(members_.begin(), members_.end(), identity_), identity_);
  }
  std::set<dp::IpAddr> owned;
  if (self_live) {
    for (const dp::IpAddr& a : addrs) {
      if (l2_owner(a, members_) == identity_) owned.insert(a);
    }
  }
  std::vector<dp::IpAddr> gained;
  std::set_difference(owned.begin(), owned.end(), owned_.begin(), owned_.end(),
                      std::back_inserter(gained));
  takeovers_ += gained.size();
  owned_ = std::move(owned);
  return gained;
}

}  // namespace magline::control
