#include "control/announce.hpp"

#include <algorithm>
#include <map>
#include <sstream>

namespace magline::control {

std::vector<dp::IpAddr> announced_addresses(const dp::ServiceList& services,
                                            bool withdraw_without_backends) {
  std::map<dp::IpAddr, bool> serving;  // address -> some service there has a usable backend
  for (const auto& s : services) {
    for (const dp::Frontend& f : s->spec().frontends) {
      if (f.kind != dp::FrontendKind::load_balancer) continue;
      serving[f.addr] = serving[f.addr] || s->has_backends();
    }
  }
  std::vector<dp::IpAddr> out;
  for (const auto& [addr, ok] : serving) {
    if (ok || !withdraw_without_backends) out.push_back(addr);
  }
  return out;
}

std::string bird_peer_name(const dp::IpAddr& peer) {
  std::string name = "peer_" + dp::to_string(peer);
  std::replace_if(name.begin(), name.end(), [](char c) { return c == '.' || c == ':'; }, '_');
  return name;
}

namespace {

void static_protocol(std::ostream& out, const char* name, dp::Family family,
                     std::span<const dp::IpAddr> addrs) {
  out << "protocol static " << name << " {\n  " << (family == dp::Family::v4 ? "ipv4" : "ipv6")
      << ";\n";
  for (const dp::IpAddr& a : addrs) {
    if (a.family != family) continue;
    out << "  route " << dp::to_string(a) << (family == dp::Family::v4 ? "/32" : "/128")
        << " blackhole;\n";
  }
  out << "}\n\n";
}

void channel(std::ostream& out, dp::Family family, const std::optional<dp::IpAddr>& next_hop) {
  out << "  " << (family == dp::Family::v4 ? "ipv4" : "ipv6") << " {\n"
      << "    import none;\n"
      << "    export filter magline_export;\n";
  if (next_hop) out << "    next hop address " << dp::to_string(*next_hop) << ";\n";
  out << "  };\n";
}

}  // namespace

std::string bird_config(const cfg::BgpConfig& bgp, std::span<const dp::IpAddr> addrs) {
  std::ostringstream out;
  out << "# Written by Magline from the bgp section of its configuration: edits here are lost.\n"
      << "# docs/announce.md\n\n";
  if (bgp.router_id) out << "router id " << dp::to_string(*bgp.router_id) << ";\n\n";
  out << "protocol device {\n}\n\n";
  static_protocol(out, "magline4", dp::Family::v4, addrs);
  static_protocol(out, "magline6", dp::Family::v6, addrs);
  out << "filter magline_export {\n"
      << "  if proto != \"magline4\" && proto != \"magline6\" then reject;\n";
  for (const cfg::BgpCommunity& c : bgp.communities) {
    out << "  bgp_community.add((" << c.as << ", " << c.value << "));\n";
  }
  out << "  accept;\n}\n";
  for (const cfg::BgpPeerConfig& p : bgp.peers) {
    out << "\nprotocol bgp " << bird_peer_name(p.address) << " {\n"
        << "  local as " << bgp.local_as << ";\n"
        << "  neighbor " << dp::to_string(p.address) << " as " << p.as << ";\n"
        << "  hold time " << p.hold_time_s << ";\n";
    if (p.multihop) out << "  multihop;\n";
    if (!p.password.empty()) out << "  password \"" << p.password << "\";\n";
    const bool v4_session = p.address.family == dp::Family::v4;
    if (v4_session || bgp.next_hop_v4) channel(out, dp::Family::v4, bgp.next_hop_v4);
    if (!v4_session || bgp.next_hop_v6) channel(out, dp::Family::v6, bgp.next_hop_v6);
    out << "}\n";
  }
  return out.str();
}

}  // namespace magline::control
