// The DPDK Environment Abstraction Layer, initialised once per process.
//
// rte_eal_init() can succeed only once in a process: after rte_eal_cleanup() the EAL cannot be
// initialised again (DPDK keeps "run once" state), so there is at most one EalSession per
// process, for the process's lifetime. Every other magline::dpdk object that touches EAL memory
// (ports, mempools) must be destroyed before the session.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/result.hpp"

namespace magline::dpdk {

// Where DPDK's log lines go instead of standard error: each line (without its newline) with its
// rte_log level (RTE_LOG_ERR 4, WARNING 5, NOTICE 6, INFO 7, DEBUG 8), from whichever thread
// logs, one line at a time. What rte_eal_init writes on success goes there too, as warnings (the
// EAL logs nothing below that: magline runs it with --log-level=warning). nullptr: standard
// error again. Set before EalSession::create and cleared after the session ends.
using LogWriter = std::function<void(uint32_t level, std::string_view line)>;
inline constexpr uint32_t kLogError = 4;  // RTE_LOG_ERR (and below: more severe)
inline constexpr uint32_t kLogWarning = 5;
inline constexpr uint32_t kLogDebug = 8;
void set_log_writer(LogWriter writer);

class EalSession {
 public:
  // Calls rte_eal_init with `args` (EAL options only, without the program name, which is added).
  // Call from the thread that will be the main lcore (usually main()); it blocks while the EAL
  // probes devices and maps memory. Errors: a second session in this process (live or ended),
  // or rte_eal_init's failure (rte_strerror(rte_errno), then what the EAL wrote to standard
  // error during the call, in one line). Nothing reaches standard output during the call (the
  // EAL prints its usage text there); what it writes to standard error reaches it after the
  // call, or only through the error.
  static Result<EalSession> create(const std::vector<std::string>& args);

  EalSession(EalSession&& other) noexcept
      : active_(other.active_), runtime_dir_(std::move(other.runtime_dir_)) {
    other.active_ = false;
  }
  EalSession& operator=(EalSession&&) = delete;
  EalSession(const EalSession&) = delete;
  EalSession& operator=(const EalSession&) = delete;

  // rte_eal_cleanup(): releases EAL memory and threads. From the thread that created it.
  ~EalSession();

  // The EAL runtime directory (/var/run/dpdk/PREFIX as root). The EAL leaves it behind, even
  // with --no-shconf; a test that used a private --file-prefix may remove it after the session.
  const std::string& runtime_dir() const noexcept { return runtime_dir_; }

 private:
  EalSession() = default;

  bool active_ = false;
  std::string runtime_dir_;
};

// rte_version(): "DPDK 22.11.4". Needs no EAL; any thread.
std::string version();

// rte_strerror(rte_errno) as a string, for error messages (after a failed DPDK call).
std::string last_error();
// rte_strerror(-rc) for DPDK calls that return a negative errno.
std::string error_text(int rc);

}  // namespace magline::dpdk
