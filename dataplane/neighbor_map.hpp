// A worker's maps keyed by IP address: its neighbours (next-hop address -> MAC and port) and
// the path MTUs it learned for tunnelled backends (address -> MTU). The control thread resolves
// neighbours (slow_path.hpp) and learns path MTUs, and sends each change to every worker, which
// applies it at a burst boundary; the worker is the map's only writer and reader. Open
// addressing, O(1).
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/bytes.hpp"
#include "dataplane/hash.hpp"
#include "dataplane/linear_probe.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

template <typename Value>
class AddrMap {
 public:
  // Fixed capacity: set() fails when full. At most half the slots are used, so every probe
  // sequence ends at an empty slot within a few steps and find() needs no bound.
  explicit AddrMap(size_t capacity = 1024) : capacity_(capacity) {
    size_t slots = 2;
    while (slots < capacity * 2) slots *= 2;
    slots_.assign(slots, Slot{});
    mask_ = slots - 1;
  }

  const Value* find(const IpAddr& ip) const noexcept {
    for (size_t i = home(ip);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.ip == ip) return &s.value;
    }
  }

  bool set(const IpAddr& ip, const Value& v) noexcept {  // false when full
    for (size_t i = home(ip);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.used && s.ip == ip) {
        s.value = v;
        return true;
      }
      if (!s.used) {
        if (size_ == capacity_) return false;
        s = Slot{ip, v, true};
        ++size_;
        return true;
      }
    }
  }

  bool erase(const IpAddr& ip) noexcept {
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

  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return capacity_; }

 private:
  struct Slot {
    IpAddr ip;
    Value value{};
    bool used = false;
  };
  // One 128-bit multiply, folded: the addresses are ones the control thread chose (next hops
  // from the configuration and the API server, backends), not ones packets choose.
  size_t home(const IpAddr& ip) const noexcept {
    return size_t(hash_mum(load_le64(ip.bytes.data()) ^ kHashP0,
                           load_le64(ip.bytes.data() + 8) ^ uint64_t(ip.family) ^ kHashP1)) &
           mask_;
  }
  std::vector<Slot> slots_;
  size_t mask_;
  size_t capacity_;
  size_t size_ = 0;
};

struct Neighbor {
  MacAddr mac;
  uint16_t port = 0;
};

using NeighborMap = AddrMap<Neighbor>;
using PathMtuMap = AddrMap<uint16_t>;  // a backend's path MTU, outer headers included

}  // namespace magline::dp
