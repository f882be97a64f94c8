#include "dataplane/fragments.hpp"

#include <cstring>

#include "dataplane/hash.hpp"

namespace magline::dp {

namespace {
constexpr size_t kWays = 4;
constexpr uint64_t kSeed = 0x667261676d656e74ull;  // "fragment"
}  // namespace

FragmentTable::FragmentTable(size_t capacity)
    : slots_((capacity < kWays ? kWays : (capacity + kWays - 1) / kWays * kWays)),
      sets_(slots_.size() / kWays) {
  for (size_t i = 0; i < slots_.size(); ++i) slots_[i] = Slot{};
}

FragmentKey FragmentKey::of(const Parsed& p) noexcept {
  FragmentKey k;
  std::memset(&k, 0, sizeof k);  // the padding too: the key is hashed as bytes
  k.src = p.key.src;
  k.dst = p.key.dst;
  k.id = p.frag_id;
  k.proto = p.key.proto;
  k.family = uint8_t(p.key.family);
  return k;
}

size_t FragmentTable::set_of(const Key& k) const noexcept {
  uint8_t bytes[sizeof(Key)];
  std::memcpy(bytes, &k, sizeof(Key));
  return size_t(hash_bytes(bytes, sizeof(Key), kSeed) % sets_);
}

void FragmentTable::remember(const Parsed& p, uint64_t now_ms) noexcept {
  const Key k = FragmentKey::of(p);
  Slot* set = &slots_[set_of(k) * kWays];
  Slot* take = &set[0];
  for (size_t w = 0; w < kWays; ++w) {
    Slot& s = set[w];
    if (s.deadline_ms > now_ms && s.key == k) {  // the first fragment again (retransmitted)
      take = &s;
      break;
    }
    if (s.deadline_ms <= now_ms) {
      take = &s;  // free or expired: no need to look further unless the key is here
    } else if (take->deadline_ms > now_ms && s.deadline_ms < take->deadline_ms) {
      take = &s;
    }
  }
  take->key = k;
  take->ports = {p.key.sport, p.key.dport};
  take->deadline_ms = now_ms + kFragmentTimeoutMs;
}

std::optional<FragmentPorts> FragmentTable::find(const Parsed& p, uint64_t now_ms) const noexcept {
  const Key k = FragmentKey::of(p);
  const Slot* set = &slots_[set_of(k) * kWays];
  for (size_t w = 0; w < kWays; ++w) {
    if (set[w].deadline_ms > now_ms && set[w].key == k) return set[w].ports;
  }
  return std::nullopt;
}

bool FragmentHold::hold(const Parsed& p, const Packet& pkt, uint64_t now_ms,
                        Packet& displaced) noexcept {
  Slot& s = slots_[next_];
  next_ = (next_ + 1) % kSlots;
  const bool full = s.deadline_ms != 0;
  if (full) {
    displaced = s.pkt;
  } else {
    ++held_;
  }
  s.key = FragmentKey::of(p);
  s.pkt = pkt;
  s.deadline_ms = now_ms + kFragmentTimeoutMs;
  return full;
}

size_t FragmentHold::release(const Parsed& p, uint64_t now_ms, Packet* out,
                             size_t max) noexcept {
  const FragmentKey k = FragmentKey::of(p);
  size_t n = 0;
  for (Slot& s : slots_) {
    if (n == max) break;
    if (s.deadline_ms <= now_ms || !(s.key == k)) continue;
    out[n++] = s.pkt;
    s.deadline_ms = 0;
    --held_;
  }
  return n;
}

size_t FragmentHold::take_all(Packet* out, size_t max) noexcept {
  size_t n = 0;
  for (Slot& s : slots_) {
    if (n == max) break;
    if (s.deadline_ms == 0) continue;
    out[n++] = s.pkt;
    s.deadline_ms = 0;
    --held_;
  }
  return n;
}

}  // namespace magline::dp
