#include "dataplane/neighbor_map.hpp"

#include "dataplane/bytes.hpp"
#include "dataplane/hash.hpp"

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

size_t NeighborMap::home(const IpAddr& ip) const noexcept {
  return size_t(
             hash_fmix(hash_mum(load_le64(ip.bytes.data()) ^ kHashP0,
                                load_le64(ip.bytes.data() + 8) ^ uint64_t(ip.family) ^ kHashP1))) &
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

// Backward-shift deletion (Knuth 6.4, algorithm R), as FrontendMap: no tombstones, so a map
// that churns for months keeps its probe sequences short.
bool NeighborMap::erase(const IpAddr& ip) noexcept {
  size_t i = home(ip);
  for (;; i = (i + 1) & mask_) {
    if (!slots_[i].used) return false;
    if (slots_[i].ip == ip) break;
  }
  for (size_t j = i;;) {
    j = (j + 1) & mask_;
    if (!slots_[j].used) break;
    const size_t h = home(slots_[j].ip);
    // Slot j may move back into the hole at i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (!stays) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i] = Slot{};
  --size_;
  return true;
}

}  // namespace magline::dp
