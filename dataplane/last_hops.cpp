#include "dataplane/last_hops.hpp"

#include "dataplane/hash.hpp"

namespace magline::dp {

LastHops::LastHops(size_t capacity) : capacity_(std::min<size_t>(capacity, kNone)) {
  size_t slots = 16;
  while (slots < capacity_ * 2) slots *= 2;
  index_.assign(slots, kNone);
  mask_ = slots - 1;
  hops_.reserve(capacity_);
}

uint16_t LastHops::intern(uint16_t port, const MacAddr& mac) noexcept {
  // Most connections come through one router: the last answer first (ids are never reused).
  if (last_ != kNone && hops_[last_].port == port && hops_[last_].mac == mac) return last_;
  uint8_t key[8];
  mac.store(key);
  key[6] = uint8_t(port);
  key[7] = uint8_t(port >> 8);
  for (size_t i = hash_fmix(load_le64(key)) & mask_;; i = (i + 1) & mask_) {
    const uint16_t id = index_[i];
    if (id == kNone) {
      if (hops_.size() == capacity_) return kNone;
      hops_.push_back(Neighbor{mac, port});  // within the reserved capacity: no allocation
      index_[i] = uint16_t(hops_.size() - 1);
      return last_ = index_[i];
    }
    if (hops_[id].port == port && hops_[id].mac == mac) return last_ = id;
  }
}

}  // namespace magline::dp
