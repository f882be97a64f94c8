#include "control/node_prober.hpp"

#include <pthread.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "control/k8s/probe_response.hpp"

namespace magline::control {

namespace {

using Clock = k8s::HealthClock;
constexpr uint64_t kWakeTag = ~uint64_t{0};
constexpr int kEventBatch = 64;

std::string error_reason(int err) {
  switch (err) {
    case ECONNREFUSED:
      return "connection refused";
    case ECONNRESET:
      return "connection reset";
    case ETIMEDOUT:
      return "timeout";
    case EHOSTUNREACH:
      return "host unreachable";
    case ENETUNREACH:
      return "network unreachable";
    default:
      return std::strerror(err);
  }
}

std::string request_for(const k8s::HealthTarget& t) {
  const std::string host = t.address.family == dp::Family::v6 ? "[" + dp::to_string(t.address) + "]"
                                                              : dp::to_string(t.address);
  return "GET /healthz HTTP/1.1\r\nHost: " + host + ":" + std::to_string(t.port) +
         "\r\nUser-Agent: magline-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
}

}  // namespace

k8s::HealthCheckParams health_check_params(const cfg::HealthChecksConfig& c) {
  return {std::chrono::milliseconds(c.interval_ms), std::chrono::milliseconds(c.timeout_ms),
          c.healthy_threshold, c.unhealthy_threshold, c.max_in_flight};
}

struct NodeProber::Probe {
  enum class Phase : uint8_t { idle, connecting, sending, reading };
  Phase phase = Phase::idle;
  int fd = -1;
  uint32_t seq = 0;  // tells this probe's epoll events from an earlier one's in the same slot
  uint64_t ticket = 0;
  std::string request;
  size_t sent = 0;
  std::string received;
};

NodeProber::NodeProber(k8s::HealthCheckParams params, std::function<void()> on_change,
                       uint64_t seed)
    : params_(params), on_change_(std::move(on_change)), book_(params, seed) {}

NodeProber::~NodeProber() {
  stop();
}

Result<void> NodeProber::start() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return Error{std::string("health checks: epoll: ") + std::strerror(errno)};
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int err = errno;
    ::close(epoll_fd_);
    epoll_fd_ = -1;
    return Error{std::string("health checks: eventfd: ") + std::strerror(err)};
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  const size_t slots = std::max<uint32_t>(params_.max_in_flight, 1);
  probes_.assign(slots, Probe{});
  free_slots_.clear();
  for (size_t i = slots; i-- > 0;)
    free_slots_.push_back(i);
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "prober");
  return {};
}

void NodeProber::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_relaxed);  // the eventfd's write orders it
  wake();
  thread_.join();
  ::close(wake_fd_);
  ::close(epoll_fd_);
  wake_fd_ = epoll_fd_ = -1;
}

void NodeProber::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);  // full: already set
}

void NodeProber::set_targets(const std::vector<k8s::HealthTarget>& targets) {
  {
    std::lock_guard lock(mutex_);
    book_.set_targets(targets, Clock::now());
  }
  if (wake_fd_ >= 0) wake();
}

std::optional<bool> NodeProber::verdict(std::string_view service, std::string_view node) const {
  std::lock_guard lock(mutex_);
  return book_.healthy(service, node);
}

uint64_t NodeProber::generation() const {
  std::lock_guard lock(mutex_);
  return book_.generation();
}

HealthReport NodeProber::report() const {
  std::lock_guard lock(mutex_);
  return {book_.snapshot(), book_.counts(), book_.generation(), in_flight_count_};
}

