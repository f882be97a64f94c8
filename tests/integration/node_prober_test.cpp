// The node prober (control/node_prober.hpp) against real servers in this process on 127.0.0.1
// and ::1: 200, 503, a refused port, a server that accepts and never answers, garbage, a reply
// split across many writes, a slow body; a few hundred targets to show the bound on probes in
// flight; stop() with probes hanging. Threads: the prober's and the servers'; built under
// ThreadSanitizer too (tools/test.sh).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "control/node_prober.hpp"

using namespace magline;
using namespace std::chrono_literals;

namespace {

// A TCP server on a loopback address and a free port; each connection is handed to `handler` on
// a thread of its own. stop() (or the destructor) closes the listener and joins every thread;
// handlers that wait should poll stopping().
class TestServer {
 public:
  using Handler = std::function<void(TestServer&, int fd)>;
  TestServer(bool v6, Handler handler) : v6_(v6), handler_(std::move(handler)) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    }
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(fd_, 1024), 0);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                     : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestServer() { stop(); }

  void stop() {
    if (stopping_.exchange(true)) return;
    acceptor_.join();
    ::close(fd_);
    std::lock_guard lock(mutex_);
    for (std::thread& t : connections_)
      t.join();
  }
  bool stopping() const { return stopping_.load(); }
  uint16_t port() const { return port_; }
  k8s::HealthTarget target(std::string node, std::string service = "demo/web") const {
    return {std::move(service), std::move(node), *dp::parse_ip(v6_ ? "::1" : "127.0.0.1"), port_};
  }
  size_t accepted() const { return accepted_.load(); }

  // Handler pieces.
  // Up to the blank line, or whatever comes in 1 s.
  static std::string read_request(int fd) {
    std::string got;
    char buf[512];
    while (got.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) break;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    return got;
  }
  static void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      s.remove_prefix(size_t(n));
    }
  }
  void hold(std::chrono::milliseconds d) {  // sleeps, waking early when stopping
    const auto end = std::chrono::steady_clock::now() + d;
    while (!stopping() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(2ms);
  }

 private:
  void accept_loop() {
    while (!stopping_.load()) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, c] {
        handler_(*this, c);
        ::close(c);
      });
    }
  }

  bool v6_;
  Handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> accepted_{0};
  std::mutex mutex_;
  std::list<std::thread> connections_;
  std::thread acceptor_;
};

constexpr std::string_view kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
    "Content-Length: 82\r\n\r\n"
    "{\"service\":{\"namespace\":\"demo\",\"name\":\"web\"},\"localEndpoints\":1,"
    "\"serviceProxyHealthy\":true}";
constexpr std::string_view kDown =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    "Content-Length: 82\r\n\r\n"
    "{\"service\":{\"namespace\":\"demo\",\"name\":\"web\"},\"localEndpoints\":0,"
    "\"serviceProxyHealthy\":true}";

TestServer::Handler answer(std::string_view reply) {
  return [reply](TestServer&, int fd) {
    TestServer::read_request(fd);
    TestServer::write_all(fd, reply);
  };
}

k8s::HealthCheckParams fast_params() {
  k8s::HealthCheckParams p;
  p.interval = 200ms;
  p.timeout = 150ms;
  p.healthy_threshold = 2;
  p.unhealthy_threshold = 2;
  p.max_in_flight = 32;
  return p;
}

// Polls `pred` every 5 ms for up to `limit`.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// The reason of the one target's last result, once it has one.
std::string last_reason(const control::NodeProber& prober) {
  const auto r = prober.report();
  if (r.targets.empty() || !r.targets[0].last) return "";
  return r.targets[0].last->reason;
}

}  // namespace

TEST(NodeProber, HealthyOn200OverIpv4AndIpv6) {
  TestServer v4(false, answer(kOk)), v6(true, answer(kOk));
  std::atomic<int> changes{0};
  control::NodeProber prober(fast_params(), [&] { ++changes; });
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({v4.target("n4"), v6.target("n6")});
  ASSERT_TRUE(eventually([&] {
    return prober.verdict("demo/web", "n4") == true && prober.verdict("demo/web", "n6") == true;
  }));
  EXPECT_GE(changes.load(), 1);
  EXPECT_GE(prober.generation(), 2u);  // one flip each, from unknown
  const auto r = prober.report();
  ASSERT_EQ(r.targets.size(), 2u);
  for (const auto& t : r.targets) {
    ASSERT_TRUE(t.last);
    EXPECT_EQ(t.last->reason, "200");
  }
  prober.stop();
}

