// The sd_notify client against a real AF_UNIX datagram socket (a path, and an abstract name),
// the environment it reads, and the decisions of Supervision (READY=1, WATCHDOG=1, STOPPING=1)
// with a made-up clock and workers.
#include "control/sd_notify.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "control/supervision.hpp"

namespace magline::control {
namespace {

// A datagram socket bound where systemd's would be; reads what was sent, without blocking.
class Listener {
 public:
  explicit Listener(const std::string& address) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, address.data(), address.size());
    if (address[0] == '@') sa.sun_path[0] = '\0';
    const auto len = socklen_t(offsetof(sockaddr_un, sun_path) + address.size());
    bound_ = ::bind(fd_, reinterpret_cast<const sockaddr*>(&sa), len) == 0;
  }
  ~Listener() { ::close(fd_); }
  bool bound() const { return bound_; }
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, 0)) >= 0;)
      out.emplace_back(buf, size_t(n));
    return out;
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* n) -> const char* {
    auto it = vars.find(n);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(NotifySocket, SendsOneDatagramToAPath) {
  char tmpl[] = "/tmp/magline_notify_XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string path = dir + "/notify";
  Listener l(path);
  ASSERT_TRUE(l.bound());
  auto s = NotifySocket::at(path);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(s->send("READY=1\nSTATUS=forwarding").ok());
  ASSERT_TRUE(s->send("WATCHDOG=1").ok());
  EXPECT_EQ(l.received(), (std::vector<std::string>{"READY=1\nSTATUS=forwarding", "WATCHDOG=1"}));
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}

TEST(NotifySocket, TheAbstractNamespaceIsAnAtSign) {
  const std::string name = "@magline-notify-test-" + std::to_string(::getpid());
  Listener l(name);
  ASSERT_TRUE(l.bound());
  auto found = NotifySocket::from_environment(env_of({{"NOTIFY_SOCKET", name}}));
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_TRUE(found->has_value());
  ASSERT_TRUE((*found)->send("STOPPING=1").ok());
  EXPECT_EQ(l.received(), std::vector<std::string>{"STOPPING=1"});
}

TEST(NotifySocket, NothingListeningIsAnError) {
  auto s = NotifySocket::at("/nonexistent/magline/notify");
  ASSERT_TRUE(s.ok());
  auto sent = s->send("READY=1");
  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().message, "No such file or directory");
}

TEST(NotifySocket, TheEnvironment) {
  auto none = NotifySocket::from_environment(env_of({}));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto empty = NotifySocket::from_environment(env_of({{"NOTIFY_SOCKET", ""}}));
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  auto relative = NotifySocket::from_environment(env_of({{"NOTIFY_SOCKET", "run/notify"}}));
  ASSERT_FALSE(relative.ok());
  EXPECT_EQ(relative.error().message,
            "$NOTIFY_SOCKET: expected an absolute path or an @abstract name, got \"run/notify\"");
  auto long_path = NotifySocket::at("/" + std::string(200, 'x'));
  ASSERT_FALSE(long_path.ok());
  EXPECT_NE(long_path.error().message.find("is longer than a socket address holds (107 bytes)"),
            std::string::npos);
}

TEST(WatchdogUsec, ForThisProcessOnly) {
  auto none = watchdog_usec(env_of({}), 42);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  auto mine = watchdog_usec(env_of({{"WATCHDOG_USEC", "10000000"}, {"WATCHDOG_PID", "42"}}), 42);
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(*mine, std::optional<uint64_t>(10000000));
  auto no_pid = watchdog_usec(env_of({{"WATCHDOG_USEC", "3000000"}}), 42);
  ASSERT_TRUE(no_pid.ok());
  EXPECT_EQ(*no_pid, std::optional<uint64_t>(3000000));
  // Inherited from a parent that systemd watches: not ours to ping.
  auto other = watchdog_usec(env_of({{"WATCHDOG_USEC", "10000000"}, {"WATCHDOG_PID", "7"}}), 42);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);
  auto bad = watchdog_usec(env_of({{"WATCHDOG_USEC", "10s"}}), 42);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "$WATCHDOG_USEC: expected a positive integer, got \"10s\"");
}

// ---- Supervision ----

