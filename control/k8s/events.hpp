// Which Events the provider writes about Services (events.k8s.io/v1, k8s-api.md §12.4), and
// when: the decisions of an event recorder, without the recorder's I/O. Pure: the caller passes
// the time in; control/k8s_client/event_writer.hpp makes the writes, control/provider_events.hpp
// runs the two on a thread of their own.
//
// - The same (Service, reason, note) seen again within `isolation` of its last sighting is one
//   Event: its series (count, lastObservedTime) grows, as client-go's tools/events EventSeries
//   does; later than that, it starts a new Event.
// - An Event is written at most once per `min_interval`: created at once, its series patched
//   no sooner than `min_interval` after its previous write, with every repeat seen meanwhile.
// - A new Event takes a token from a global bucket (`burst`, refilled at `per_second`); without
//   one it is dropped and counted. A series write waits for a token instead (nothing is lost).
// - A write that fails is given up, never retried: the next repeat starts a new Event.
// - At most `capacity` Events are remembered; beyond, the least recently seen is forgotten.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "control/k8s/micro_time.hpp"

namespace magline::k8s {

using EventClock = std::chrono::system_clock;  // eventTime is wall time

// The Service an Event is about (its `regarding`, apiVersion v1, kind Service).
struct EventRegarding {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
};

struct EventSpec {
  EventRegarding regarding;
  bool warning = false;  // type Warning, else Normal
  std::string reason;    // CamelCase, machine-readable: IPAllocated, PoolExhausted, ...
  std::string action;    // what the provider did or tried: Allocate, Release
  std::string note;      // one line for people (kubectl describe); at most 1024 bytes written
};

// One write to make: create the Event, or patch its series.
struct EventWrite {
  enum class Kind : uint8_t { create, series };
  Kind kind = Kind::create;
  std::string name;  // metadata.name: "<service>.<hex>", as client-go names them
  EventSpec spec;
  EventClock::time_point first;  // eventTime
  uint32_t count = 1;            // series.count (a series write: 2 or more)
  EventClock::time_point last;   // series.lastObservedTime
};

struct EventOptions {
  std::chrono::milliseconds isolation = std::chrono::minutes(6);  // client-go's
  std::chrono::milliseconds min_interval = std::chrono::seconds(30);
  uint32_t burst = 25;
  double per_second = 1.0;
  size_t capacity = 4096;
};

struct EventBookCounts {
  uint64_t observed = 0;  // occurrences recorded
  uint64_t repeats = 0;   // of them, folded into an earlier Event's series
  uint64_t dropped = 0;   // new Events dropped for want of a token
  uint64_t written = 0;   // writes that took
  uint64_t failed = 0;    // writes that failed (given up)
};

class EventBook {
 public:
  explicit EventBook(EventOptions options = {});

  enum class Seen : uint8_t { fresh, repeat, dropped };
  // Something happened to a Service at `now`.
  Seen observe(const EventSpec& e, EventClock::time_point now);
  // The writes due at `now` (each marked in flight until written() answers for it), and the
  // Events no longer worth remembering forgotten.
  std::vector<EventWrite> due(EventClock::time_point now);
  // How the write of Event `name` in namespace `ns` ended. A failure forgets the Event (no
  // retry).
  void written(const std::string& ns, const std::string& name, bool ok);

  const EventBookCounts& counts() const noexcept { return counts_; }
  size_t size() const noexcept { return records_.size(); }

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string>;  // ns/name, uid,
                                                                               // reason, note
  struct Record {
    EventWrite event;            // as it stands: count and last grow with repeats
    uint32_t written_count = 0;  // the count the server has; 0: not created yet
    uint32_t writing_count = 0;  // the count of the write in flight
    bool in_flight = false;
    EventClock::time_point last_write;
  };
  bool take_token(EventClock::time_point now);
  std::string name_for(const EventSpec& e, EventClock::time_point now);
  void forget(std::map<Key, Record>::iterator it);
  void evict_one();

  EventOptions options_;
  std::map<Key, Record> records_;
  std::map<std::string, Key> by_name_;
  double tokens_;
  EventClock::time_point refilled_{};
  EventBookCounts counts_;
};


}  // namespace magline::k8s
