#include "control/admin.hpp"

#include <pthread.h>
#include <httplib.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "control/process_metrics.hpp"

namespace magline::control {

void AdminView::update(const dp::SlowPathStats& slow, const ControlCounters& control,
                       std::shared_ptr<const dp::ServiceList> services) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.slow = slow;
  data_.control = control;
  data_.services = std::move(services);
}

void AdminView::update_extra(std::string metrics, nlohmann::ordered_json stats) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.extra_metrics = std::move(metrics);
  data_.extra_stats = std::move(stats);
}

void AdminView::set_static(BuildInfo build, std::vector<PortReport> ports,
                           nlohmann::ordered_json stats) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.build = std::move(build);
  data_.ports = std::move(ports);
  data_.static_stats = std::move(stats);
}

void AdminView::set_provider(std::function<ProviderReport()> report) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.provider = std::move(report);
}

void AdminView::set_bgp(std::function<AnnouncerReport()> report) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.bgp = std::move(report);
}

void AdminView::update_ports(std::vector<PortCounters> counters) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.port_counters = std::move(counters);
}

std::string metrics_of(const WorkerViews& workers, const AdminView::Copy& c,
                       const ProcessStats* process) {
  Exposition e;
  build_info_metrics(e, c.build);
  worker_metrics(e, workers, c.slow, c.control, c.services.get());
  port_metrics(e, c.ports, c.port_counters);
  if (c.provider) provider_metrics(e, c.provider());
  if (c.bgp) bgp_metrics(e, c.bgp());
  if (process != nullptr) process_metrics(e, *process);
  // The control thread's Kubernetes families, rendered apart: their names are their own.
  return e.text() + c.extra_metrics;
}

std::optional<std::string> AdminView::ask_state(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(state_mu_);
  const uint64_t ticket = ++state_asked_;
  if (!state_cv_.wait_for(lock, timeout, [&] { return state_answered_.load() >= ticket; })) {
    return std::nullopt;
  }
  return state_;
}

void AdminView::answer_state(std::string text) {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    state_ = std::move(text);
    state_answered_.store(state_asked_.load());
  }
  state_cv_.notify_all();
}

AdminView::Copy AdminView::copy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return data_;
}

Result<std::unique_ptr<AdminServer>> AdminServer::bind(const std::string& address, uint16_t port) {
  std::unique_ptr<AdminServer> s(new AdminServer());
  s->server_ = std::make_unique<httplib::Server>();
  httplib::Server& srv = *s->server_;
  // httplib writes a response's headers and body in separate sends: with Nagle's algorithm the
  // body then waits for the client's delayed ACK, 40 ms on a kept-alive connection (a scraper's).
  srv.set_tcp_nodelay(true);
  errno = 0;
  if (!srv.bind_to_port(address, port)) {
    // httplib says only false; the socket calls behind it (getaddrinfo, socket, bind, listen)
    // leave their errno: "Address already in use", "Cannot assign requested address", ...
    const int reason = errno;
    return Error{"admin listener: cannot listen on " + address + ":" + std::to_string(port) +
                 (reason != 0 ? ": " + std::string(std::strerror(reason)) : "")};
  }
  s->port_ = port;
  return s;
}

void AdminServer::serve(WorkerViews workers_in, const AdminView& view) {
  workers_ = std::move(workers_in);
  const WorkerViews& workers = workers_;
  httplib::Server& srv = *server_;
  srv.Get("/healthz", [&view](const httplib::Request&, httplib::Response& res) {
    const bool ok = view.running();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "stopped\n", "text/plain");
  });
  srv.Get("/readyz", [&view](const httplib::Request&, httplib::Response& res) {
    const bool ok = view.ready();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ready\n" : (view.running() ? "starting\n" : "stopped\n"),
                    "text/plain");
  });
  srv.Get("/metrics", [&view, &workers](const httplib::Request&, httplib::Response& res) {
    const AdminView::Copy c = view.copy();
    // The process's figures are read here, at each scrape: a few reads of /proc, no DPDK.
    const Result<ProcessStats> process = read_process_stats();
    res.set_content(metrics_of(workers, c, process ? &*process : nullptr),
                    "text/plain; version=0.0.4");
  });
  srv.Get("/stats", [&view, &workers](const httplib::Request&, httplib::Response& res) {
    const AdminView::Copy c = view.copy();
    nlohmann::ordered_json j = stats_json(workers, c.slow, c.control);
    if (!c.extra_stats.is_null()) j["kubernetes"] = c.extra_stats;
    if (c.static_stats.is_object()) {
      for (const auto& [key, value] : c.static_stats.items()) j[key] = value;
    }
    if (!c.ports.empty()) j["ports"] = ports_json(c.ports, c.port_counters);
    res.set_content(j.dump(2) + "\n", "application/json");
  });
  srv.Get("/state", [&view](const httplib::Request&, httplib::Response& res) {
    const std::function<AnnouncerReport()> bgp = view.copy().bgp;
    if (!view.state_available() && bgp) {  // nothing watched: BGP's section alone
      nlohmann::ordered_json j;
      j["bgp"] = bgp_state_json(bgp());
      res.set_content(j.dump(2) + "\n", "application/json");
      return;
    }
    if (!view.state_available()) {
      res.status = 404;
      res.set_content("nothing is watched: the configuration has no kubernetes section\n",
                      "text/plain");
      return;
    }
    auto state = view.ask_state(std::chrono::seconds(5));
    if (!state) {
      res.status = 503;
      res.set_content("the control thread did not answer\n", "text/plain");
      return;
    }
    const std::function<ProviderReport()> provider = view.copy().provider;
    if (provider || bgp) {
      // The plan's schema (`magline plan`) with the provider's and BGP's sections beside it.
      auto j = nlohmann::ordered_json::parse(*state, nullptr, false);
      if (j.is_object()) {
        if (provider) j["provider"] = provider_state_json(provider());
        if (bgp) j["bgp"] = bgp_state_json(bgp());
        res.set_content(j.dump(2) + "\n", "application/json");
        return;
      }
    }
    res.set_content(*state, "application/json");
  });
  thread_ = std::thread([&srv] { srv.listen_after_bind(); });
  pthread_setname_np(thread_.native_handle(), "admin");
}

AdminServer::~AdminServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace magline::control
