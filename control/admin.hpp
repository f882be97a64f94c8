// The admin HTTP listener (cpp-httplib), loopback by default:
//   /healthz  200 "ok" while the workers run, 503 otherwise
//   /metrics  Prometheus text format (control/stats.hpp)
//   /stats    the same counters as JSON
//
// It runs on its own thread and never touches the data plane: it reads workers' published
// counter copies, and what the control thread publishes into an AdminView under a mutex.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/stats.hpp"
#include "control/worker.hpp"
#include "dataplane/result.hpp"

namespace httplib {
class Server;
}

namespace magline::control {

// What the control thread shares with the listener.
class AdminView {
 public:
  void update(const dp::SlowPathStats& slow, const ControlCounters& control,
              std::shared_ptr<const dp::ServiceList> services);
  void set_running(bool running) { running_.store(running); }
  bool running() const { return running_.load(); }

  struct Copy {
    dp::SlowPathStats slow;
    ControlCounters control;
    std::shared_ptr<const dp::ServiceList> services;
  };
  Copy copy() const;

 private:
  mutable std::mutex mu_;
  Copy data_;
  std::atomic<bool> running_{false};
};

class AdminServer {
 public:
  // Binds address:port and starts serving on a thread. Errors: the address cannot be bound.
  static Result<std::unique_ptr<AdminServer>> start(
      const std::string& address, uint16_t port,
      const std::vector<std::unique_ptr<WorkerContext>>& workers, const AdminView& view);
  ~AdminServer();  // stops and joins

  uint16_t port() const noexcept { return port_; }

 private:
  AdminServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace magline::control
