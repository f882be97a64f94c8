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

FragmentTable::Key FragmentTable::key_of(const Parsed& p) noexcept {
  Key k;
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
  const Key k = key_of(p);
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
  const Key k = key_of(p);
  const Slot* set = &slots_[set_of(k) * kWays];
  for (size_t w = 0; w < kWays; ++w) {
    if (set[w].deadline_ms > now_ms && set[w].key == k) return set[w].ports;
  }
  return std::nullopt;
}

}  // namespace magline::dp
