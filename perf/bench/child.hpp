// A child process for magline-bench's cross-process runs (`magline run`, dpdk-testpmd), with
// its output in a log file. Killed (SIGKILL) if still running when the Child is destroyed; dies
// with the harness (PR_SET_PDEATHSIG). Its EAL runtime directory is removed when it ends.
// Main lcore only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace magline::bench {

class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill_now(); }

  // Starts argv[0] (searched in PATH) with stdin from /dev/null and stdout and stderr to `log`.
  // Returns an error, or empty.
  std::string spawn(const std::vector<std::string>& argv, const std::string& log,
                    const std::string& eal_prefix);
  pid_t pid() const noexcept { return pid_; }
  bool running();
  int exit_status() const noexcept;
  // `sig`, then up to `seconds` for it to exit, then SIGKILL. True if it exited by itself.
  bool stop(int sig, double seconds);
  void signal(int sig);
  // Peak resident memory (VmHWM), bytes; 0 if not running.
  uint64_t peak_rss() const;

 private:
  void kill_now();
  // --no-shconf leaves the (empty) runtime directory; a killed process may leave files in it.
  void cleanup();

  pid_t pid_ = -1;
  int status_ = 0;
  std::string prefix_;
};

}  // namespace magline::bench
