// The global environment: one EAL per test process (the EAL cannot be initialised twice).
//
// --no-huge -m 256: no hugepages needed (and none left in /dev/hugepages); --no-shconf with a
// per-process --file-prefix: no shared config files and no clash with a parallel DPDK process
// (--in-memory is refused with --no-huge); --no-pci: no real NIC is touched; --no-telemetry: no
// socket. --lcores maps the main lcore, and worker lcores 1 and 2 (for the tests that launch
// workers), to every CPU this process may use, so the EAL pins no thread to one CPU. net_null0 comes
// from --vdev; the other devices are probed by the tests (Port::open with devargs).
#include "tests/integration/eal_env.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/port.hpp"

namespace magline::test {
namespace {

std::string allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return "0";
  std::string list;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    if (!list.empty()) list += ',';
    list += std::to_string(c);
  }
  return list.empty() ? "0" : list;
}

// Where the EAL puts its runtime directories (eal_get_runtime_dir's rule in DPDK 22.11).
std::filesystem::path runtime_parent() {
  if (getuid() == 0) return "/var/run/dpdk";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  return std::filesystem::path(xdg != nullptr ? xdg : "/tmp") / "dpdk";
}

class EalEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    char dir_template[] = "/tmp/magline-it-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    temp_dir_ = dir_template;
    const std::string prefix = "magline-it-" + std::to_string(getpid());
    // The runtime directory's parent (/var/run/dpdk as root) is removed at the end only if this
    // process created it.
    parent_existed_ = std::filesystem::exists(runtime_parent());
    const std::vector<std::string> args = {
        "--no-huge", "-m", "256", "--no-shconf", "--no-pci", "--no-telemetry",
        "--log-level=*:warning", "--file-prefix=" + prefix,
        "--lcores=0@(" + allowed_cpus() + "),1@(" + allowed_cpus() + "),2@(" + allowed_cpus() +
            ")",
        "--vdev=net_null0"};
    auto eal = dpdk::EalSession::create(args);
    ASSERT_TRUE(eal.ok()) << eal.error().message;
    eal_.emplace(std::move(eal).value());
    auto pool = dpdk::PktPool::create("magline_test_pool", kTestPoolSize, 0);
    ASSERT_TRUE(pool.ok()) << pool.error().message;
    pool_.emplace(std::move(pool).value());
  }

  void TearDown() override {
    if (pool_) {
      EXPECT_EQ(pool_->available(), kTestPoolSize) << "mbufs leaked by the tests";
    }
    pool_.reset();
    if (eal_) {
      const std::string runtime_dir = eal_->runtime_dir();
      eal_.reset();
      // The EAL leaves its (empty, with --no-shconf) runtime directory behind.
      std::error_code ec;
      std::filesystem::remove(runtime_dir, ec);
      const auto parent = std::filesystem::path(runtime_dir).parent_path();
      if (!parent_existed_ && std::filesystem::is_empty(parent, ec)) {
        std::filesystem::remove(parent, ec);
      }
    }
    std::error_code ec;
    if (!temp_dir_.empty()) std::filesystem::remove_all(temp_dir_, ec);
  }

  rte_mempool* pool() const { return pool_ ? pool_->get() : nullptr; }
  const std::string& dir() const { return temp_dir_; }

 private:
  std::optional<dpdk::EalSession> eal_;
  std::optional<dpdk::PktPool> pool_;
  std::string temp_dir_;
  bool parent_existed_ = true;
};

EalEnvironment* const g_env =
    static_cast<EalEnvironment*>(::testing::AddGlobalTestEnvironment(new EalEnvironment));

}  // namespace

rte_mempool* test_pool() { return g_env->pool(); }
const std::string& temp_dir() { return g_env->dir(); }

}  // namespace magline::test
