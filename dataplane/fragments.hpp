// Which ports a fragment's datagram carries. Only an IP datagram's first fragment holds its L4
// header; the others carry the identification field alone. A worker remembers, for a while,
// the ports each first fragment of TCP, UDP or SCTP showed, under (family, addresses, protocol,
// identification), so that the later fragments of that datagram follow its connection: the same
// flow entry, the same backend, the same rewrite (of their addresses: their bytes hold no ports).
// No reassembly: fragments go on as fragments and the backend or the client reassembles them.
//
// Bounded: a fixed number of slots in sets of four, each entry kept kFragmentTimeoutMs; a new
// datagram takes a free or expired slot of its set, else the one nearest its deadline. A
// fragment whose first fragment this worker has not seen has no ports: the forwarder holds it
// (FragmentHold, below) until the first comes, or drops and counts it.
//
// Contract: one table per worker, used by that worker only; noexcept, no allocation after
// construction.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "dataplane/big_array.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/parse.hpp"

namespace magline::dp {

// How long the ports of a datagram are remembered after its first fragment. Linux gives up on
// reassembling a datagram after 30 s (ipfrag_time); a datagram's fragments leave its sender
// back to back, so one second covers reordering on any path worth serving.
inline constexpr uint64_t kFragmentTimeoutMs = 1000;

struct FragmentPorts {
  uint16_t sport = 0;
  uint16_t dport = 0;
};

// A datagram: (family, addresses, protocol, identification).
struct FragmentKey {
  std::array<uint8_t, 16> src;
  std::array<uint8_t, 16> dst;
  uint32_t id;
  uint8_t proto;
  uint8_t family;
  friend bool operator==(const FragmentKey&, const FragmentKey&) = default;

  static FragmentKey of(const Parsed& p) noexcept;
};

class FragmentTable {
 public:
  // `capacity`: slots, rounded up to a multiple of four (at least four).
  explicit FragmentTable(size_t capacity);

  // A first fragment (p.is_fragment, p.first_fragment, with ports): remembers its ports.
  void remember(const Parsed& p, uint64_t now_ms) noexcept;
  // A later fragment of the same datagram: the ports its first fragment showed, if remembered.
  std::optional<FragmentPorts> find(const Parsed& p, uint64_t now_ms) const noexcept;

  size_t capacity() const noexcept { return slots_.size(); }

 private:
  using Key = FragmentKey;
  struct Slot {
    Key key;
    FragmentPorts ports;
    uint64_t deadline_ms;  // 0: free
  };
  size_t set_of(const Key& k) const noexcept;

  BigArray<Slot> slots_;
  size_t sets_;
};

// Later fragments that came before their first one (reordered on the way, or sent last first),
// held for up to kFragmentTimeoutMs until it comes: then they follow it. A ring of kSlots; a
// fragment held when the ring is full displaces the oldest one, which the caller drops, as it
// does those released unmatched. Frames are the I/O layer's buffers, held, not copied.
class FragmentHold {
 public:
  static constexpr size_t kSlots = 64;

  bool empty() const noexcept { return held_ == 0; }
  // Holds `pkt` (parsed as `p`). Returns true and sets `displaced` when the ring was full or an
  // expired fragment held the slot: a frame the caller must drop.
  bool hold(const Parsed& p, const Packet& pkt, uint64_t now_ms, Packet& displaced) noexcept;
  // Moves the fragments held (less than kFragmentTimeoutMs) for the datagram of first fragment
  // `p` to `out`, at most `max`; returns how many. Older ones stay until displaced.
  size_t release(const Parsed& p, uint64_t now_ms, Packet* out, size_t max) noexcept;
  // Moves every held fragment to `out`, at most `max`; returns how many (the owner's shutdown).
  size_t take_all(Packet* out, size_t max) noexcept;

 private:
  struct Slot {
    FragmentKey key;
    Packet pkt;
    uint64_t deadline_ms = 0;  // 0: free
  };
  std::array<Slot, kSlots> slots_{};
  size_t next_ = 0;
  size_t held_ = 0;
};

}  // namespace magline::dp
