#include "control/supervision.hpp"

#include <algorithm>

#include "control/log.hpp"

namespace magline::control {

Supervision::Supervision(Send send, std::optional<uint64_t> watchdog_usec, std::string ready_status,
                         std::ostream& log)
    : send_(std::move(send)),
      interval_ms_(watchdog_usec ? std::max<uint64_t>(1, *watchdog_usec / 2000) : 0),
      ready_status_(std::move(ready_status)),
      log_(log) {}

std::string Supervision::stalled(uint64_t now_ms, const Facts& facts) const {
  for (size_t w = 0; w < facts.progress.size(); ++w) {
    if (w < facts.failed.size() && facts.failed[w]) {
      return "worker " + std::to_string(w) + " has stopped (its lcore returned)";
    }
    // A worker that was not there at the last ping (none yet) counts as progressing.
    if (w < at_last_ping_.size() && facts.progress[w] == at_last_ping_[w]) {
      return "worker " + std::to_string(w) + " has made no progress for " +
             std::to_string(now_ms - *last_ping_ms_) + " ms";
    }
  }
  return {};
}

void Supervision::turn(uint64_t now_ms, const Facts& facts) {
  if (facts.ready && !ready_sent_ && !stopping_sent_) {
    send_("READY=1\nSTATUS=" + ready_status_);
    ready_sent_ = true;
  }
  if (interval_ms_ == 0 || stopping_sent_) return;
  if (last_ping_ms_ && now_ms < *last_ping_ms_ + interval_ms_) return;
  if (!last_ping_ms_) {
    // The first turn: nothing to compare with yet; the loop runs, so the workers were launched.
    at_last_ping_ = facts.progress;
    last_ping_ms_ = now_ms;
    if (std::find(facts.failed.begin(), facts.failed.end(), true) == facts.failed.end()) {
      send_("WATCHDOG=1");
      ++pings_;
    }
    return;
  }
  const std::string why = stalled(now_ms, facts);
  if (!why.empty()) {
    // Checked again every turn: a worker that moves on gets the ping sent at once.
    if (!withholding_) {
      log_ << log_warning << "magline: watchdog withheld: " << why << std::endl;
      send_("STATUS=watchdog withheld: " + why);
      withholding_ = true;
    }
    return;
  }
  if (withholding_) {
    log_ << "magline: watchdog resumed: every worker progresses again" << std::endl;
    send_("WATCHDOG=1\nSTATUS=" + (ready_sent_ ? ready_status_ : std::string("starting")));
    withholding_ = false;
  } else {
    send_("WATCHDOG=1");
  }
  ++pings_;
  at_last_ping_ = facts.progress;
  last_ping_ms_ = now_ms;
}

void Supervision::stopping() {
  if (stopping_sent_) return;
  stopping_sent_ = true;
  send_("STOPPING=1\nSTATUS=stopping");
}

}  // namespace magline::control