TEST(NodeProber, TheRequest) {
  std::mutex mutex;
  std::vector<std::string> requests;
  auto keep = [&](TestServer&, int fd) {
    const std::string r = TestServer::read_request(fd);
    {
      std::lock_guard lock(mutex);
      requests.push_back(r);
    }
    TestServer::write_all(fd, kOk);
  };
  TestServer v4(false, keep), v6(true, keep);
  control::NodeProber prober(fast_params(), {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({v4.target("n4"), v6.target("n6")});
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return requests.size() >= 2;
  }));
  prober.stop();
  std::lock_guard lock(mutex);
  std::sort(requests.begin(), requests.end());
  const std::string rest =
      "\r\nUser-Agent: magline-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(requests[0],
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(v4.port()) + rest);
  EXPECT_EQ(requests[1],
            "GET /healthz HTTP/1.1\r\nHost: [::1]:" + std::to_string(v6.port()) + rest);
}

TEST(NodeProber, UnhealthyOn503) {
  TestServer server(false, answer(kDown));
  control::NodeProber prober(fast_params(), {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == false; }));
  EXPECT_EQ(last_reason(prober), "503");
}

TEST(NodeProber, RefusedPort) {
  uint16_t port;
  {
    TestServer gone(false, answer(kOk));  // a port nobody listens on any more
    port = gone.port();
  }
  control::NodeProber prober(fast_params(), {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({{"demo/web", "n1", *dp::parse_ip("127.0.0.1"), port}});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == false; }));
  EXPECT_EQ(last_reason(prober), "connection refused");
}

TEST(NodeProber, AcceptedButNeverAnsweredTimesOut) {
  TestServer server(true, [](TestServer& s, int) { s.hold(30s); });
  auto p = fast_params();
  p.timeout = 100ms;
  control::NodeProber prober(p, {});
  ASSERT_TRUE(prober.start().ok());
  const auto start = std::chrono::steady_clock::now();
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == false; }));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(last_reason(prober), "timeout");
  prober.stop();
  server.stop();
}

TEST(NodeProber, GarbageIsAMalformedStatusLine) {
  TestServer server(false, [](TestServer&, int fd) {
    TestServer::read_request(fd);
    TestServer::write_all(fd, "SSH-2.0-OpenSSH_9.2\r\n");
  });
  control::NodeProber prober(fast_params(), {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == false; }));
  EXPECT_EQ(last_reason(prober), "malformed status line");
}

TEST(NodeProber, ClosedWithoutAnAnswer) {
  TestServer server(false, [](TestServer&, int fd) { TestServer::read_request(fd); });
  control::NodeProber prober(fast_params(), {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == false; }));
  EXPECT_EQ(last_reason(prober), "closed before a status line");
}

TEST(NodeProber, AReplySplitAcrossManyWrites) {
  TestServer server(false, [](TestServer& s, int fd) {
    TestServer::read_request(fd);
    for (const char c : kOk.substr(0, 40)) {  // the status line and more, a byte at a time
      TestServer::write_all(fd, std::string_view(&c, 1));
      s.hold(1ms);
    }
  });
  auto p = fast_params();
  p.timeout = 1000ms;
  p.interval = 2000ms;
  control::NodeProber prober(p, {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1").has_value(); }));
  EXPECT_EQ(prober.verdict("demo/web", "n1"), true);
  EXPECT_EQ(last_reason(prober), "200");
}

TEST(NodeProber, TheStatusLineDecidesBeforeASlowBody) {
  TestServer server(false, [](TestServer& s, int fd) {
    TestServer::read_request(fd);
    TestServer::write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    for (int i = 0; i < 100 && !s.stopping(); ++i) {  // 10 s of body, far past the timeout
      TestServer::write_all(fd, "x");
      s.hold(100ms);
    }
  });
  auto p = fast_params();
  p.timeout = 500ms;
  control::NodeProber prober(p, {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1").has_value(); }));
  EXPECT_EQ(prober.verdict("demo/web", "n1"), true);
  prober.stop();
  server.stop();
}

TEST(NodeProber, DampedFlipsWakeTheCaller) {
  std::atomic<bool> up{true};
  TestServer server(false, [&](TestServer&, int fd) {
    TestServer::read_request(fd);
    TestServer::write_all(fd, up.load() ? kOk : kDown);
  });
  auto p = fast_params();
  p.interval = 50ms;
  p.timeout = 40ms;
  p.unhealthy_threshold = 3;
  std::atomic<int> changes{0};
  control::NodeProber prober(p, [&] { ++changes; });
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == true; }));
  ASSERT_TRUE(eventually([&] { return changes.load() == 1; }));
  up = false;
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == false; }));
  ASSERT_TRUE(eventually([&] { return changes.load() == 2; }));
  const auto r = prober.report();
  ASSERT_EQ(r.targets.size(), 1u);
  EXPECT_GE(r.counts.failures, 3u);  // not before the third failure in a row
  EXPECT_EQ(r.generation, 2u);
  up = true;
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n1") == true; }));
  EXPECT_EQ(prober.generation(), 3u);
}

