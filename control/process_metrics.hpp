// The process's own resources, as the Prometheus client libraries report them (process_*): read
// from /proc/self at each scrape. Linux only.
#pragma once

#include <cstdint>
#include <string_view>

#include "control/exposition.hpp"
#include "dataplane/result.hpp"

namespace magline::control {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;           // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // since the Unix epoch
};

// /proc/self/stat's text (proc(5)): utime, stime, starttime, vsize, rss. `boot_time_s` is
// /proc/stat's btime. Errors: text that is not a stat line. Pure.
Result<ProcessStats> parse_proc_stat(std::string_view stat, uint64_t boot_time_s,
                                     uint64_t ticks_per_second, uint64_t page_size);

// This process now. Errors: /proc unreadable.
Result<ProcessStats> read_process_stats();

void process_metrics(Exposition& e, const ProcessStats& p);

}  // namespace magline::control
