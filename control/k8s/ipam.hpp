// LoadBalancer IP assignment (the provider role, issue 15): which address each Service of type
// LoadBalancer gets, from which pool, and why; or why it gets none. Pure: no API server, no
// clock, deterministic. The provider writes what this decides into the Services' status, and
// `magline plan` shows it.
//
// The rules (MetalLB's, k8s-api.md §7, where the project's reference says so):
// - Pools hold IPv4 and IPv6 ranges (CIDRs or first-last ranges), minus addresses to avoid. A
//   pool may be limited to namespaces and to Services with given labels; auto_assign false
//   keeps it for Services that ask for it by name or by address.
// - A Service gets one address per IP family it has (spec.ipFamilies; dual-stack: one of each,
//   from one pool that has both families).
// - It may ask for addresses (spec.loadBalancerIP, deprecated, or Magline's annotation, one per
//   family) and for a pool (annotation). An address asked for must lie in a pool the Service may
//   use (the named one, if any).
// - An address may be shared by several Services only when all of them carry the same sharing
//   key (annotation) and no two of them use the same port and protocol. A Service with a key
//   goes to an address its key already holds before it takes a fresh one.
// - Otherwise a Service gets the first free address of the first pool (in configuration order)
//   that allows it and has one of every family it needs.
// - What a Service already holds (restore(): read back from its status after a restart) is kept
//   while it stays valid, so a restart changes no address.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "control/k8s/objects.hpp"
#include "dataplane/addr.hpp"
#include "dataplane/address_pool.hpp"
#include "dataplane/result.hpp"

namespace magline::k8s {

// Magline's annotations on a Service (the project's own prefix, as MetalLB's metallb.io/).
inline constexpr std::string_view kLoadBalancerIpsAnnotation = "magline.io/load-balancer-ips";
inline constexpr std::string_view kAddressPoolAnnotation = "magline.io/address-pool";
inline constexpr std::string_view kAllowSharedIpAnnotation = "magline.io/allow-shared-ip";

using dp::AddressPool;
using dp::AddressRange;
using dp::overlap;
using dp::parse_range;
using dp::to_string;

// What a Service asks for, from its spec and annotations (request_of()).
struct IpRequest {
  std::string service;  // "namespace/name"
  std::string ns;
  std::map<std::string, std::string> labels;
  std::vector<dp::Family> families;    // in spec.ipFamilies order; one address each
  std::vector<dp::IpAddr> requested;   // at most one per family
  std::string pool;                    // by name; empty: any pool that allows the Service
  std::string sharing_key;             // empty: shares with nobody
  std::set<std::pair<std::string, uint16_t>> ports;  // (protocol, port)
};

struct Assignment {
  std::vector<dp::IpAddr> addrs;  // one per family, in the request's order
  std::string pool;
  std::string why;  // "requested", "shared with ...", "first free address of pool P", "kept"
  std::string sharing_key;  // the request's (annotation); empty: shares with nobody
};

enum class Refusal : uint8_t {  // kRefusals lists them all
  bad_request,                  // malformed annotation, two addresses of one family, ...
  unknown_pool,                 // the named pool does not exist
  not_allowed,                  // no pool may serve this Service (namespace, labels, families)
  outside_pools,                // a requested address is in no pool the Service may use
  taken,                        // a requested address is another Service's and they may not share
  exhausted,                    // every pool it may use is full
};
inline constexpr Refusal kRefusals[] = {Refusal::bad_request, Refusal::unknown_pool,
                                        Refusal::not_allowed, Refusal::outside_pools,
                                        Refusal::taken,       Refusal::exhausted};
std::string_view to_string(Refusal r) noexcept;

struct Refused {
  Refusal reason = Refusal::bad_request;
  std::string why;  // one line, for the Service's event and the plan
};

// The request a Service makes: its IP families (spec.ipFamilies; without them, its cluster IPs'
// families; without those, IPv4), the addresses it asks for (Magline's annotation, comma
// separated, at most one per family; or spec.loadBalancerIP; both at once is refused, as
// MetalLB does), the pool (annotation), the sharing key (annotation) and its ports.
std::variant<IpRequest, Refused> request_of(const K8sService& svc);

class Ipam {
 public:
  explicit Ipam(std::vector<AddressPool> pools);

  // Takes back what `r`'s Service held before (its status, read after a restart), when every
  // address still lies in a pool the Service may use and its sharing rules still hold. False
  // (nothing taken) otherwise: the Service then gets an assignment like a new one.
  bool restore(const IpRequest& r, const std::vector<dp::IpAddr>& addrs);
  // The Service's addresses: what it holds, while that still satisfies the request; else a new
  // assignment (what it held is given up first).
  std::variant<Assignment, Refused> assign(const IpRequest& r);
  // Gives the Service's addresses up (a shared address stays with its other users).
  void release(const std::string& service);

  const Assignment* find(const std::string& service) const;
  // Every Service's assignment, by "namespace/name".
  const std::map<std::string, Assignment>& assignments() const noexcept { return by_service_; }
  const std::vector<AddressPool>& pools() const noexcept { return pools_; }

  struct Usage {
    std::string pool;
    double size = 0;     // addresses (an IPv6 /64 does not fit an integer of 64 bits)
    uint64_t used = 0;   // addresses held by at least one Service
  };
  // O(pools): the counts are kept as addresses are taken and released.
  std::vector<Usage> usage() const;
  // The Services whose assignment was taken or released since the last call (in name order),
  // so that a copy of assignments() is kept up to date in O(what changed).
  std::set<std::string> take_changed();

 private:
  struct Holder {
    std::string service;
    std::string sharing_key;
    std::set<std::pair<std::string, uint16_t>> ports;
  };
  bool allows(const AddressPool& p, const IpRequest& r) const;
  const AddressPool* pool_of(const dp::IpAddr& a) const;
  bool in_pool(const AddressPool& p, const dp::IpAddr& a) const;
  // Whether `r` may use `a` beside whoever holds it now.
  bool may_share(const dp::IpAddr& a, const IpRequest& r) const;
  // The lowest free address of `p` of family `f`: O(1) amortised for assignments in address
  // order (the scan starts from low_, not from the range's first address).
  std::optional<dp::IpAddr> first_free(const AddressPool& p, dp::Family f);
  std::optional<dp::IpAddr> shared_with_key(const AddressPool& p, dp::Family f,
                                            const IpRequest& r) const;
  bool still_valid(const Assignment& a, const IpRequest& r) const;
  const Assignment& take(const IpRequest& r, Assignment a);

  // The pool holding `a` (pools do not overlap) and its range in it; -1 for none.
  std::pair<int, int> place_of(const dp::IpAddr& a) const;

  std::vector<AddressPool> pools_;
  std::map<dp::IpAddr, std::vector<Holder>> held_;
  std::map<std::string, Assignment> by_service_;
  std::vector<Usage> usage_;                   // per pool, `used` kept by take() and release()
  std::vector<std::vector<dp::uint128>> low_;  // per pool and range: every address below is
                                               // held or avoided (first_free's start)
  std::set<std::string> changed_;              // for take_changed()
};

}  // namespace magline::k8s
