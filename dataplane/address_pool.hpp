// Pools of addresses (the LoadBalancer provider's: control/k8s/ipam.hpp, configured in the
// `provider` section, docs/config.md), and the ranges they are made of.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/addr.hpp"
#include "dataplane/hash.hpp"
#include "dataplane/result.hpp"

namespace magline::dp {

// An address as a number, and back (arithmetic over ranges).
inline uint128 address_value(const IpAddr& a) noexcept {
  uint128 v = 0;
  for (size_t i = 0; i < a.size(); ++i) v = v << 8 | a.bytes[i];
  return v;
}
inline IpAddr address_at(Family f, uint128 v) noexcept {
  IpAddr a;
  a.family = f;
  const size_t n = f == Family::v4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i) a.bytes[n - 1 - i] = uint8_t(v >> (8 * i));
  return a;
}

// A contiguous run of addresses of one family, first <= last.
struct AddressRange {
  IpAddr first;
  IpAddr last;
  friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

// "ADDR/LEN" (every address of the network, the network and broadcast addresses included, as
// MetalLB does), "ADDR-ADDR" (inclusive, one family, first <= last) or a single "ADDR". Errors
// say what is wrong.
Result<AddressRange> parse_range(std::string_view text);
std::string to_string(const AddressRange& r);
bool overlap(const AddressRange& a, const AddressRange& b) noexcept;

struct AddressPool {
  std::string name;
  std::vector<AddressRange> ranges;
  std::vector<AddressRange> avoid;  // never handed out
  bool auto_assign = true;
  std::vector<std::string> namespaces;                // Kubernetes namespaces; empty: every one
  std::map<std::string, std::string> service_labels;  // all must match; empty: every Service
  friend bool operator==(const AddressPool&, const AddressPool&) = default;
};

}  // namespace magline::dp
