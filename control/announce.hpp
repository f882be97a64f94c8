// What Magline announces over BGP (docs/announce.md), and the BIRD configuration that says so.
// Pure: no I/O (control/announcer.hpp writes the file and drives BIRD).
//
// Announced: the address of every LoadBalancer frontend, as a host route (/32, /128), less (with
// bgp.withdraw_without_backends) the addresses none of whose services has a usable backend, so
// that routers send their traffic to nodes that can serve it, or nowhere. The caller withdraws
// everything while the data plane is unhealthy and when Magline stops.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/service.hpp"

namespace magline::control {

// The addresses to announce, sorted and unique. O(frontends).
std::vector<dp::IpAddr> announced_addresses(const dp::ServiceList& services,
                                            bool withdraw_without_backends);

// The BIRD protocol name of a peer's session: "peer_" and its address, '.' and ':' as '_'.
std::string bird_peer_name(const dp::IpAddr& peer);

// BIRD 2's whole configuration: the router id; the addresses as blackhole routes of two static
// protocols (magline4, magline6) in BIRD's own tables (no kernel protocol: BIRD never touches
// the node's routing table); one BGP session per peer that imports nothing and exports those
// routes with the communities and next hops of `bgp`. An IPv6 route goes to a peer over IPv6, or
// over IPv4 when next_hop_v6 is set; IPv4 routes likewise.
std::string bird_config(const cfg::BgpConfig& bgp, std::span<const dp::IpAddr> addrs);

}  // namespace magline::control
