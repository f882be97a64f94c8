// The BIRD control-socket client (control/bird_client.hpp) against the real daemon, BIRD 2 at
// /usr/sbin/bird: the protocols it reports, a reconfiguration taken, one refused (BIRD keeps
// its previous configuration), the configuration shapes Magline generates (a community on a
// static route, an include inside a protocol block, a BGP export of one protocol's routes with
// a next hop), and a BIRD gone.
//
// Each test starts its own BIRD in the foreground (-f, a child of the test: killed in TearDown,
// and by the kernel if the test dies, PR_SET_PDEATHSIG) on a configuration and a control socket
// in a temporary directory. The binary runs in a network namespace of its own, unshared in
// main() as in kernel_tap_test.cpp, so BIRD sees no interface of the machine and its BGP
// neighbour, with no route to it, never comes up. Every test is skipped without /usr/sbin/bird
// or without a namespace. Addresses: 198.18.0.0/15 (RFC 2544).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/bird_client.hpp"
#include "tests/support/own_netns.hpp"

using namespace magline;
using namespace std::chrono_literals;
using control::BirdClient;
using control::BirdProtocol;
using control::BirdReply;

namespace {

constexpr char kBird[] = "/usr/sbin/bird";

// Why the tests cannot run here, or "" when main() made the namespace and BIRD is installed.
std::string g_skip = "main() did not run";

#define REQUIRE_BIRD() \
  if (!g_skip.empty()) GTEST_SKIP() << g_skip

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// `routes`: the static protocol's routes, one statement a line.
std::string bird_conf(const std::string& dir, const std::string& routes) {
  return "log \"" + dir + "/bird.log\" all;\n" +
         "router id 198.18.0.1;\n"
         "protocol device {}\n"
         "protocol static static_vips {\n"
         "  ipv4;\n" +
         routes +
         "}\n"
         "protocol bgp peer1 {\n"
         "  local as 65001;\n"
         "  neighbor 198.18.0.254 as 65000;\n"
         "  ipv4 { import none; export where proto = \"static_vips\"; };\n"
         "}\n";
}

const std::string kRoute1 = "  route 198.18.100.1/32 blackhole;\n";
const std::string kRoute2 = "  route 198.18.100.2/32 blackhole;\n";

std::string error_of(const Result<void>& r) {
  return r.ok() ? "" : r.error().message;
}

// Polls `done` until it holds or `limit` passes; whether it held.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

const BirdProtocol* find(const std::vector<BirdProtocol>& ps, const std::string& name) {
  for (const BirdProtocol& p : ps) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

class BirdTest : public testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_BIRD();
    std::string tmpl = (std::filesystem::temp_directory_path() / "magline-bird-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    conf_ = dir_ + "/bird.conf";
    sock_ = dir_ + "/bird.ctl";
    write_file(conf_, bird_conf(dir_, kRoute1));
    start();
  }

  void TearDown() override {
    stop(SIGTERM);
    if (HasFailure() && !dir_.empty()) {
      std::cerr << "BIRD's log:\n"
                << read_file(dir_ + "/bird.log") << "BIRD's output:\n"
                << read_file(dir_ + "/bird.out");
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // `bird -f -c CONF -s SOCK -P PIDFILE`, then waits until it answers on its socket.
  void start() {
    const std::string out = dir_ + "/bird.out";
    const std::string pidfile = dir_ + "/bird.pid";
    std::vector<std::string> args = {kBird, "-f", "-c", conf_, "-s", sock_, "-P", pidfile};
    std::vector<char*> argv;
    for (std::string& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    ASSERT_GE(pid_, 0) << std::strerror(errno);
    if (pid_ == 0) {
      // Async-signal-safe calls only: the test may have threads.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the test died before prctl()
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(kBird, argv.data());
      ::_exit(127);
    }
    const BirdClient probe(sock_, 200ms);
    bool exited = false;
    const bool up = eventually([&] {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited = true;
        pid_ = -1;
        return true;
      }
      return probe.command("show status").ok();
    });
    ASSERT_FALSE(exited) << "BIRD exited: " << read_file(out);
    ASSERT_TRUE(up) << "BIRD does not answer on " << sock_;
    EXPECT_EQ(read_file(pidfile), std::to_string(pid_) + "\n");
  }

  // Ends BIRD with `sig`, SIGKILL if it is not gone within 5 s.
  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status;
    const bool gone = eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
  }

  BirdClient client() const { return BirdClient(sock_, 2s); }

  std::string show_route() const {
    Result<BirdReply> r = client().command("show route");
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return "";
    EXPECT_FALSE(r->error()) << r->error_text();
    return r->text();
  }

  std::string dir_, conf_, sock_;
  pid_t pid_ = -1;
};

TEST_F(BirdTest, ProtocolsListsBgpAndStatic) {
  Result<std::vector<BirdProtocol>> ps = client().protocols();
  // The static protocol comes up on its own; wait for it rather than race its start.
  ASSERT_TRUE(eventually([&] {
    ps = client().protocols();
    const BirdProtocol* s = ps.ok() ? find(*ps, "static_vips") : nullptr;
    return s && s->state == "up";
  })) << (ps.ok() ? "static_vips not up" : ps.error().message);
  const BirdProtocol* st = find(*ps, "static_vips");
  EXPECT_EQ(st->proto, "Static");
  EXPECT_EQ(st->table, "master4");
  const BirdProtocol* bgp = find(*ps, "peer1");
  ASSERT_NE(bgp, nullptr);
  EXPECT_EQ(bgp->proto, "BGP");
  EXPECT_EQ(bgp->table, "---");
  // No route to the neighbour in this namespace: the session waits in Idle (or Active).
  EXPECT_EQ(bgp->state, "start");
  EXPECT_TRUE(bgp->info.rfind("Idle", 0) == 0 || bgp->info.rfind("Active", 0) == 0) << bgp->info;
  const BirdProtocol* dev = find(*ps, "device1");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->proto, "Device");
  EXPECT_EQ(dev->state, "up");
  EXPECT_FALSE(dev->since.empty());
}

TEST_F(BirdTest, ConfigureTakesANewRoute) {
  EXPECT_NE(show_route().find("198.18.100.1/32"), std::string::npos);
  write_file(conf_, bird_conf(dir_, kRoute2));
  ASSERT_EQ(error_of(client().configure()), "");
  // Static routes change within the reconfiguration: "show route" has them as soon as it ends.
  const std::string routes = show_route();
  EXPECT_NE(routes.find("198.18.100.2/32"), std::string::npos) << routes;
  EXPECT_EQ(routes.find("198.18.100.1/32"), std::string::npos) << routes;

  // Nothing changed: "Reconfigured" all the same.
  Result<BirdReply> again = client().command("configure");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->code(), 3) << again->text();
  EXPECT_EQ(again->lines.front().code, 2);
  EXPECT_EQ(again->lines.front().text, "Reading configuration from " + conf_);

