// The node Magline runs on, as the forwarding code needs it: its ports with their MAC and
// interface addresses, and static routes. Built from the configuration at start (and reload);
// immutable while workers use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/packet.hpp"

namespace magline::dp {

// An address configured on a port, with the length of its on-link subnet.
struct IfAddr {
  IpAddr addr;
  uint8_t prefix_len = 0;

  IpPrefix subnet() const noexcept;
  friend bool operator==(const IfAddr&, const IfAddr&) = default;
};

struct NodePort {
  uint16_t id = 0;  // index in Node::ports, and the DPDK port's index in Magline's port list
  std::string name;
  MacAddr mac;
  std::vector<IfAddr> addrs;
  uint16_t mtu = 1500;
  // The port has a kernel interface (the exception path): frames for the node itself that are
  // no service's go to the kernel's network stack there, and what the kernel sends leaves here.
  bool kernel = false;
};

struct StaticRoute {
  IpPrefix dst;
  IpAddr via;
  uint16_t port = 0;
};

// Where to send a packet for `dst`: the neighbour to resolve (the destination itself when it is
// on-link, else the gateway) and the port.
struct NextHop {
  IpAddr ip;
  uint16_t port = 0;
  friend bool operator==(const NextHop&, const NextHop&) = default;
};

// Encapsulation to backends (IPIP, GUE; dataplane/encap.hpp), node-wide.
struct EncapSettings {
  std::optional<IpPrefix> source_v4;  // outer IPv4 sources; none: the egress port's address
  std::optional<IpPrefix> source_v6;
  uint16_t gue_port = 6080;
  uint16_t mtu = 0;  // the path MTU to backends; 0: the egress port's MTU
  bool fragment = true;  // split IPv4 without DF that is too big once encapsulated (encap.hpp)

  // The outer source prefix of `f`, if configured.
  const std::optional<IpPrefix>& sources(Family f) const noexcept {
    return f == Family::v4 ? source_v4 : source_v6;
  }
  // Whether `a` is in its family's outer source prefix.
  bool in_sources(const IpAddr& a) const noexcept {
    const std::optional<IpPrefix>& p = sources(a.family);
    return p && p->contains(a);
  }
  friend bool operator==(const EncapSettings&, const EncapSettings&) = default;
};

struct Node {
  std::vector<NodePort> ports;
  std::vector<StaticRoute> routes;
  EncapSettings encap;

  // Longest-prefix match over the ports' subnets (on-link) and the static routes; on-link wins
  // a tie. A linear scan, for the control path (services' backends are resolved when services
  // change); the packet path asks a RouteTable (route_table.hpp) compiled from the same.
  std::optional<NextHop> resolve(const IpAddr& dst) const noexcept;

  // The port address of `family` that Magline uses as its source on `port` (full-NAT, ARP),
  // or nullptr: the first that is not link-local, else the first.
  const IfAddr* source_address(uint16_t port, Family family) const noexcept;
  // Every address full-NAT may use as its source on `port` for `family`, in configuration
  // order: those that are not link-local, else the first link-local one (source_address() is
  // the first of them).
  std::vector<const IfAddr*> source_addresses(uint16_t port, Family family) const;
  bool is_local(const IpAddr& a) const noexcept;  // one of the ports' addresses
  // Whether a frame to `a` that arrived on `port` is for the kernel behind it (the exception
  // path): the port has a kernel interface, and `a` is a node address or link-local (the
  // kernel's own fe80:: address; Magline forwards nothing link-local).
  bool for_kernel(uint16_t port, const IpAddr& a) const noexcept;
  // The path MTU to tunnelled backends out of `port`: `encap.mtu`, else the port's.
  uint16_t encap_mtu(uint16_t port) const noexcept {
    return encap.mtu != 0 ? encap.mtu : ports[port].mtu;
  }
};

}  // namespace magline::dp
