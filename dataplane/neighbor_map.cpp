#include "dataplane/neighbor_map.hpp"

#include "dataplane/bytes.hpp"
#include "dataplane/hash.hpp"
#include "dataplane/linear_probe.hpp"

namespace magline::dp {

// At most half the slots are used, so every probe sequence ends at an empty slot within a few
// steps and find() needs no bound.
NeighborMap::NeighborMap(size_t capacity) : capacity_(capacity) {
  size_t slots = 2;
  while (slots < capacity * 2)
    slots *= 2;
  slots_.assign(slots, Slot{});
  mask_ = slots - 1;
}

// One 128-bit multiply, folded: the addresses are next hops the control thread resolved (from
// the configuration and the API server), not ones packets choose.
size_t NeighborMap::home(const IpAddr& ip) const noexcept {
  return size_t(hash_mum(load_le64(ip.bytes.data()) ^ kHashP0,
                         load_le64(ip.bytes.data() + 8) ^ uint64_t(ip.family) ^ kHashP1)) &
         mask_;
}

const Neighbor* NeighborMap::find(const IpAddr& ip) const noexcept {
  for (size_t i = home(ip);; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (!s.used) return nullptr;
    if (s.ip == ip) return &s.n;
  }
}

bool NeighborMap::set(const IpAddr& ip, const Neighbor& n) noexcept {
  for (size_t i = home(ip);; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.used && s.ip == ip) {
      s.n = n;
      return true;
    }
    if (!s.used) {
      if (size_ == capacity_) return false;
      s = Slot{ip, n, true};
      ++size_;
      return true;
    }
  }
}

bool NeighborMap::erase(const IpAddr& ip) noexcept {
  size_t i = home(ip);
  for (;; i = (i + 1) & mask_) {
    if (!slots_[i].used) return false;
    if (slots_[i].ip == ip) break;
  }
  backward_shift_erase(slots_, mask_, i, [](const Slot& s) { return s.used; },
                       [this](const Slot& s) { return home(s.ip); });
  --size_;
  return true;
}

}  // namespace magline::dp
