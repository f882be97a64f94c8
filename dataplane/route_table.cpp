#include "dataplane/route_table.hpp"

#include <algorithm>
#include <cstring>

namespace magline::dp {

namespace {

// The first `len` bits of a 16-byte address, as two words loaded in the machine's order.
void prefix_mask(unsigned len, uint64_t out[2]) noexcept {
  uint8_t m[16] = {};
  for (unsigned i = 0; i < 16 && len > 0; ++i) {
    const unsigned bits = std::min(len, 8u);
    m[i] = uint8_t(0xff00 >> bits);
    len -= bits;
  }
  std::memcpy(out, m, sizeof m);
}

}  // namespace

RouteTable::RouteTable(const Node& node) {
  // Node::resolve(): among the ports' subnets the first of the longest wins, and a route only
  // when strictly longer. Listed on-link first, in order, then the routes: a stable sort by
  // length keeps that order among equals.
  std::vector<unsigned> lens;  // each entry's, as Node::resolve() caps it: the family's width
  const auto add = [&](const IpAddr& prefix, unsigned len, bool on_link, uint16_t port,
                       const IpAddr& via) {
    len = std::min(len, unsigned(prefix.size()) * 8);
    Entry e{};
    prefix_mask(len, e.mask);
    uint64_t a[2];
    std::memcpy(a, prefix.bytes.data(), sizeof a);
    e.net[0] = a[0] & e.mask[0];
    e.net[1] = a[1] & e.mask[1];
    e.family = prefix.family;
    e.on_link = on_link;
    e.port = port;
    e.via = via;
    entries_.push_back(e);
    lens.push_back(len);
  };
  for (const NodePort& port : node.ports) {
    for (const IfAddr& a : port.addrs) {
      add(a.addr, a.prefix_len, true, port.id, {});
      locals_.push_back(a.addr);
    }
  }
  for (const StaticRoute& r : node.routes) add(r.dst.addr, r.dst.len, false, r.port, r.via);
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return lens[x] > lens[y]; });
  std::vector<Entry> sorted;
  sorted.reserve(order.size());
  for (const size_t i : order) sorted.push_back(entries_[i]);
  entries_ = std::move(sorted);
}

std::optional<NextHop> RouteTable::resolve(const IpAddr& dst) const noexcept {
  uint64_t a[2];
  std::memcpy(a, dst.bytes.data(), sizeof a);
  for (const Entry& e : entries_) {
    if (e.family == dst.family &&
        (((a[0] ^ e.net[0]) & e.mask[0]) | ((a[1] ^ e.net[1]) & e.mask[1])) == 0) {
      return NextHop{e.on_link ? dst : e.via, e.port};
    }
  }
  return std::nullopt;
}

bool RouteTable::is_local(const IpAddr& a) const noexcept {
  return std::find(locals_.begin(), locals_.end(), a) != locals_.end();
}

}  // namespace magline::dp
