// A worker's table of the neighbours its connections arrive from (the router that delivered the
// client's packet, or the client itself when on-link): (port, MAC) -> a 2-byte id kept in
// reply-direction flow entries. Replies go back the way their connection came ("auto last
// hop"), so the reply path needs no route lookup. Single writer (the worker); ids are never
// reused, and when the table is full new connections cannot be given a last hop (their replies
// are dropped with a counted reason).
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/neighbor_map.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

class LastHops {
 public:
  static constexpr uint16_t kNone = 0xffff;

  explicit LastHops(size_t capacity = 4096);

  // The id of (port, mac), adding it if new; kNone when the table is full.
  uint16_t intern(uint16_t port, const MacAddr& mac) noexcept;
  const Neighbor& at(uint16_t id) const noexcept { return hops_[id]; }
  size_t size() const noexcept { return hops_.size(); }

 private:
  std::vector<Neighbor> hops_;       // by id; reserved up front, never reallocated
  std::vector<uint16_t> index_;      // open addressing over ids, kNone = empty
  size_t mask_;
  size_t capacity_;
  uint16_t last_ = kNone;  // the id intern() returned last
};

}  // namespace magline::dp
