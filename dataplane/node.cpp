#include "dataplane/node.hpp"

#include <algorithm>

namespace magline::dp {

IpPrefix IfAddr::subnet() const noexcept {
  IpPrefix p{addr, prefix_len};
  const unsigned bits = unsigned(addr.size()) * 8;
  if (p.len > bits) p.len = uint8_t(bits);
  for (unsigned i = 0; i < addr.size(); ++i) {
    const unsigned bit0 = i * 8;
    if (bit0 >= p.len) {
      p.addr.bytes[i] = 0;
    } else if (p.len - bit0 < 8) {
      p.addr.bytes[i] &= uint8_t(0xff << (8 - (p.len - bit0)));
    }
  }
  return p;
}

// Routes are few: a linear scan says what it does, each candidate two masked word compares.
// Candidates are taken in order, so among equal prefixes the first port or route wins. (The
// packet path's RouteTable gives the same answers from a list sorted longest first.)
std::optional<NextHop> Node::resolve(const IpAddr& dst) const noexcept {
  std::optional<NextHop> best;
  int best_len = -1;
  const int bits = int(dst.size()) * 8;
  for (const NodePort& port : ports) {
    for (const IfAddr& a : port.addrs) {
      const int len = std::min(int(a.prefix_len), bits);  // as subnet() has it
      if (a.addr.family == dst.family && len > best_len && same_prefix(a.addr, dst, len)) {
        best = NextHop{dst, port.id};
        best_len = len;
      }
    }
  }
  // Strictly longer only: an on-link subnet wins a tie with a route.
  for (const StaticRoute& r : routes) {
    if (int(r.dst.len) > best_len && r.dst.contains(dst)) {
      best = NextHop{r.via, r.port};
      best_len = r.dst.len;
    }
  }
  return best;
}

namespace {
// IPv6 only: an IPv4 link-local (169.254/16) port address stays a candidate, as it always was.
bool is_link_local_v6(const IpAddr& a) noexcept {
  return a.family == Family::v6 && is_link_local(a);
}
}  // namespace

// A global address first: a full-NAT source must be reachable off-link, and fe80::/10 is not
// (RFC 4291 2.5.6). The first one configured, so the choice is predictable.
const IfAddr* Node::source_address(uint16_t port, Family family) const noexcept {
  const IfAddr* fallback = nullptr;
  for (const NodePort& p : ports) {
    if (p.id != port) continue;
    for (const IfAddr& a : p.addrs) {
      if (a.addr.family != family) continue;
      if (!is_link_local_v6(a.addr)) return &a;
      if (fallback == nullptr) fallback = &a;
    }
  }
  return fallback;
}

std::vector<const IfAddr*> Node::source_addresses(uint16_t port, Family family) const {
  std::vector<const IfAddr*> out;
  for (const NodePort& p : ports) {
    if (p.id != port) continue;
    for (const IfAddr& a : p.addrs) {
      if (a.addr.family == family && !is_link_local_v6(a.addr)) out.push_back(&a);
    }
  }
  if (out.empty()) {
    if (const IfAddr* a = source_address(port, family)) out.push_back(a);
  }
  return out;
}

bool Node::for_kernel(uint16_t port, const IpAddr& a) const noexcept {
  if (port >= ports.size() || !ports[port].kernel) return false;
  return is_link_local(a) || is_local(a);
}

bool Node::is_local(const IpAddr& a) const noexcept {
  for (const NodePort& p : ports) {
    for (const IfAddr& x : p.addrs) {
      if (x.addr == a) return true;
    }
  }
  return false;
}

}  // namespace magline::dp
