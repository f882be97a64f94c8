// The node prober's rate and cost (control/node_prober.hpp; docs/performance.md): a server on
// 127.0.0.1 in this process (one epoll thread that answers 200 to every connection) and the
// real prober over many targets at that address.
//
//   magline-probebench [--targets N] [--interval-ms MS] [--seconds S] [--in-flight N]
//                      [--timeout-ms MS]
//
// Prints the probes per second completed and the CPU the prober's thread used (the process's
// CPU minus the server thread's), per second and per probe. Two runs are useful: an interval
// short enough to saturate (the sustained rate), and the defaults (5000 targets every 5 s:
// the cost at a realistic load).
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "control/node_prober.hpp"

using namespace magline;

namespace {

double seconds_of(const timespec& t) {
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

double process_cpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// Accepts, answers at once without reading the request (the prober reads only the status
// line), closes. Measures its own CPU.
class Server {
 public:
  Server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) < 0 || ::listen(fd_, 4096) < 0) {
      std::perror("server");
      std::exit(1);
    }
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  double cpu() const { return cpu_.load(); }

 private:
  void run() {
    static constexpr std::string_view kOk =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &ev);
    while (!stop_) {
      epoll_event got[8];
      if (epoll_wait(ep, got, 8, 50) <= 0) continue;
      for (;;) {
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        [[maybe_unused]] const ssize_t n = ::send(c, kOk.data(), kOk.size(), MSG_NOSIGNAL);
        ::close(c);
      }
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      cpu_ = seconds_of(t);
    }
    ::close(ep);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<double> cpu_{0};
  std::thread thread_;
};

}  // namespace

constexpr const char* kUsage =
    "usage: magline-probebench [--targets N] [--interval-ms MS] [--seconds S] [--in-flight N]\n"
    "                          [--timeout-ms MS]\n"
    "The node prober's rate and CPU against a server on 127.0.0.1 in this process\n"
    "(defaults: 5000 targets every 5000 ms for 20 s, 256 in flight, 2000 ms timeout;\n"
    "docs/performance.md).\n";

// A whole decimal number in [lo, hi], or nothing.
std::optional<long> number(const char* text, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return std::nullopt;
  return v;
}

int main(int argc, char** argv) {
  struct Option {
    const char* name;
    long lo, hi;
    long value;
  };
  Option options[] = {{"--targets", 1, 1000000, 5000},
                      {"--interval-ms", 1, 3600000, 5000},
                      {"--seconds", 1, 86400, 20},
                      {"--in-flight", 1, 65536, 256},
                      {"--timeout-ms", 1, 600000, 2000}};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    Option* o = nullptr;
    for (Option& c : options) {
      if (a == c.name) o = &c;
    }
    if (o == nullptr) {
      std::fprintf(stderr, "magline-probebench: unknown option %s\n%s", argv[i], kUsage);
      return 2;
    }
    const auto v = i + 1 < argc ? number(argv[i + 1], o->lo, o->hi) : std::nullopt;
    if (!v) {
      std::fprintf(stderr, "magline-probebench: %s needs an integer in %ld..%ld\n%s", o->name,
                   o->lo, o->hi, kUsage);
      return 2;
    }
    o->value = *v;
    ++i;
  }
  const int targets = int(options[0].value);
  const int interval_ms = int(options[1].value);
  const int seconds = int(options[2].value);
  const int in_flight = int(options[3].value);
  const int timeout_ms = int(options[4].value);
  Server server;
  k8s::HealthCheckParams p;
  p.interval = std::chrono::milliseconds(interval_ms);
  p.timeout = std::chrono::milliseconds(timeout_ms);
  p.max_in_flight = uint32_t(in_flight);
  control::NodeProber prober(p, {});
  if (const auto s = prober.start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  std::vector<k8s::HealthTarget> list;
  for (int i = 0; i < targets; ++i)
    list.push_back(
        {"bench/svc", "node-" + std::to_string(i), *dp::parse_ip("127.0.0.1"), server.port()});
  prober.set_targets(list);
  // Past the first round (every new target at once) before measuring.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::max(1000, interval_ms)));
  const auto r0 = prober.report();
  const double cpu0 = process_cpu(), server0 = server.cpu();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const auto r1 = prober.report();
  const double cpu1 = process_cpu(), server1 = server.cpu();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  prober.stop();
  std::map<std::string, size_t> reasons;  // of the failures at the end, to tell what failed
  for (const auto& t : r1.targets)
    if (t.last && !t.last->pass) reasons[t.last->reason]++;
  for (const auto& [reason, n] : reasons)
    std::printf("last result failed: %zu with \"%s\"\n", n, reason.c_str());
  const double probes =
      double((r1.counts.passes + r1.counts.failures) - (r0.counts.passes + r0.counts.failures));
  const double fails = double(r1.counts.failures - r0.counts.failures);
  const double prober_cpu = (cpu1 - cpu0) - (server1 - server0);
  std::printf(
      "targets %d interval_ms %d timeout_ms %d max_in_flight %d: %.0f probes/s (%.0f failed) over "
      "%.1f s; "
      "prober CPU %.2f%% of a core, %.1f us per probe; server CPU %.2f%%\n",
      targets, interval_ms, timeout_ms, in_flight, probes / wall, fails, wall,
      100 * prober_cpu / wall, probes > 0 ? 1e6 * prober_cpu / probes : 0.0,
      100 * (server1 - server0) / wall);
  return 0;
}
