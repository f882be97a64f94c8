// Leases (coordination.k8s.io/v1, k8s-api.md §12): leader election with client-go's algorithm
// (tools/leaderelection, tryAcquireOrRenew) and node liveness with the kubelet's pattern. Pure:
// no I/O, both clocks injected. control/k8s_client/lease_client.hpp reads and writes the
// objects; control/lease_driver.hpp runs the loop.
//
// Clock-skew tolerance is the point of the algorithm: another node's renewTime is never compared
// with our clock. A record is valid for leaseDurationSeconds after *we observed it change*, on
// our own monotonic clock; the wall clock only fills in the MicroTime fields for humans.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/k8s/micro_time.hpp"
#include "dataplane/result.hpp"

namespace magline::k8s {

using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// A Lease's spec (the fields leader election uses; strategy and preferredHolder are ignored).
struct LeaseRecord {
  std::string holder;        // holderIdentity; empty: released
  int32_t duration_s = 0;    // leaseDurationSeconds
  std::string acquire_time;  // MicroTime text, as written
  std::string renew_time;
  int32_t transitions = 0;  // leaseTransitions

  friend bool operator==(const LeaseRecord&, const LeaseRecord&) = default;
};

// A Lease as the server has it.
struct Lease {
  std::string ns;
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> labels;
  LeaseRecord record;
};

// Decodes a Lease (a GET's answer or a list item). Errors: not an object, no metadata.name.
Result<Lease> decode_lease(const nlohmann::json& j);
// The body of a create (empty resource_version) or an update (the version it was read at).
nlohmann::json lease_body(const Lease& lease);
// Whether `name` may name a Lease: a DNS-1123 subdomain (lowercase letters, digits, '-' and
// '.', labels starting and ending with a letter or digit, at most 253 characters).
bool lease_name_ok(std::string_view name);

struct LeaseTiming {
  std::chrono::milliseconds duration{15000};        // how long a record is valid after it changed
  std::chrono::milliseconds renew_deadline{10000};  // the leader gives up if not renewed by then
  std::chrono::milliseconds retry_period{2000};     // between tries
};

// One candidate's view of one Lease: what to write on each try, and whether it leads.
// tryAcquireOrRenew is split in two: decide() (after the GET) and written()/failed() (after the
// write), so the caller owns the I/O.
class LeaseElector {
 public:
  LeaseElector(std::string identity, LeaseTiming timing);

  struct Decision {
    enum class Kind : uint8_t {
      wait,    // another holder's record is still valid: nothing to write this try
      create,  // the Lease is absent: POST `record`
      update,  // PUT `record` conditional on `resource_version`
    };
    Kind kind = Kind::wait;
    LeaseRecord record;
    std::string resource_version;
  };

  // After a GET: `current` is the Lease (nullopt: absent). Remembers a changed record and when
  // it was observed (`now`); seeing another holder's valid record ends our leadership at once.
  Decision decide(const std::optional<Lease>& current, MonoTime now, WallTime wall);
  // The write of decide()'s record took: `record` is what the server now holds. `tried` is
  // when the try began (before its GET): the others observe the record no earlier, so leading
  // until tried + renew_deadline ends before their view of the lease expires. A GET or write
  // that fails (409 included) changes nothing: leadership runs out at its deadline.
  void written(const LeaseRecord& record, MonoTime tried);
  // Whether we lead at `now`: our record was written less than renew_deadline ago (client-go's
  // renew loop gives up at the deadline, before the lease can expire for the others).
  bool leading(MonoTime now) const noexcept;
  // When leading() turns false unless renewed (a time in the past when not leading).
  MonoTime leading_until() const noexcept { return lead_until_; }
  // The record that hands the Lease over on a clean stop (client-go ReleaseOnCancel): no
  // holder, leaseDurationSeconds 1, transitions kept. Leadership ends here.
  LeaseRecord release(WallTime wall);

  const std::string& identity() const noexcept { return identity_; }
  // The holder of the last record observed ("" when none or released).
  const std::string& observed_holder() const noexcept { return observed_.holder; }

 private:
  std::string identity_;
  LeaseTiming timing_;
  LeaseRecord observed_;
  bool observed_any_ = false;
  MonoTime observed_at_{};
  MonoTime lead_until_{};
};

// The live set of node Leases (k8s-api.md §12.3): a node is live while its Lease has a holder
// and was observed to change less than its leaseDurationSeconds ago. Every node that sees the
// same Leases computes the same set (up to one observation period).
class LivenessTracker {
 public:
  // The complete current list of node Leases, seen at `now` (a Lease missing from it is gone).
  void observe(const std::vector<Lease>& leases, MonoTime now);
  // The holders of live Leases, sorted and unique.
  std::vector<std::string> live(MonoTime now) const;

 private:
  struct Seen {
    LeaseRecord record;
    MonoTime at;
  };
  std::map<std::string, Seen> seen_;  // by Lease name
};

}  // namespace magline::k8s
