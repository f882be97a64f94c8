#include "dataplane/dpdk/eal.hpp"

#include <rte_eal.h>
#include <rte_errno.h>

#include <atomic>

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

}  // namespace

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
  if (rte_eal_init(int(g_argv->strings.size()), g_argv->ptrs.data()) < 0) {
    return Error{"rte_eal_init failed: " + last_error()};
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