class SupervisionTest : public ::testing::Test {
 protected:
  Supervision make(std::optional<uint64_t> watchdog_usec) {
    return Supervision([this](const std::string& s) { sent_.push_back(s); }, watchdog_usec,
                       "forwarding", log_);
  }
  static Supervision::Facts facts(bool ready, std::vector<uint64_t> progress,
                                  std::vector<bool> failed = {}) {
    if (failed.empty()) failed.resize(progress.size());
    return {ready, std::move(progress), std::move(failed)};
  }
  std::vector<std::string> take() { return std::exchange(sent_, {}); }

  std::vector<std::string> sent_;
  std::ostringstream log_;
};

TEST_F(SupervisionTest, ReadyOnceWhenReadyAndStoppingOnce) {
  Supervision s = make(std::nullopt);
  s.turn(0, facts(false, {1, 1}));
  EXPECT_TRUE(take().empty());
  s.turn(1, facts(true, {3, 3}));
  EXPECT_EQ(take(), std::vector<std::string>{"READY=1\nSTATUS=forwarding"});
  s.turn(2, facts(true, {5, 5}));
  EXPECT_TRUE(take().empty());  // no watchdog asked for: no pings
  s.stopping();
  s.stopping();
  EXPECT_EQ(take(), std::vector<std::string>{"STOPPING=1\nSTATUS=stopping"});
  s.turn(3, facts(true, {7, 7}));
  EXPECT_TRUE(take().empty());
}

TEST_F(SupervisionTest, PingsEveryHalfPeriodWhileEveryWorkerProgresses) {
  Supervision s = make(2'000'000);  // WatchdogSec=2s: a ping every second
  EXPECT_EQ(s.interval_ms(), 1000u);
  s.turn(0, facts(false, {0, 0}));
  EXPECT_EQ(take(), std::vector<std::string>{"WATCHDOG=1"});  // the loop runs: first ping
  s.turn(500, facts(true, {10, 10}));
  EXPECT_EQ(take(), std::vector<std::string>{"READY=1\nSTATUS=forwarding"});
  s.turn(1000, facts(true, {20, 20}));
  EXPECT_EQ(take(), std::vector<std::string>{"WATCHDOG=1"});
  s.turn(1500, facts(true, {30, 30}));
  EXPECT_TRUE(take().empty());
  s.turn(2000, facts(true, {40, 40}));
  EXPECT_EQ(take(), std::vector<std::string>{"WATCHDOG=1"});
  EXPECT_EQ(s.pings(), 3u);
}

TEST_F(SupervisionTest, AStuckWorkerWithholdsThePingUntilItMovesAgain) {
  Supervision s = make(2'000'000);
  s.turn(0, facts(true, {0, 0}));
  take();
  s.turn(1000, facts(true, {20, 0}));  // worker 1 has not published since the last ping
  EXPECT_EQ(take(), std::vector<std::string>{
                        "STATUS=watchdog withheld: worker 1 has made no progress for 1000 ms"});
  EXPECT_EQ(log_.str(), "magline: watchdog withheld: worker 1 has made no progress for 1000 ms\n");
  s.turn(1200, facts(true, {24, 0}));
  EXPECT_TRUE(take().empty());  // said once
  s.turn(1300, facts(true, {26, 2}));
  EXPECT_EQ(take(), std::vector<std::string>{"WATCHDOG=1\nSTATUS=forwarding"});
  s.turn(2300, facts(true, {46, 22}));
  EXPECT_EQ(take(), std::vector<std::string>{"WATCHDOG=1"});
}

TEST_F(SupervisionTest, AWorkerWhoseLcoreReturnedWithholdsThePing) {
  Supervision s = make(1'000'000);
  s.turn(0, facts(true, {0, 0}));
  take();
  // Its last copy may still differ from the one at the last ping: it is the lcore that counts.
  s.turn(500, facts(true, {10, 10}, {false, true}));
  EXPECT_EQ(take(), std::vector<std::string>{
                        "STATUS=watchdog withheld: worker 1 has stopped (its lcore returned)"});
  s.turn(5000, facts(true, {90, 10}, {false, true}));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(s.pings(), 1u);
}

TEST_F(SupervisionTest, NothingAfterStopping) {
  Supervision s = make(1'000'000);
  s.turn(0, facts(false, {0}));
  take();
  s.stopping();
  take();
  s.turn(1000, facts(true, {10}));
  EXPECT_TRUE(take().empty());  // neither READY=1 nor pings once stopping
}

}  // namespace
}  // namespace magline::control
