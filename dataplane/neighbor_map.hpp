// A worker's maps keyed by IP address (or address, port and protocol): its neighbours (next-hop
// address -> MAC and port), the path MTUs it learned for tunnelled backends (address -> MTU) and
// the DNAT frontend each backend serves (its address, port and protocol -> frontend id, for
// replies without an entry: forwarder.hpp). The control thread resolves neighbours
// (slow_path.hpp), learns path MTUs and indexes services, and sends each change to every worker,
// which applies it at a burst boundary; the worker is the map's only writer and reader. Open
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

// A backend as a reply shows it: its address, port and protocol.
struct Endpoint {
  IpAddr addr;
  uint16_t port = 0;
  uint8_t proto = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

// One 128-bit multiply, folded: the keys are ones the control thread chose (next hops from the
// configuration and the API server, backends), not ones packets choose.
inline uint64_t addr_map_hash(const IpAddr& ip, uint64_t extra = 0) noexcept {
  return hash_mum(load_le64(ip.bytes.data()) ^ kHashP0,
                  load_le64(ip.bytes.data() + 8) ^ uint64_t(ip.family) ^ (extra << 8) ^ kHashP1);
}
inline uint64_t addr_map_hash(const Endpoint& e) noexcept {
  return addr_map_hash(e.addr, uint64_t(e.port) << 8 | e.proto);
}

template <typename Value, typename Key = IpAddr>
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

  const Value* find(const Key& key) const noexcept {
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.value;
    }
  }

  bool set(const Key& key, const Value& v) noexcept {  // false when full
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.used && s.key == key) {
        s.value = v;
        return true;
      }
      if (!s.used) {
        if (size_ == capacity_) return false;
        s = Slot{key, v, true};
        ++size_;
        return true;
      }
    }
  }

  bool erase(const Key& key) noexcept {
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].used) return false;
      if (slots_[i].key == key) break;
    }
    backward_shift_erase(slots_, mask_, i, [](const Slot& s) { return s.used; },
                         [this](const Slot& s) { return home(s.key); });
    --size_;
    return true;
  }

  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return capacity_; }

 private:
  struct Slot {
    Key key;
    Value value{};
    bool used = false;
  };
  size_t home(const Key& key) const noexcept { return size_t(addr_map_hash(key)) & mask_; }
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
// A backend's one DNAT frontend (FrontendRegistry id), or kAmbiguousFrontend.
using DnatReturnMap = AddrMap<uint16_t, Endpoint>;
inline constexpr uint16_t kAmbiguousFrontend = 0xffff;

}  // namespace magline::dp
