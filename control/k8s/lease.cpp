#include "control/k8s/lease.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

namespace magline::k8s {

namespace {

using nlohmann::json;

std::string text(const json& o, const char* key) {
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int32_t int32(const json& o, const char* key) {
  const auto it = o.find(key);
  if (it == o.end() || !it->is_number_integer()) return 0;
  return static_cast<int32_t>(std::clamp<int64_t>(it->get<int64_t>(), INT32_MIN, INT32_MAX));
}

// The Lease holds whole seconds; a duration that is not one is rounded up, never down (a record
// that says less than we mean would let others take over early).
int32_t whole_seconds(std::chrono::milliseconds d) {
  return static_cast<int32_t>(std::max<int64_t>(1, (d.count() + 999) / 1000));
}

}  // namespace

bool lease_name_ok(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  char prev = '.';
  for (const char c : name) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.') return false;
    if (c == '.' && prev == '-') return false;  // a label ends with a letter or digit
    if ((c == '.' || c == '-') && prev == '.') return false;  // and starts with one
    prev = c;
  }
  return prev != '.' && prev != '-';
}

Result<Lease> decode_lease(const json& j) {
  if (!j.is_object()) return Error{"a Lease must be an object"};
  const auto meta = j.find("metadata");
  if (meta == j.end() || !meta->is_object() || text(*meta, "name").empty()) {
    return Error{"a Lease must have metadata.name"};
  }
  Lease l;
  l.ns = text(*meta, "namespace");
  l.name = text(*meta, "name");
  l.resource_version = text(*meta, "resourceVersion");
  if (const auto labels = meta->find("labels"); labels != meta->end() && labels->is_object()) {
    for (const auto& [k, v] : labels->items()) {
      if (v.is_string()) l.labels.emplace(k, v.get<std::string>());
    }
  }
  if (const auto spec = j.find("spec"); spec != j.end() && spec->is_object()) {
    l.record.holder = text(*spec, "holderIdentity");
    l.record.duration_s = int32(*spec, "leaseDurationSeconds");
    l.record.acquire_time = text(*spec, "acquireTime");
    l.record.renew_time = text(*spec, "renewTime");
    l.record.transitions = int32(*spec, "leaseTransitions");
  }
  return l;
}

json lease_body(const Lease& lease) {
  json meta = {{"name", lease.name}, {"namespace", lease.ns}};
  if (!lease.resource_version.empty()) meta["resourceVersion"] = lease.resource_version;
  if (!lease.labels.empty()) meta["labels"] = lease.labels;
  json spec = {{"holderIdentity", lease.record.holder},
               {"leaseDurationSeconds", lease.record.duration_s},
               {"leaseTransitions", lease.record.transitions}};
  if (!lease.record.acquire_time.empty()) spec["acquireTime"] = lease.record.acquire_time;
  if (!lease.record.renew_time.empty()) spec["renewTime"] = lease.record.renew_time;
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", std::move(meta)},
          {"spec", std::move(spec)}};
}

LeaseElector::LeaseElector(std::string identity, LeaseTiming timing)
    : identity_(std::move(identity)), timing_(timing) {}

LeaseElector::Decision LeaseElector::decide(const std::optional<Lease>& current, MonoTime now,
                                            WallTime wall) {
  Decision d;
  const std::string stamp = micro_time(wall);
  if (!current) {
    d.kind = Decision::Kind::create;
    d.record = {identity_, whole_seconds(timing_.duration), stamp, stamp, 0};
    return d;
  }
  const LeaseRecord& old = current->record;
  if (!observed_any_ || !(old == observed_)) {
    observed_ = old;
    observed_any_ = true;
    observed_at_ = now;
  }
  const bool ours = old.holder == identity_;
  const bool valid = now < observed_at_ + std::chrono::seconds(old.duration_s);
  if (!old.holder.empty() && !ours && valid) {
    lead_until_ = {};  // another holds it: whatever we believed, we do not lead
    d.kind = Decision::Kind::wait;
    return d;
  }
  d.kind = Decision::Kind::update;
  d.resource_version = current->resource_version;
  d.record = {identity_, whole_seconds(timing_.duration), stamp, stamp, old.transitions};
  if (ours) {
    d.record.acquire_time = old.acquire_time;  // renewing: still the same term
  } else {
    d.record.transitions = old.transitions + 1;  // taking over (released or expired)
  }
  return d;
}

void LeaseElector::written(const LeaseRecord& record, MonoTime tried) {
  observed_ = record;
  observed_any_ = true;
  observed_at_ = tried;
  lead_until_ = tried + timing_.renew_deadline;
}

bool LeaseElector::leading(MonoTime now) const noexcept {
  return now < lead_until_;
}

LeaseRecord LeaseElector::release(WallTime wall) {
  lead_until_ = {};
  const std::string stamp = micro_time(wall);
  return {"", 1, stamp, stamp, observed_.transitions};
}

void LivenessTracker::observe(const std::vector<Lease>& leases, MonoTime now) {
  std::map<std::string, Seen> next;
  for (const Lease& l : leases) {
    const auto it = seen_.find(l.name);
    if (it != seen_.end() && it->second.record == l.record) {
      next.emplace(l.name, it->second);  // unchanged: its age runs on
    } else {
      next.emplace(l.name, Seen{l.record, now});
    }
  }
  seen_ = std::move(next);
}

std::vector<std::string> LivenessTracker::live(MonoTime now) const {
  std::set<std::string> out;
  for (const auto& [name, s] : seen_) {
    if (!s.record.holder.empty() && now < s.at + std::chrono::seconds(s.record.duration_s)) {
      out.insert(s.record.holder);
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace magline::k8s
