// A worker's view of its neighbours: next-hop address -> MAC and port. The control thread
// resolves neighbours (slow_path.hpp) and sends each change to every worker, which applies it at
// a burst boundary; the worker is the map's only writer and reader. Open addressing, O(1).
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

struct Neighbor {
  MacAddr mac;
  uint16_t port = 0;
};

class NeighborMap {
 public:
  explicit NeighborMap(size_t capacity = 1024);  // fixed: set() fails when full

  const Neighbor* find(const IpAddr& ip) const noexcept;
  bool set(const IpAddr& ip, const Neighbor& n) noexcept;  // false when full
  bool erase(const IpAddr& ip) noexcept;
  size_t size() const noexcept { return size_; }
  size_t capacity() const noexcept { return capacity_; }

 private:
  struct Slot {
    IpAddr ip;
    Neighbor n;
    bool used = false;
  };
  size_t home(const IpAddr& ip) const noexcept;
  std::vector<Slot> slots_;
  size_t mask_;
  size_t capacity_;
  size_t size_ = 0;
};

}  // namespace magline::dp
