// Node::resolve() and Node::is_local() compiled for the packet path, where a DNAT connection's
// set-up and every DNAT reply translated without an entry ask them: the ports' on-link subnets
// and the static routes as one flat list of masked prefixes, longest first (on-link before a
// route of the same length, then configuration order), so that the first match is the answer;
// and the node's addresses side by side. The same answers as Node's own scans (tested against
// them), in a loop of two masked word compares per candidate with no nested vectors.
//
// Contract: built once from a Node, which is immutable while workers use it; lookups are
// noexcept and allocate nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/node.hpp"

namespace magline::dp {

class RouteTable {
 public:
  explicit RouteTable(const Node& node);

  std::optional<NextHop> resolve(const IpAddr& dst) const noexcept;  // as Node::resolve()
  bool is_local(const IpAddr& a) const noexcept;                     // as Node::is_local()

 private:
  struct Entry {
    uint64_t net[2];   // the prefix, masked, as the address's bytes load natively
    uint64_t mask[2];
    Family family;
    bool on_link;      // the next hop is the destination itself
    uint16_t port;
    IpAddr via;        // a route's gateway
  };
  std::vector<Entry> entries_;
  std::vector<IpAddr> locals_;
};

}  // namespace magline::dp
