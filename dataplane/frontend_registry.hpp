// Node-wide ids for frontends (address, port, protocol), so that a reply-direction flow entry can
// name the frontend its client used in 2 bytes (flow_table.hpp, ReplyFlow).
//
// The control thread is the only writer. Workers read entries by id without locking: an entry is
// written before any service that uses it is published to the workers (the publishing ring
// orders the two), and an id is not reused until kReuseAfterMs after its last user went away,
// by which time every flow entry that named it has expired (kMaxFlowTimeoutMs).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/flow_state.hpp"
#include "dataplane/service.hpp"

namespace magline::dp {

struct FrontendRef {
  IpAddr addr;
  uint16_t port = 0;
  uint8_t proto = 0;
};

class FrontendRegistry {
 public:
  static constexpr size_t kCapacity = 65536;
  static constexpr uint64_t kReuseAfterMs = kMaxFlowTimeoutMs;

  FrontendRegistry();

  // The id of `f`, taking a reference; a new id if it has none. nullopt when every id is in use
  // or waiting out kReuseAfterMs.
  std::optional<uint16_t> acquire(const Frontend& f, uint64_t now_ms);
  // Drops a reference; the last one starts the id's quarantine.
  void release(uint16_t id, uint64_t now_ms);

  // Any thread: the frontend behind an id (stable for as long as a flow may name it).
  const FrontendRef& at(uint16_t id) const noexcept { return refs_[id]; }
  size_t in_use() const noexcept { return by_frontend_.size(); }

 private:
  using Key = std::tuple<std::array<uint8_t, 16>, Family, uint16_t, uint8_t>;
  struct Use {
    uint16_t id;
    uint32_t count;
  };
  std::vector<FrontendRef> refs_;  // kCapacity entries, never reallocated
  std::map<Key, Use> by_frontend_;
  std::deque<std::pair<uint16_t, uint64_t>> quarantine_;  // (id, released at)
  uint32_t next_fresh_ = 0;
};

}  // namespace magline::dp
