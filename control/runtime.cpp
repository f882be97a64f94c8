#include "control/runtime.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <ostream>
#include <thread>

#include "config/config.hpp"
#include "control/admin.hpp"
#include "control/control_thread.hpp"
#include "control/dpdk_dataplane.hpp"
#include "control/stats.hpp"

namespace magline::control {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void on_signal(int sig) {
  if (sig == SIGHUP) {
    g_reload.store(true);
  } else {
    g_stop.store(true);
  }
}

uint64_t now_ms() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

// The control thread's loop on the main core until SIGTERM or SIGINT (or the duration).
void control_loop(ControlThread& control, double duration_s) {
  const uint64_t start = now_ms();
  // A duration past what a uint64_t of ms holds (1e300 s) is forever, not an overflow.
  const double ms = duration_s * 1000;
  const uint64_t deadline = ms > 0 && ms < 1e18 ? start + uint64_t(ms) : 0;
  control.announce(start);
  while (!g_stop.load()) {
    const uint64_t now = now_ms();
    if (deadline && now >= deadline) break;
    control.turn(now, g_reload.exchange(false));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

}  // namespace

int run(const RunOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = cfg::load_or_default(options.config_path);
  if (!loaded) {
    err << loaded.error().message << std::endl;
    return 1;
  }
  const cfg::Config config = std::move(loaded).value();
  if (config.dataplane.ports.empty()) {
    err << config.source << ": dataplane.ports is empty: magline run needs at least one port"
        << std::endl;
    return 1;
  }
  auto started = DpdkDataplane::start(config);
  if (!started) {
    err << "magline: " << started.error().message << std::endl;
    return 1;
  }
  DpdkDataplane& dataplane = **started;
  DpdkWorkers& workers = dataplane.workers();
  AdminView view;
  view.set_static(dataplane.ports_metrics(), {{"ports", dataplane.ports_json()}});
  ControlThread control(config, options.config_path, dataplane.node(), workers, view, err);
  if (auto published = control.publish_configuration(now_ms()); !published) {
    err << config.source << ": " << published.error().message << std::endl;
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);
  err << "magline: forwarding " << control.publisher().size() << " services on "
      << config.dataplane.ports.size() << " port(s) with " << workers.workers() << " worker(s)";
  for (const PortReport& p : dataplane.ports()) err << "; " << p.name << ": " << p.steering;
  err << std::endl;
  if (auto launched = workers.launch(control.publisher().registry()); !launched) {
    err << "magline: " << launched.error().message << std::endl;
    return 1;
  }
  const WorkerViews views = WorkerViews::of(workers);
  view.set_running(true);
  std::unique_ptr<AdminServer> admin;
  bool failed = false;
  if (config.admin.enabled) {
    auto listening = AdminServer::start(config.admin.address, config.admin.port, views, view);
    if (!listening) {
      err << "magline: " << listening.error().message << std::endl;
      failed = true;
    } else {
      admin = std::move(listening).value();
      err << "magline: admin listener on " << config.admin.address << ":" << admin->port()
          << std::endl;
    }
  }
  if (auto k8s = control.start_kubernetes(); !failed && !k8s) {
    err << "magline: " << k8s.error().message << std::endl;
    failed = true;
  }
  if (!failed) control_loop(control, options.duration_s);
  view.set_running(false);
  workers.stop();
  admin.reset();
  if (failed) return 1;  // it never ran: no counters to report
  nlohmann::ordered_json report = control.report(views);
  report["ports"] = dataplane.ports_json();
  const std::string text = report.dump(2);
  out << text << std::endl;
  if (!options.stats_path.empty()) std::ofstream(options.stats_path) << text << "\n";
  return 0;
}

}  // namespace magline::control
