// The L2 speaker (docs/announce.md, "One speaker per address"): where no router learns the
// addresses over BGP, several Magline nodes on one L2 segment share the LoadBalancer addresses,
// and exactly one of them answers ARP and neighbour solicitations for each, so that the
// segment's hosts send it all of that address's traffic. The owner of an address is a
// deterministic function of the address and the set of live nodes (rendezvous hashing, Thaler
// and Ravishankar 1998): every node computes the same owner from the node Leases without
// talking to the others, and a node joining or leaving moves only the addresses it wins or held.
//
// A node answers only while it knows itself live: before its own Lease is first renewed, and
// once it has not renewed it for the renew deadline (cut off from the API server), it answers
// for nothing, as the others see it gone by then. On taking an address over it announces it
// (gratuitous ARP, unsolicited neighbour advertisement: control_thread.cpp); one it loses it
// simply stops answering for, the new owner's announcement moves the segment's caches.
//
// Pure: the control thread feeds it the live set and the addresses, and asks it per request.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/addr.hpp"

namespace magline::control {

// The rendezvous weight of `node` for `addr`: fixed across machines, builds and runs
// (dataplane/hash.hpp), as every node must agree on it.
uint64_t rendezvous_weight(std::string_view node, const dp::IpAddr& addr) noexcept;
// The live node that owns `addr`: the highest weight (ties, which need a 64-bit collision, to
// the smaller name); "" when `live` is empty.
std::string l2_owner(const dp::IpAddr& addr, const std::vector<std::string>& live);

class L2Speaker {
 public:
  explicit L2Speaker(std::string identity) : identity_(std::move(identity)) {}

  // The addresses to speak for (the services' frontend addresses), the live nodes (sorted, as
  // LeaseDriver::live_nodes gives them), and whether this node holds its own Lease now.
  // Returns the addresses this node took over with the change (to announce).
  std::vector<dp::IpAddr> update(const std::set<dp::IpAddr>& addrs,
                                 const std::vector<std::string>& live, bool self_live);

  // Whether this node answers for `addr` (one of update()'s addresses) now.
  bool answers(const dp::IpAddr& addr) const { return owned_.count(addr) > 0; }
  const std::set<dp::IpAddr>& owned() const noexcept { return owned_; }
  const std::vector<std::string>& live() const noexcept { return live_; }
  // The nodes the addresses are shared among: the live ones, this one included while it holds
  // its Lease (even before a list shows it).
  const std::vector<std::string>& members() const noexcept { return members_; }
  bool self_live() const noexcept { return self_live_; }
  const std::string& identity() const noexcept { return identity_; }
  uint64_t takeovers() const noexcept { return takeovers_; }

 private:
  std::string identity_;
  std::vector<std::string> live_;
  std::vector<std::string> members_;
  bool self_live_ = false;
  std::set<dp::IpAddr> owned_;
  uint64_t takeovers_ = 0;  // addresses taken over, since the start
};

}  // namespace magline::control