  // The BGP protocol's settings changed: BIRD restarts it and answers before it is back.
  std::string conf = bird_conf(dir_, kRoute2);
  conf.replace(conf.find("as 65000"), 8, "as 65002");
  write_file(conf_, conf);
  Result<BirdReply> restart = client().command("configure");
  ASSERT_TRUE(restart.ok()) << restart.error().message;
  EXPECT_EQ(restart->code(), 4) << restart->text();
  EXPECT_EQ(error_of(client().configure()), "");
}

TEST_F(BirdTest, ASyntaxErrorKeepsThePreviousConfiguration) {
  write_file(conf_, bird_conf(dir_, kRoute1 + "  route 198.18.100.3/32 nowhere;\n"));
  Result<void> r = client().configure();
  ASSERT_FALSE(r.ok());
  // BIRD's own words: the file, line and column, what is wrong.
  EXPECT_NE(r.error().message.find("configuration refused: " + conf_ + ":7:"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("syntax error"), std::string::npos) << r.error().message;

  const std::string routes = show_route();
  EXPECT_NE(routes.find("198.18.100.1/32"), std::string::npos) << routes;
  Result<std::vector<BirdProtocol>> ps = client().protocols();
  ASSERT_TRUE(ps.ok()) << ps.error().message;
  EXPECT_NE(find(*ps, "peer1"), nullptr);

  // A file that is not there is refused the same way.
  std::filesystem::remove(conf_);
  r = client().configure();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(conf_ + ": No such file or directory"), std::string::npos)
      << r.error().message;
}

TEST_F(BirdTest, AnUnknownCommandIsAReply) {
  Result<BirdReply> r = client().command("show nonsense");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->error());
  EXPECT_EQ(r->code(), 9001);
  EXPECT_NE(r->error_text().find("syntax error"), std::string::npos) << r->error_text();
}

// What Magline's configuration needs of BIRD 2.0.12's syntax: a community on each static route
// (a block of filter statements after the route), routes from a file included inside the
// protocol block (an `include` on a line of its own, anywhere), and a BGP channel exporting one
// protocol's routes with a chosen next hop.
TEST_F(BirdTest, CommunitiesIncludesAndNextHop) {
  write_file(dir_ + "/vips.inc",
             "  route 198.18.100.2/32 blackhole { bgp_community.add((65000,200)); };\n");
  const std::string routes =
      "  route 198.18.100.1/32 blackhole { bgp_community.add((65000,100)); };\n"
      "  include \"" +
      dir_ + "/vips.inc\";\n";
  std::string conf = bird_conf(dir_, routes);
  conf.replace(conf.find("export where"), 0, "next hop address 198.18.0.10; ");
  write_file(conf_, conf);
  ASSERT_EQ(error_of(client().configure()), "");

  Result<BirdReply> r = client().command("show route all");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string all = r->text();
  EXPECT_NE(all.find("198.18.100.1/32"), std::string::npos) << all;
  EXPECT_NE(all.find("BGP.community: (65000,100)"), std::string::npos) << all;
  EXPECT_NE(all.find("198.18.100.2/32"), std::string::npos) << all;
  EXPECT_NE(all.find("BGP.community: (65000,200)"), std::string::npos) << all;
}

TEST_F(BirdTest, BirdGone) {
  // SIGTERM: BIRD shuts down and removes its socket (and its pid file).
  stop(SIGTERM);
  Result<BirdReply> r = client().command("show status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "BIRD at " + sock_ +
                                   ": cannot connect: No such file or directory (is BIRD "
                                   "running?)");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/bird.pid"));
}

TEST_F(BirdTest, BirdKilled) {
  // SIGKILL: BIRD cannot remove its socket, which nobody listens on any more.
  stop(SIGKILL);
  Result<BirdReply> r = client().command("show status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "BIRD at " + sock_ + ": cannot connect: Connection refused (is BIRD running?)");
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (::access(kBird, X_OK) != 0) {
    g_skip = std::string(kBird) + ": " + std::strerror(errno) + " (Debian: apt install bird2)";
  } else {
    g_skip = magline::test::enter_own_netns();
  }
  const int rc = RUN_ALL_TESTS();
  return rc == 0 && !g_skip.empty() ? 77 : rc;  // 77: skipped, to meson as to automake
}
