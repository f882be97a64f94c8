// Which ports a fragment's datagram carries. Only an IP datagram's first fragment holds its L4
// header; the others carry the identification field alone. A worker remembers, for a while,
// the ports each first fragment of TCP, UDP or SCTP showed, under (family, addresses, protocol,
// identification), so that the later fragments of that datagram follow its connection: the same
// flow entry, the same backend, the same rewrite (of their addresses: their bytes hold no ports).
// No reassembly: fragments go on as fragments and the backend or the client reassembles them.
//
// Bounded: a fixed number of slots in sets of four, each entry kept kFragmentTimeoutMs; a new
// datagram takes a free or expired slot of its set, else the one nearest its deadline. A
// fragment whose first fragment this worker has not seen (it came later, or went elsewhere, or
// its entry was taken) has no ports: the forwarder drops and counts it.
//
// Contract: one table per worker, used by that worker only; noexcept, no allocation after
// construction.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "dataplane/big_array.hpp"
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
  struct Key {
    std::array<uint8_t, 16> src;
    std::array<uint8_t, 16> dst;
    uint32_t id;
    uint8_t proto;
    uint8_t family;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct Slot {
    Key key;
    FragmentPorts ports;
    uint64_t deadline_ms;  // 0: free
  };
  static Key key_of(const Parsed& p) noexcept;
  size_t set_of(const Key& k) const noexcept;

  BigArray<Slot> slots_;
  size_t sets_;
};

}  // namespace magline::dp
