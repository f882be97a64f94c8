#include "control/k8s/events.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace magline::k8s {

EventBook::EventBook(EventOptions options) : options_(options), tokens_(double(options.burst)) {}

bool EventBook::take_token(EventClock::time_point now) {
  if (refilled_ == EventClock::time_point{}) refilled_ = now;  // the bucket starts full
  if (now > refilled_) {
    const double seconds = std::chrono::duration<double>(now - refilled_).count();
    tokens_ = std::min(double(options_.burst), tokens_ + seconds * options_.per_second);
    refilled_ = now;
  }
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

// client-go's "<name>.<unix nanoseconds in hex>", made unique among the Events remembered (two
// of one Service in one nanosecond, as an injected clock gives).
std::string EventBook::name_for(const EventSpec& e, EventClock::time_point now) {
  auto nanos = uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count());
  while (true) {
    char hex[20];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(nanos));
    std::string name = e.regarding.name + "." + hex;
    if (!by_name_.count(e.regarding.ns + "/" + name)) return name;
    ++nanos;
  }
}

void EventBook::forget(std::map<Key, Record>::iterator it) {
  by_name_.erase(it->second.event.spec.regarding.ns + "/" + it->second.event.name);
  records_.erase(it);
}

void EventBook::evict_one() {
  auto oldest = records_.end();
  for (auto it = records_.begin(); it != records_.end(); ++it) {
    if (it->second.in_flight) continue;
    if (oldest == records_.end() || it->second.event.last < oldest->second.event.last) oldest = it;
  }
  if (oldest != records_.end()) forget(oldest);
}

EventBook::Seen EventBook::observe(const EventSpec& e, EventClock::time_point now) {
  ++counts_.observed;
  const Key key{e.regarding.ns + "/" + e.regarding.name, e.regarding.uid, e.reason, e.note};
  auto it = records_.find(key);
  if (it != records_.end() && now - it->second.event.last <= options_.isolation) {
    Record& r = it->second;
    ++r.event.count;
    r.event.last = std::max(r.event.last, now);
    ++counts_.repeats;
    return Seen::repeat;
  }
  if (!take_token(now)) {
    ++counts_.dropped;
    return Seen::dropped;
  }
  // Isolated: a new Event; the old one is done with (a write of it in flight then finds
  // nothing to update).
  if (it != records_.end()) forget(it);
  if (records_.size() >= options_.capacity) evict_one();
  Record r;
  r.event.kind = EventWrite::Kind::create;
  r.event.name = name_for(e, now);
  r.event.spec = e;
  r.event.first = now;
  r.event.last = now;
  r.event.count = 1;
  by_name_[e.regarding.ns + "/" + r.event.name] = key;
  records_.emplace(key, std::move(r));
  return Seen::fresh;
}

std::vector<EventWrite> EventBook::due(EventClock::time_point now) {
  std::vector<EventWrite> out;
  for (auto it = records_.begin(); it != records_.end();) {
    Record& r = it->second;
    const bool settled = r.written_count != 0 && r.written_count == r.event.count;
    if (!r.in_flight && settled && now - r.event.last > options_.isolation) {
      auto next = std::next(it);
      forget(it);
      it = next;
      continue;
    }
    const bool create = r.written_count == 0;
    const bool series =
        !create && r.event.count > r.written_count && now - r.last_write >= options_.min_interval;
    if (!r.in_flight && (create || (series && take_token(now)))) {
      EventWrite w = r.event;
      w.kind = create ? EventWrite::Kind::create : EventWrite::Kind::series;
      r.in_flight = true;
      r.writing_count = r.event.count;
      r.last_write = now;
      out.push_back(std::move(w));
    }
    ++it;
  }
  return out;
}

void EventBook::written(const std::string& ns, const std::string& name, bool ok) {
  const auto n = by_name_.find(ns + "/" + name);
  if (ok) {
    ++counts_.written;
  } else {
    ++counts_.failed;
  }
  if (n == by_name_.end()) return;  // replaced meanwhile
  const auto it = records_.find(n->second);
  if (it == records_.end()) return;
  Record& r = it->second;
  r.in_flight = false;
  if (!ok) {
    forget(it);
    return;
  }
  r.written_count = r.writing_count;
}

}  // namespace magline::k8s
