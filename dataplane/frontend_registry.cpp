#include "dataplane/frontend_registry.hpp"

namespace magline::dp {

FrontendRegistry::FrontendRegistry() : refs_(kCapacity) {}

std::optional<uint16_t> FrontendRegistry::acquire(const Frontend& f, uint64_t now_ms) {
  const Key key{f.addr.bytes, f.addr.family, f.port, uint8_t(f.proto)};
  if (auto it = by_frontend_.find(key); it != by_frontend_.end()) {
    ++it->second.count;
    return it->second.id;
  }
  uint16_t id;
  if (next_fresh_ < kCapacity) {
    id = uint16_t(next_fresh_++);
  } else if (!quarantine_.empty() && now_ms - quarantine_.front().second >= kReuseAfterMs) {
    id = quarantine_.front().first;
    quarantine_.pop_front();
  } else {
    return std::nullopt;
  }
  refs_[id] = FrontendRef{f.addr, f.port, uint8_t(f.proto)};
  by_frontend_.emplace(key, Use{id, 1});
  return id;
}

void FrontendRegistry::release(uint16_t id, uint64_t now_ms) {
  const FrontendRef& r = refs_[id];
  const Key key{r.addr.bytes, r.addr.family, r.port, r.proto};
  auto it = by_frontend_.find(key);
  if (it == by_frontend_.end() || it->second.id != id) return;
  if (--it->second.count > 0) return;
  by_frontend_.erase(it);
  quarantine_.emplace_back(id, now_ms);
}

}  // namespace magline::dp
