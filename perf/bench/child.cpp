#include "perf/bench/child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace magline::bench {

std::string Child::spawn(const std::vector<std::string>& argv, const std::string& log,
                         const std::string& eal_prefix) {
  prefix_ = eal_prefix;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot write " + log;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    ::close(fd);
    return "fork failed";
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int null = ::open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  ::close(fd);
  pid_ = pid;
  return {};
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    status_ = status;
    cleanup();
    return false;
  }
  return true;
}

int Child::exit_status() const noexcept {
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

bool Child::stop(int sig, double seconds) {
  if (!running()) return true;
  ::kill(pid_, sig);
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (!running()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill_now();
  return false;
}

void Child::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

uint64_t Child::peak_rss() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

void Child::kill_now() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    status_ = status;
    pid_ = -1;
  }
  cleanup();
}

void Child::cleanup() {
  if (prefix_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all("/var/run/dpdk/" + prefix_, ignored);
  prefix_.clear();
}

}  // namespace magline::bench
