#include "control/admin.hpp"

#include <httplib.h>

namespace magline::control {

void AdminView::update(const dp::SlowPathStats& slow, const ControlCounters& control,
                       std::shared_ptr<const dp::ServiceList> services) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.slow = slow;
  data_.control = control;
  data_.services = std::move(services);
}

AdminView::Copy AdminView::copy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_;
}

Result<std::unique_ptr<AdminServer>> AdminServer::start(
    const std::string& address, uint16_t port,
    const std::vector<std::unique_ptr<WorkerContext>>& workers, const AdminView& view) {
  std::unique_ptr<AdminServer> s(new AdminServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *s->server_;
  srv.Get("/healthz", [&view](const httplib::Request&, httplib::Response& res) {
    const bool ok = view.running();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "stopped\n", "text/plain");
  });
  srv.Get("/metrics", [&view, &workers](const httplib::Request&, httplib::Response& res) {
    const AdminView::Copy c = view.copy();
    res.set_content(metrics_text(workers, c.slow, c.control, c.services.get()),
                    "text/plain; version=0.0.4");
  });
  srv.Get("/stats", [&view, &workers](const httplib::Request&, httplib::Response& res) {
    const AdminView::Copy c = view.copy();
    res.set_content(stats_json(workers, c.slow, c.control).dump(2) + "\n", "application/json");
  });
  if (!srv.bind_to_port(address, port)) {
    return Error{"admin listener: cannot listen on " + address + ":" + std::to_string(port)};
  }
  s->port_ = port;
  s->thread_ = std::thread([&srv] { srv.listen_after_bind(); });
  return s;
}

AdminServer::~AdminServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace magline::control
