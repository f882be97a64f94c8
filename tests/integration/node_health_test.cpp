// Node targets' health checks wired end to end in one process (control/node_health.hpp): the
// Kubernetes feed (events pushed as the watcher would) lists a Local Service's probe targets, the
// real prober probes them over TCP, and the feed's translation follows the verdicts. The two
// "nodes" are 127.0.0.1 and 127.0.0.2, each with a kube-proxy stand-in on the same
// healthCheckNodePort whose answer (200 or 503) the test switches.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "control/node_health.hpp"
#include "tests/unit/k8s_json.hpp"

using namespace magline;
using namespace magline::control;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

// A listener on `addr`:`port` (0: any free one) answering every request with `status`, on one
// thread of its own.
class HealthServer {
 public:
  HealthServer(const char* addr, uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, addr, &a.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HealthServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  std::atomic<int> status{200};

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      char buf[1024];
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 1000) == 1 && ::recv(c, buf, sizeof buf, 0) > 0) {
        const std::string reply = "HTTP/1.1 " + std::to_string(status.load()) +
                                  (status == 200 ? " OK" : " Service Unavailable") +
                                  "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

k8s::WatchEvent relisted(k8s::Resource r, std::vector<json> items) {
  return {r, k8s::WatchEvent::Type::relisted, {},
          std::make_shared<const std::vector<json>>(std::move(items)), "1",
          std::chrono::steady_clock::now()};
}

json node(const std::string& name, const std::string& addr) {
  return {{"metadata", {{"name", name}, {"resourceVersion", "1"}}},
          {"status",
           {{"addresses", {{{"type", "InternalIP"}, {"address", addr}}}},
            {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}};
}

TEST(NodeHealth, TheFeedFollowsWhatKubeProxyAnswersOnEachNode) {
  HealthServer n1("127.0.0.1", 0);
  HealthServer n2("127.0.0.2", n1.port());
  n2.status = 503;

  dp::Node lb;
  lb.ports.push_back({0, "lan0", dp::MacAddr{{2, 0, 0, 0, 0, 1}}, {{*dp::parse_ip("198.18.0.1"), 16}},
                      1500});
  Publisher pub(lb);
  cfg::Config c;
  c.kubernetes.enabled = true;
  c.kubernetes.table_size = 251;
  c.kubernetes.min_table_size = 0;
  c.kubernetes.coalesce_ms = 1;
  c.kubernetes.targets = cfg::K8sTargets::nodes;
  auto q = std::make_unique<k8s::EventQueue>();
  k8s::EventQueue* events = q.get();
  K8sFeed feed(c, std::move(q));
  k8s::HealthCheckParams params;
  params.interval = 100ms;
  params.timeout = 80ms;
  params.healthy_threshold = 2;
  params.unhealthy_threshold = 2;
  auto health = NodeHealth::start(feed, params);
  ASSERT_TRUE(health) << health.error().message;

  json web = test::k8s_service("web", "198.18.100.1");
  web["spec"]["ports"][0]["nodePort"] = 30080;
  web["spec"]["externalTrafficPolicy"] = "Local";
  web["spec"]["healthCheckNodePort"] = n1.port();
  events->push(relisted(k8s::Resource::services, {web}));
  events->push(relisted(k8s::Resource::nodes,
                        {node("n1", "127.0.0.1"), node("n2", "127.0.0.2")}));

  // The control thread's turns, until the backends read `want` (or 5 s pass).
  uint64_t now = 0;
  auto backends = [&] {
    std::string out;
    if (const auto s = pub.find_by_name("default/web:http/tcp/v4")) {
      for (const dp::Backend& b : s->spec().backends) {
        out += dp::backend_id(b.addr, b.port) + " " + std::string(dp::to_string(b.state)) + "; ";
      }
    }
    return out;
  };
  auto turns_until = [&](const std::string& want) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (backends() != want && std::chrono::steady_clock::now() < deadline) {
      (*health)->follow();
      feed.poll(now += 10, pub, {});
      std::this_thread::sleep_for(10ms);
    }
    return backends();
  };
  // Before any verdict both are listed terminating (failing open: both take new connections);
  // then n1 passes, n2 fails.
  EXPECT_EQ(turns_until("127.0.0.1:30080 ready; 127.0.0.2:30080 terminating; "),
            "127.0.0.1:30080 ready; 127.0.0.2:30080 terminating; ");
  const HealthReport r = (*health)->report();
  ASSERT_EQ(r.targets.size(), 2u);
  EXPECT_EQ(r.targets[0].target.node, "n1");
  EXPECT_EQ(r.targets[0].verdict, k8s::Verdict::healthy);
  EXPECT_EQ(r.targets[1].verdict, k8s::Verdict::unhealthy);
  EXPECT_GE(r.counts.passes, 1u);
  const json state = json::parse((*health)->state_json(R"({"services": []})"));
  EXPECT_EQ(state["health_checks"]["targets"].size(), 2u);
  EXPECT_EQ(state["health_checks"]["targets"][1]["reason"], "503");
  EXPECT_TRUE(state["services"].is_array());

  // The pods move from n1 to n2: kube-proxy's answers swap, and so do the backends.
  n1.status = 503;
  n2.status = 200;
  EXPECT_EQ(turns_until("127.0.0.1:30080 terminating; 127.0.0.2:30080 ready; "),
            "127.0.0.1:30080 terminating; 127.0.0.2:30080 ready; ");
  (*health)->stop();
}

}  // namespace
