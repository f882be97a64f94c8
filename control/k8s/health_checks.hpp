// Health checks of node targets (externalTrafficPolicy: Local in node-target mode, docs/k8s.md
// "Health checks of node targets"): which targets there are, when each is probed next, and the
// damped verdict each probe result leads to. Pure: no sockets, no threads, the clock passed in;
// control/node_prober.hpp does the probing and owns the locking.
//
// Damping, as cloud load balancers and HAProxy (rise/fall) do it: a target's first result
// decides its verdict directly (there is nothing to damp yet); after that, a healthy target turns
// unhealthy after `unhealthy_threshold` consecutive failures and an unhealthy one healthy after
// `healthy_threshold` consecutive passes. A single lost probe never moves a node in or out of a
// Maglev table.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/addr.hpp"

namespace magline::k8s {

using HealthClock = std::chrono::steady_clock;

// One node of one Service, probed at the node's address and the Service's healthCheckNodePort.
// (service, node) names it; a new address or port for the same pair is a new target.
struct HealthTarget {
  std::string service;  // "namespace/name"
  std::string node;     // the Node's name
  dp::IpAddr address;
  uint16_t port = 0;

  friend bool operator==(const HealthTarget&, const HealthTarget&) = default;
};

// Defaults and their reasons: docs/k8s.md. config/ checks the ranges (timeout below interval,
// thresholds 1..10).
struct HealthCheckParams {
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{2000};  // connect + request + status line
  uint32_t healthy_threshold = 2;
  uint32_t unhealthy_threshold = 3;
  uint32_t max_in_flight = 256;  // the prober's; the book does not use it
};

enum class Verdict : uint8_t { unknown, healthy, unhealthy };
std::string_view verdict_name(Verdict v) noexcept;  // "unknown", "healthy", "unhealthy"

// What one probe found. `reason`: the status code ("200", "503") or what went wrong
// ("timeout", "connection refused", "malformed status line", ...).
struct ProbeResult {
  bool pass = false;
  std::string reason;
};

// Consecutive results and the verdict they lead to, for one target.
class Damper {
 public:
  // Takes one result; returns whether the verdict changed (unknown to anything counts).
  // Thresholds of 0 are taken as 1.
  bool record(bool pass, uint32_t healthy_threshold, uint32_t unhealthy_threshold) noexcept;
  Verdict verdict() const noexcept { return verdict_; }
  // How many results in a row were the same as the latest (0 before any).
  uint32_t streak() const noexcept { return streak_; }

 private:
  Verdict verdict_ = Verdict::unknown;
  bool last_pass_ = false;
  uint32_t streak_ = 0;
};

// Every target's damper and schedule. New targets are due at once. After a probe that started
// at S, the next is due at S + gap: the first gap is drawn from [interval/2, interval], the later
// ones from interval ± 10%, so targets that arrived together (a restart, a new Service on every
// node) spread over the interval within a round or two and never fire together again.
//
// Not thread-safe: one caller at a time (the prober holds a mutex).
class HealthBook {
 public:
  HealthBook(HealthCheckParams params, uint64_t seed);

  // Replaces the set of targets. A target that stays (same service, node, address and port)
  // keeps its verdict, counts and schedule; a new one is due at `now`; a removed one is
  // forgotten (its probe in flight, if any, is ignored when it ends). Cost: a lookup per
  // target, plus schedule work and allocation only for what was added or removed. Duplicate
  // (service, node) pairs: the last one counts. Returns how many targets were added and removed.
  std::pair<size_t, size_t> set_targets(const std::vector<HealthTarget>& targets,
                                        HealthClock::time_point now);

  // A probe to start: the target and a ticket that gives its result back.
  struct Probe {
    uint64_t ticket = 0;
    HealthTarget target;
  };
  // Up to `limit` targets due at `now`, earliest first, taken out of the schedule until their
  // result is recorded (a target has one probe in flight at most).
  std::vector<Probe> take_due(HealthClock::time_point now, size_t limit);
  // When the earliest target not in flight is due; std::nullopt when there is none.
  std::optional<HealthClock::time_point> next_due() const;

  // A probe's result, at `now` (`wall`: the same moment for humans). Schedules the target's
  // next probe and returns whether its verdict changed. A ticket whose target was removed or
  // replaced meanwhile is ignored (false).
  bool record(uint64_t ticket, const ProbeResult& result, HealthClock::time_point now,
              std::chrono::system_clock::time_point wall);

  // nullopt: no such target, or no result yet.
  std::optional<bool> healthy(std::string_view service, std::string_view node) const;
  // Moves only when some target's verdict changes (so a caller re-translates only then).
  uint64_t generation() const noexcept { return generation_; }

  struct TargetState {
    HealthTarget target;
    Verdict verdict = Verdict::unknown;
    uint32_t streak = 0;  // consecutive results like the last one
    std::optional<ProbeResult> last;
    std::optional<std::chrono::system_clock::time_point> last_probe;  // when it ended
  };
  // Every target, by service then node.
  std::vector<TargetState> snapshot() const;

  struct Counts {
    uint64_t passes = 0;
    uint64_t failures = 0;
    uint64_t verdict_changes = 0;  // unknown to a verdict included
  };
  const Counts& counts() const noexcept { return counts_; }
  size_t size() const noexcept { return targets_.size(); }

 private:
  using Key = std::pair<std::string, std::string>;  // (service, node)
  struct Entry {
    HealthTarget target;
    uint64_t ticket = 0;  // this incarnation's; a replaced target gets a new one
    bool in_flight = false;
    bool probed = false;  // a result came in: later gaps are interval ± 10%
    HealthClock::time_point due;
    HealthClock::time_point started;
    uint64_t seen = 0;  // set_targets' pass that last listed it
    Damper damper;
    std::optional<ProbeResult> last;
    std::optional<std::chrono::system_clock::time_point> last_probe;
  };
  using KeyView = std::pair<std::string_view, std::string_view>;
  struct KeyLess {  // lookups by string_view, without building strings
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return KeyView(a.first, a.second) < KeyView(b.first, b.second);
    }
  };
  using Targets = std::map<Key, Entry, KeyLess>;

  void schedule(Targets::iterator it, HealthClock::time_point due);
  void unschedule(Targets::iterator it);
  std::chrono::nanoseconds gap(bool first);
  uint64_t random() noexcept;

  HealthCheckParams params_;
  uint64_t rng_;
  Targets targets_;
  std::map<uint64_t, Targets::iterator> by_ticket_;
  std::map<std::pair<HealthClock::time_point, uint64_t>, Targets::iterator> queue_;
  uint64_t next_ticket_ = 1;
  uint64_t pass_ = 0;
  uint64_t generation_ = 0;
  Counts counts_;
};

}  // namespace magline::k8s
