#include "control/counter_slots.hpp"

namespace magline::control {

std::optional<uint32_t> CounterSlots::acquire(const std::string& identity) {
  if (auto it = by_identity_.find(identity); it != by_identity_.end()) {
    ++it->second.count;
    return it->second.slot;
  }
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else if (next_fresh_ < capacity_) {
    slot = next_fresh_++;
    by_slot_.resize(next_fresh_);
  } else {
    return std::nullopt;
  }
  by_slot_[slot] = by_identity_.emplace(identity, Use{slot, 1}).first;
  return slot;
}

bool CounterSlots::release(uint32_t slot) {
  if (slot >= by_slot_.size()) return false;
  auto it = by_slot_[slot];
  if (it == by_identity_.end() || --it->second.count > 0) return false;
  by_identity_.erase(it);
  by_slot_[slot] = by_identity_.end();
  free_.push_back(slot);
  return true;
}

void SlotReturns::put(const std::vector<uint32_t>& frontends,
                      const std::vector<uint32_t>& backends) {
  std::lock_guard lock(mu_);
  frontends_.insert(frontends_.end(), frontends.begin(), frontends.end());
  backends_.insert(backends_.end(), backends.begin(), backends.end());
}

void SlotReturns::take(std::vector<uint32_t>& frontends, std::vector<uint32_t>& backends) {
  std::lock_guard lock(mu_);
  frontends.insert(frontends.end(), frontends_.begin(), frontends_.end());
  backends.insert(backends.end(), backends_.begin(), backends_.end());
  frontends_.clear();
  backends_.clear();
}

}  // namespace magline::control
