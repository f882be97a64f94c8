// Stable slots for the workers' counter rows (dataplane/traffic.hpp): one per identity, a
// (service, frontend) or a (service, backend) pair, held for as long as any service state names
// it. A service replaced by an update that keeps a backend keeps that backend's slot, so its
// counters go on from where they were.
//
// A slot is free for another identity only once no state that named it is alive: states are
// freed after every worker is past them (control/publication.hpp) and after every reader of the
// counters (the admin listener's copy of the service list) has let go, so nobody writes or reads
// the row any more when it is reset and handed out again. SlotReturns carries the slots of
// freed states back to the control thread from whichever thread freed them.
//
// Control thread only, but for SlotReturns::put (any thread).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace magline::control {

class CounterSlots {
 public:
  explicit CounterSlots(uint32_t capacity) : capacity_(capacity) {}

  // The slot of `identity`, taking a reference; a free one if it has none. nullopt when every
  // slot is in use.
  std::optional<uint32_t> acquire(const std::string& identity);
  // Drops a reference to `slot`; true when that was the last: the slot is free, and its rows
  // must be reset before the next acquire() can hand it out (the caller does it at once).
  bool release(uint32_t slot);

  size_t in_use() const noexcept { return by_identity_.size(); }
  uint32_t capacity() const noexcept { return capacity_; }

 private:
  struct Use {
    uint32_t slot;
    uint32_t count;
  };
  uint32_t capacity_;
  uint32_t next_fresh_ = 0;
  std::vector<uint32_t> free_;
  std::map<std::string, Use, std::less<>> by_identity_;
  std::vector<std::map<std::string, Use, std::less<>>::iterator> by_slot_;
};

// The slots of service states that have been freed, waiting for the control thread.
class SlotReturns {
 public:
  void put(const std::vector<uint32_t>& frontends, const std::vector<uint32_t>& backends);
  // Takes everything returned so far.
  void take(std::vector<uint32_t>& frontends, std::vector<uint32_t>& backends);

 private:
  std::mutex mu_;
  std::vector<uint32_t> frontends_;
  std::vector<uint32_t> backends_;
};

}  // namespace magline::control
