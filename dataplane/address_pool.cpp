#include "dataplane/address_pool.hpp"


namespace magline::dp {


Result<AddressRange> parse_range(std::string_view text) {
  if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    const auto p = parse_prefix(text, HostBits::reject);
    if (!p) return Error{"\"" + std::string(text) + "\" is not a network ADDR/LEN (host bits set?)"};
    const unsigned bits = p->addr.family == Family::v4 ? 32 : 128;
    const uint128 base = address_value(p->addr);
    const unsigned host = bits - p->len;
    const uint128 span = host >= 128 ? ~uint128(0) : (uint128(1) << host) - 1;
    return AddressRange{p->addr, address_at(p->addr.family, base | span)};
  }
  if (const size_t dash = text.find('-'); dash != std::string_view::npos) {
    const auto first = parse_ip(text.substr(0, dash));
    const auto last = parse_ip(text.substr(dash + 1));
    if (!first || !last) {
      return Error{"\"" + std::string(text) + "\" is not a range FIRST-LAST of two addresses"};
    }
    if (first->family != last->family) {
      return Error{"\"" + std::string(text) + "\" mixes IPv4 and IPv6"};
    }
    if (*last < *first) return Error{"\"" + std::string(text) + "\" ends before it starts"};
    return AddressRange{*first, *last};
  }
  const auto a = parse_ip(text);
  if (!a) {
    return Error{"\"" + std::string(text) +
                 "\" is not an address, a network ADDR/LEN or a range FIRST-LAST"};
  }
  return AddressRange{*a, *a};
}

std::string to_string(const AddressRange& r) {
  return r.first == r.last ? to_string(r.first)
                           : to_string(r.first) + "-" + to_string(r.last);
}

bool overlap(const AddressRange& a, const AddressRange& b) noexcept {
  return a.first.family == b.first.family && !(a.last < b.first) && !(b.last < a.first);
}

}  // namespace magline::dp
