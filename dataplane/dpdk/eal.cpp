#include "dataplane/dpdk/eal.hpp"

#include <fcntl.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>
#include <rte_version.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <string_view>

namespace magline::dpdk {
namespace {

// Set by the first create(), never cleared: the EAL cannot be initialised twice.
std::atomic<bool> g_eal_used{false};

// rte_eal_init permutes argv and keeps pointers into it (the syslog identifier), so the
// arguments live as long as the process: allocated once, never freed, reachable from here.
struct Argv {
  std::vector<std::string> strings;
  std::vector<char*> ptrs;
};
Argv* g_argv = nullptr;

// For rte_eal_init: it prints its usage text (about a hundred lines) on standard output when an
// argument is wrong, where `magline run` prints its JSON, and its reasons on standard error in
// several lines, some twice (getopt's, then its log's). During the call standard output goes to
// /dev/null and standard error into memory; after it, what was written to standard error goes
// there as it would have (success) or becomes the error's reason, in one line (failure).
class EalOutput {
 public:
  EalOutput() {
    std::fflush(stdout);
    std::fflush(stderr);
    saved_out_ = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
    saved_err_ = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
    const int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved_out_ >= 0 && null >= 0) dup2(null, STDOUT_FILENO);
    if (null >= 0) close(null);
    captured_ = memfd_create("magline-eal-stderr", MFD_CLOEXEC);
    if (saved_err_ >= 0 && captured_ >= 0) dup2(captured_, STDERR_FILENO);
  }
  ~EalOutput() { restore(); }
  EalOutput(const EalOutput&) = delete;
  EalOutput& operator=(const EalOutput&) = delete;

  // Puts standard output and error back; returns what was written to standard error meanwhile.
  std::string restore() {
    std::fflush(stdout);
    std::fflush(stderr);
    if (saved_out_ >= 0) {
      dup2(saved_out_, STDOUT_FILENO);
      close(saved_out_);
      saved_out_ = -1;
    }
    if (saved_err_ >= 0) {
      dup2(saved_err_, STDERR_FILENO);
      close(saved_err_);
      saved_err_ = -1;
    }
    std::string text;
    if (captured_ >= 0) {
      char buf[4096];
      ssize_t n = 0;
      off_t at = 0;
      while ((n = pread(captured_, buf, sizeof buf, at)) > 0) {
        text.append(buf, size_t(n));
        at += n;
      }
      close(captured_);
      captured_ = -1;
    }
    return text;
  }

 private:
  int saved_out_ = -1, saved_err_ = -1, captured_ = -1;
};

// DPDK's log stream when a LogWriter is set: a FILE whose writes are split into lines.
struct LogRoute {
  std::mutex mu;
  LogWriter writer;
  std::string partial;  // a line not yet ended
  FILE* file = nullptr;
};
LogRoute& log_route() {
  static LogRoute* route = new LogRoute;  // never freed: DPDK may log until the process ends
  return *route;
}

ssize_t write_log(void*, const char* data, size_t size) {
  LogRoute& r = log_route();
  const uint32_t level = uint32_t(rte_log_cur_msg_loglevel());
  std::lock_guard lock(r.mu);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] != '\n') {
      r.partial += data[i];
      continue;
    }
    if (r.writer) {
      r.writer(level, r.partial);
    } else {
      std::fprintf(stderr, "%s\n", r.partial.c_str());
    }
    r.partial.clear();
  }
  return ssize_t(size);
}

// Lines joined by "; ", each once ("EAL: lcore 5 unavailable; EAL: invalid core list ...").
std::string one_line(const std::string& text) {
  std::string out;
  std::set<std::string_view> seen;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r'))
      line.remove_suffix(1);
    if (!line.empty() && seen.insert(line).second) {
      if (!out.empty()) out += "; ";
      out += line;
    }
    start = end + 1;
  }
  return out;
}

}  // namespace

void set_log_writer(LogWriter writer) {
  LogRoute& r = log_route();
  FILE* stream = nullptr;  // DPDK's default: standard error
  {
    std::lock_guard lock(r.mu);
    r.writer = std::move(writer);
    if (r.writer && r.file == nullptr) {
      cookie_io_functions_t io{};
      io.write = write_log;
      r.file = fopencookie(nullptr, "w", io);
      if (r.file != nullptr) setvbuf(r.file, nullptr, _IOLBF, 0);
    }
    if (r.writer) stream = r.file;
  }
  // Outside the lock: write_log takes it while the stream's FILE lock is held.
  rte_openlog_stream(stream);
}

std::string version() {
  return rte_version();
}

std::string last_error() { return rte_strerror(rte_errno); }

std::string error_text(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

Result<EalSession> EalSession::create(const std::vector<std::string>& args) {
  if (g_eal_used.exchange(true)) {
    return Error{"the DPDK EAL was already initialised in this process (it cannot be twice)"};
  }
  g_argv = new Argv{{"magline"}, {}};
  g_argv->strings.insert(g_argv->strings.end(), args.begin(), args.end());
  for (auto& a : g_argv->strings) g_argv->ptrs.push_back(a.data());
  g_argv->ptrs.push_back(nullptr);
  EalOutput output;
  const int rc = rte_eal_init(int(g_argv->strings.size()), g_argv->ptrs.data());
  const std::string reason = rc < 0 ? last_error() : "";
  const std::string written = output.restore();
  if (rc < 0) {
    const std::string lines = one_line(written);
    return Error{"rte_eal_init failed: " + reason + (lines.empty() ? "" : " (" + lines + ")")};
  }
  {
    LogRoute& r = log_route();
    std::lock_guard lock(r.mu);
    if (r.writer) {
      size_t start = 0;
      while (start < written.size()) {
        size_t end = written.find('\n', start);
        if (end == std::string::npos) end = written.size();
        if (end > start) {
          r.writer(RTE_LOG_WARNING, std::string_view(written).substr(start, end - start));
        }
        start = end + 1;
      }
    } else {
      std::fputs(written.c_str(), stderr);
    }
  }
  EalSession s;
  s.active_ = true;
  s.runtime_dir_ = rte_eal_get_runtime_dir();
  return s;
}

EalSession::~EalSession() {
  if (active_) rte_eal_cleanup();
}

}  // namespace magline::dpdk
