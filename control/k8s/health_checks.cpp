#include "control/k8s/health_checks.hpp"

#include <algorithm>

namespace magline::k8s {

std::string_view verdict_name(Verdict v) noexcept {
  switch (v) {
    case Verdict::healthy:
      return "healthy";
    case Verdict::unhealthy:
      return "unhealthy";
    case Verdict::unknown:
      break;
  }
  return "unknown";
}

bool Damper::record(bool pass, uint32_t healthy_threshold, uint32_t unhealthy_threshold) noexcept {
  streak_ = (streak_ > 0 && pass == last_pass_) ? streak_ + 1 : 1;
  last_pass_ = pass;
  const Verdict before = verdict_;
  if (verdict_ == Verdict::unknown) {
    verdict_ = pass ? Verdict::healthy : Verdict::unhealthy;
  } else if (verdict_ == Verdict::healthy && !pass &&
             streak_ >= std::max<uint32_t>(unhealthy_threshold, 1)) {
    verdict_ = Verdict::unhealthy;
  } else if (verdict_ == Verdict::unhealthy && pass &&
             streak_ >= std::max<uint32_t>(healthy_threshold, 1)) {
    verdict_ = Verdict::healthy;
  }
  return verdict_ != before;
}

HealthBook::HealthBook(HealthCheckParams params, uint64_t seed) : params_(params), rng_(seed) {}

// splitmix64 (Steele, Lea, Flood 2014): enough for jitter, and the same on every platform.
uint64_t HealthBook::random() noexcept {
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::chrono::nanoseconds HealthBook::gap(bool first) {
  const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(params_.interval);
  const int64_t n = interval.count();
  // first: [n/2, n]; later: [n - n/10, n + n/10].
  const int64_t lo = first ? n / 2 : n - n / 10;
  const int64_t width = first ? n - n / 2 : 2 * (n / 10);
  return std::chrono::nanoseconds(lo + int64_t(random() % uint64_t(width + 1)));
}

void HealthBook::schedule(Targets::iterator it, HealthClock::time_point due) {
  it->second.due = due;
  queue_.emplace(std::make_pair(due, it->second.ticket), it);
}

void HealthBook::unschedule(Targets::iterator it) {
  if (!it->second.in_flight) queue_.erase({it->second.due, it->second.ticket});
}

std::pair<size_t, size_t> HealthBook::set_targets(const std::vector<HealthTarget>& targets,
                                                  HealthClock::time_point now) {
  ++pass_;
  size_t added = 0, removed = 0, listed = 0;  // listed: distinct targets in `targets`
  for (const HealthTarget& t : targets) {
    auto it = targets_.find(KeyView{t.service, t.node});
    if (it != targets_.end() && it->second.target == t) {
      listed += it->second.seen != pass_;
      it->second.seen = pass_;
      continue;
    }
    if (it != targets_.end()) {  // a new address or port: a new target
      listed -= it->second.seen == pass_;
      unschedule(it);
      by_ticket_.erase(it->second.ticket);
      targets_.erase(it);
      ++removed;
    }
    it = targets_.emplace(Key{t.service, t.node}, Entry{}).first;
    Entry& e = it->second;
    e.target = t;
    e.ticket = next_ticket_++;
    e.seen = pass_;
    by_ticket_.emplace(e.ticket, it);
    schedule(it, now);
    ++added;
    ++listed;
  }
  if (targets_.size() != listed) {  // something was left out: sweep
    for (auto it = targets_.begin(); it != targets_.end();) {
      if (it->second.seen == pass_) {
        ++it;
        continue;
      }
      unschedule(it);
      by_ticket_.erase(it->second.ticket);
      it = targets_.erase(it);
      ++removed;
    }
  }
  return {added, removed};
}

std::vector<HealthBook::Probe> HealthBook::take_due(HealthClock::time_point now, size_t limit) {
  std::vector<Probe> out;
  while (out.size() < limit && !queue_.empty() && queue_.begin()->first.first <= now) {
    const Targets::iterator it = queue_.begin()->second;
    queue_.erase(queue_.begin());
    it->second.in_flight = true;
    it->second.started = now;
    out.push_back({it->second.ticket, it->second.target});
  }
  return out;
}

std::optional<HealthClock::time_point> HealthBook::next_due() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.begin()->first.first;
}

bool HealthBook::record(uint64_t ticket, const ProbeResult& result, HealthClock::time_point now,
                        std::chrono::system_clock::time_point wall) {
  const auto found = by_ticket_.find(ticket);
  if (found == by_ticket_.end()) return false;
  const Targets::iterator it = found->second;
  Entry& e = it->second;
  if (!e.in_flight) return false;  // recorded twice: the first one counted
  (result.pass ? counts_.passes : counts_.failures)++;
  e.in_flight = false;
  e.last = result;
  e.last_probe = wall;
  const bool changed =
      e.damper.record(result.pass, params_.healthy_threshold, params_.unhealthy_threshold);
  // From the start, to keep the cadence; never in the past when probes queued for a slot.
  schedule(it, std::max(now, e.started + gap(!e.probed)));
  e.probed = true;
  if (changed) {
    ++generation_;
    ++counts_.verdict_changes;
  }
  return changed;
}

std::optional<bool> HealthBook::healthy(std::string_view service, std::string_view node) const {
  const auto it = targets_.find(KeyView{service, node});
  if (it == targets_.end() || it->second.damper.verdict() == Verdict::unknown) return std::nullopt;
  return it->second.damper.verdict() == Verdict::healthy;
}

std::vector<HealthBook::TargetState> HealthBook::snapshot() const {
  std::vector<TargetState> out;
  out.reserve(targets_.size());
  for (const auto& [key, e] : targets_) {
    out.push_back({e.target, e.damper.verdict(), e.damper.streak(), e.last, e.last_probe});
  }
  return out;
}

}  // namespace magline::k8s