TEST(NodeProber, InFlightStaysWithinTheBound) {
  // Each answer waits 20 ms, so without the bound all 300 would be waiting at once. Counted
  // between the request read and the answer written, a span inside the probe's (the server's
  // own count of open connections lags: a handler returns after the prober has moved on).
  std::atomic<size_t> waiting{0}, most_waiting{0};
  TestServer server(false, [&](TestServer& s, int fd) {
    TestServer::read_request(fd);
    const size_t now = ++waiting;
    size_t seen = most_waiting.load();
    while (now > seen && !most_waiting.compare_exchange_weak(seen, now)) {
    }
    s.hold(20ms);
    --waiting;
    TestServer::write_all(fd, kOk);
  });
  auto p = fast_params();
  p.max_in_flight = 16;
  p.interval = 10000ms;
  p.timeout = 5000ms;
  control::NodeProber prober(p, {});
  ASSERT_TRUE(prober.start().ok());
  std::vector<k8s::HealthTarget> targets;
  for (int i = 0; i < 300; ++i)
    targets.push_back(server.target("node-" + std::to_string(i)));
  prober.set_targets(targets);
  size_t max_reported = 0;
  ASSERT_TRUE(eventually(
      [&] {
        const auto r = prober.report();
        max_reported = std::max(max_reported, r.in_flight);
        return r.counts.passes == 300;
      },
      30s));
  EXPECT_LE(max_reported, 16u);
  EXPECT_LE(most_waiting.load(), 16u);
  EXPECT_GE(most_waiting.load(), 8u);  // and the bound is used
  for (int i = 0; i < 300; ++i)
    EXPECT_EQ(prober.verdict("demo/web", "node-" + std::to_string(i)), true);
}

TEST(NodeProber, StopIsPromptWithProbesHanging) {
  TestServer server(false, [](TestServer& s, int) { s.hold(30s); });
  auto p = fast_params();
  p.timeout = 20000ms;
  p.interval = 30000ms;
  control::NodeProber prober(p, {});
  ASSERT_TRUE(prober.start().ok());
  std::vector<k8s::HealthTarget> targets;
  for (int i = 0; i < 50; ++i)
    targets.push_back(server.target("node-" + std::to_string(i)));
  prober.set_targets(targets);
  ASSERT_TRUE(eventually([&] { return server.accepted() >= 32; }));  // max_in_flight
  const auto start = std::chrono::steady_clock::now();
  prober.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  prober.stop();  // again: nothing
  server.stop();
}

TEST(NodeProber, RemovedTargetsAreForgotten) {
  TestServer server(false, answer(kOk));
  control::NodeProber prober(fast_params(), {});
  ASSERT_TRUE(prober.start().ok());
  prober.set_targets({server.target("n1"), server.target("n2")});
  ASSERT_TRUE(eventually([&] { return prober.verdict("demo/web", "n2") == true; }));
  prober.set_targets({server.target("n1")});
  EXPECT_EQ(prober.verdict("demo/web", "n2"), std::nullopt);
  EXPECT_EQ(prober.report().targets.size(), 1u);
}

TEST(NodeProber, ParamsFromTheConfiguration) {
  cfg::HealthChecksConfig c;
  c.interval_ms = 8000;
  c.timeout_ms = 1000;
  c.healthy_threshold = 1;
  c.unhealthy_threshold = 4;
  c.max_in_flight = 64;
  const k8s::HealthCheckParams p = control::health_check_params(c);
  EXPECT_EQ(p.interval, 8000ms);
  EXPECT_EQ(p.timeout, 1000ms);
  EXPECT_EQ(p.healthy_threshold, 1u);
  EXPECT_EQ(p.unhealthy_threshold, 4u);
  EXPECT_EQ(p.max_in_flight, 64u);
}