void NodeProber::run() {
  // Every probe times out after the same `timeout` and they start in time order, so their
  // deadlines are in order too: a FIFO is the timer queue.
  struct Deadline {
    Clock::time_point at;
    size_t slot;
    uint32_t seq;
  };
  std::deque<Deadline> deadlines;
  epoll_event events[kEventBatch];
  uint32_t seq = 0;
  while (!stopping_.load(std::memory_order_relaxed)) {
    Clock::time_point now = Clock::now();
    while (!deadlines.empty() && deadlines.front().at <= now) {
      const Deadline d = deadlines.front();
      deadlines.pop_front();
      if (probes_[d.slot].phase != Probe::Phase::idle && probes_[d.slot].seq == d.seq)
        finish(d.slot, {false, "timeout"});
    }
    std::optional<Clock::time_point> wake_at;
    {
      std::unique_lock lock(mutex_);
      const auto due = book_.take_due(now, free_slots_.size());
      in_flight_count_ += due.size();
      lock.unlock();
      for (const auto& p : due) {
        const size_t slot = free_slots_.back();
        free_slots_.pop_back();
        probes_[slot].seq = ++seq;
        deadlines.push_back({now + params_.timeout, slot, seq});
        start_probe(slot, p);
      }
      lock.lock();
      if (!free_slots_.empty()) wake_at = book_.next_due();
    }
    if (!deadlines.empty() && (!wake_at || deadlines.front().at < *wake_at))
      wake_at = deadlines.front().at;
    int wait_ms = -1;
    if (wake_at) {
      const auto left = *wake_at - Clock::now();
      wait_ms = left <= Clock::duration::zero()
                    ? 0
                    : int((left + std::chrono::milliseconds(1) - Clock::duration(1)) /
                          std::chrono::milliseconds(1));
    }
    const int n = epoll_wait(epoll_fd_, events, kEventBatch, wait_ms);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t count;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof count);
        continue;
      }
      const size_t slot = size_t(tag & 0xffffffffu);
      if (probes_[slot].phase != Probe::Phase::idle && probes_[slot].seq == uint32_t(tag >> 32))
        on_event(slot, events[i].events);
    }
  }
  for (Probe& p : probes_) {  // stopping: whatever is still out ends here, unrecorded
    if (p.phase != Probe::Phase::idle) ::close(p.fd);
    p = Probe{};
  }
  std::lock_guard lock(mutex_);
  in_flight_count_ = 0;
}

void NodeProber::start_probe(size_t slot, const k8s::HealthBook::Probe& p) {
  Probe& probe = probes_[slot];
  probe.ticket = p.ticket;
  probe.request = request_for(p.target);
  probe.sent = 0;
  probe.received.clear();
  probe.phase = Probe::Phase::connecting;
  const bool v6 = p.target.address.family == dp::Family::v6;
  probe.fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe.fd < 0) {
    finish(slot, {false, error_reason(errno)});
    return;
  }
  const linger reset{1, 0};
  setsockopt(probe.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  sockaddr_storage addr{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(p.target.port);
    std::memcpy(&a->sin6_addr, p.target.address.data(), 16);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(p.target.port);
    std::memcpy(&a->sin_addr, p.target.address.data(), 4);
    len = sizeof(sockaddr_in);
  }
  if (::connect(probe.fd, reinterpret_cast<const sockaddr*>(&addr), len) < 0 &&
      errno != EINPROGRESS) {
    finish(slot, {false, error_reason(errno)});
    return;
  }
  // Connected or not yet: writable says which (SO_ERROR), level-triggered.
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u64 = (uint64_t(probe.seq) << 32) | slot;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, probe.fd, &ev) < 0)
    finish(slot, {false, error_reason(errno)});
}

void NodeProber::on_event(size_t slot, uint32_t events) {
  Probe& probe = probes_[slot];
  if (probe.phase == Probe::Phase::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(probe.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) return finish(slot, {false, error_reason(err)});
    if (!(events & EPOLLOUT)) return finish(slot, {false, "connection reset"});
    probe.phase = Probe::Phase::sending;
  }
  if (probe.phase == Probe::Phase::sending) {
    const ssize_t n = ::send(probe.fd, probe.request.data() + probe.sent,
                             probe.request.size() - probe.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      return finish(slot, {false, error_reason(errno)});
    }
    probe.sent += size_t(n);
    if (probe.sent < probe.request.size()) return;
    probe.phase = Probe::Phase::reading;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t(probe.seq) << 32) | slot;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, probe.fd, &ev);
    return;  // the answer comes with a later event
  }
  char buf[k8s::kProbeResponseMax];
  const size_t room = k8s::kProbeResponseMax - probe.received.size();
  const ssize_t n = ::recv(probe.fd, buf, room, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    return finish(slot, {false, error_reason(errno)});
  }
  probe.received.append(buf, size_t(n));
  if (auto result = k8s::judge_response(probe.received, n == 0)) finish(slot, std::move(*result));
}

void NodeProber::finish(size_t slot, k8s::ProbeResult result) {
  Probe& probe = probes_[slot];
  if (probe.fd >= 0) ::close(probe.fd);  // leaves the epoll set with it (never dup'ed)
  const uint64_t ticket = probe.ticket;
  probe.fd = -1;
  probe.phase = Probe::Phase::idle;
  free_slots_.push_back(slot);
  bool changed;
  {
    std::lock_guard lock(mutex_);
    changed = book_.record(ticket, result, Clock::now(), std::chrono::system_clock::now());
    --in_flight_count_;
  }
  if (changed && on_change_) on_change_();
}

}  // namespace magline::control
