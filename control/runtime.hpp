// `magline run`: sets up DPDK from the configuration, launches one worker per worker core, and
// runs the control thread on the main core until SIGTERM or SIGINT (or --duration).
//
// The control thread owns everything the workers read: it publishes services through each
// worker's update ring and frees replaced ones after two QSBR grace periods (one for the workers
// to apply the update, one for them to be past using what it replaced); it runs the slow path
// (ARP, NDP, neighbour resolution) for the frames workers hand over; on SIGHUP it reloads the
// configuration's services, or refuses a bad file with one line and keeps running.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "control/log.hpp"

namespace magline::control {

struct RunOptions {
  std::optional<std::string> config_path;  // none: the embedded default
  double duration_s = 0;                   // > 0: stop after this long (finite; the CLI checks)
  std::string stats_path;                  // non-empty: write the final counters (JSON) there
  LogFormat log_format = LogFormat::text;  // of the lines on `err` (control/log.hpp)
  LogLevel log_level = LogLevel::info;     // lines below it are not written
};

// Returns the process exit status.
int run(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace magline::control
