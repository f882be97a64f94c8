// What `magline run` tells its service manager, and when (the sending is sd_notify.hpp's):
//
//   READY=1     once: the ports and workers are up, the configuration's services are in effect
//               on every worker, and (with a kubernetes section) the first complete list of
//               Services and EndpointSlices has been translated and is in effect too
//   WATCHDOG=1  every half watchdog period ($WATCHDOG_USEC), but only while every worker
//               progresses: each publishes a copy of its counters about every 100 ms from its
//               loop (dataplane/worker.hpp, WorkerShare::version), so a worker whose copy has
//               not moved since the last ping is stuck (or its lcore returned) and the ping is
//               withheld: systemd then kills and restarts the process (WatchdogSec=,
//               Restart=on-failure). The pings come from the control thread's loop, so a stuck
//               control thread stops them too.
//   STOPPING=1  once, when SIGTERM or SIGINT (or --duration) ends the loop
//
// Pure: the clock and the workers' state come in as arguments; tests give their own `send`.
// Control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace magline::control {

class Supervision {
 public:
  using Send = std::function<void(const std::string& state)>;

  // `watchdog_usec`: systemd's watchdog period (none: no pings). `ready_status`: the STATUS=
  // line sent with READY=1. `log`: where a withheld watchdog is said, once per stall.
  Supervision(Send send, std::optional<uint64_t> watchdog_usec, std::string ready_status,
              std::ostream& log);

  struct Facts {
    bool ready = false;              // see READY=1 above
    std::vector<uint64_t> progress;  // each worker's WorkerShare::version()
    std::vector<bool> failed;        // each worker's lcore returned before it was told to stop
  };
  // One turn of the control loop.
  void turn(uint64_t now_ms, const Facts& facts);
  // When the loop ends; once.
  void stopping();

  bool ready_sent() const noexcept { return ready_sent_; }
  uint64_t pings() const noexcept { return pings_; }
  // The watchdog's interval in ms (half the period, at least 1), 0 without a watchdog.
  uint64_t interval_ms() const noexcept { return interval_ms_; }

 private:
  // The reason the ping is withheld (which worker, since when), or empty.
  std::string stalled(uint64_t now_ms, const Facts& facts) const;

  Send send_;
  uint64_t interval_ms_ = 0;
  std::string ready_status_;
  std::ostream& log_;
  bool ready_sent_ = false;
  bool stopping_sent_ = false;
  bool withholding_ = false;
  uint64_t pings_ = 0;
  std::optional<uint64_t> last_ping_ms_;
  std::vector<uint64_t> at_last_ping_;  // each worker's progress when the last ping went
};

}  // namespace magline::control
