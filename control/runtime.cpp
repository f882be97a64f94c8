#include "control/runtime.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <thread>

#include "config/config.hpp"
#include "control/admin.hpp"
#include "control/control_thread.hpp"
#include "control/dpdk_dataplane.hpp"
#include "control/k8s_provider.hpp"
#include "control/preflight.hpp"
#include "control/sd_notify.hpp"
#include "control/stats.hpp"
#include "control/supervision.hpp"
#include "dataplane/dpdk/eal.hpp"

namespace magline::control {

namespace {

// Pins the calling thread to `cpus`; the threads it starts afterwards inherit them.
Result<void> bind_this_thread(const std::set<uint32_t>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t c : cpus) {
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  }
  if (const int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0) {
    return Error{"cannot run the control threads on CPUs " + cpu_list(cpus) + ": " +
                 std::strerror(rc)};
  }
  return {};
}

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

// The control thread's loop on the main core until SIGTERM or SIGINT (or the duration). The
// ports' counters go to the admin listener every 250 ms: the device is read here, on the main
// lcore, never from the listener's thread.
//
// With BGP, the stop drains (docs/announce.md): every address is withdrawn, and forwarding goes
// on for `drain_ms` once BIRD has taken the withdrawal (or 2 s after asking, if it does not
// answer), so that routers move the traffic elsewhere before the node goes. With the L2
// speaker, `handover` gives this node's Leases up at once (the other nodes take its addresses
// over and announce them at their next retry), and forwarding goes on for `drain_ms` too.
void control_loop(ControlThread& control, const DpdkDataplane& dataplane,
                  const DpdkWorkers& workers, AdminView& view, Supervision& supervision,
                  double duration_s, uint32_t drain_ms, const std::function<void()>& handover,
                  std::ostream& err) {
  const uint64_t start = now_ms();
  // A duration past what a uint64_t of ms holds (1e300 s) is forever, not an overflow.
  const double ms = duration_s * 1000;
  const uint64_t deadline = ms > 0 && ms < 1e18 ? start + uint64_t(ms) : 0;
  control.announce(start);
  uint64_t ports_read = 0;
  view.update_ports(dataplane.port_counters());
  Supervision::Facts facts;
  facts.progress.resize(workers.workers());
  facts.failed.resize(workers.workers());
  DataplaneHealth health;
  std::vector<bool> links_up;
  std::vector<std::string> port_names;
  for (const PortReport& p : dataplane.ports()) port_names.push_back(p.name);
  Announcer* const announcer = control.announcer();
  uint64_t drain_asked = 0, drain_from = 0;  // when the drain was asked for, and began
  while (true) {
    const uint64_t now = now_ms();
    if ((g_stop.load() || (deadline && now >= deadline)) && drain_asked == 0) {
      if (announcer == nullptr && !handover) break;
      drain_asked = now;
      supervision.stopping();
      err << "magline: stopping: "
          << (announcer ? "withdrawing every address" : "handing the addresses over")
          << ", then draining for " << drain_ms << " ms" << std::endl;
      if (announcer) control.drain();
      if (handover) handover();
    }
    if (drain_asked != 0) {
      if (drain_from == 0 &&
          (!announcer || announcer->in_effect() || now >= drain_asked + 2000)) {
        drain_from = now;
      }
      if (drain_from != 0 && now >= drain_from + drain_ms) break;
    }
    if (now >= ports_read + 250) {
      ports_read = now;
      std::vector<PortCounters> ports = dataplane.port_counters();
      links_up.clear();
      for (const PortCounters& p : ports) links_up.push_back(!p.read || p.link_up);
      view.update_ports(std::move(ports));
    }
    control.turn(now, g_reload.exchange(false));
    facts.ready = control.ready();
    view.set_ready(facts.ready);
    for (size_t w = 0; w < workers.workers(); ++w) {
      facts.progress[w] = workers.share(w).version();
      facts.failed[w] = workers.failed(w);
    }
    health.turn(now, facts.progress, facts.failed, links_up, port_names);
    control.announce_turn(now, health.why());
    supervision.turn(now, facts);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  supervision.stopping();
}

// What systemd asked for in the environment (sd_notify.hpp); nothing to send to when not run by
// it. Errors: a malformed $NOTIFY_SOCKET or $WATCHDOG_USEC.
struct Notify {
  std::optional<NotifySocket> socket;
  std::optional<uint64_t> watchdog_usec;
};
Result<Notify> notify_of_environment() {
  const auto env = [](const char* n) { return std::getenv(n); };
  auto socket = NotifySocket::from_environment(env);
  if (!socket) return socket.error();
  auto usec = watchdog_usec(env, long(::getpid()));
  if (!usec) return usec.error();
  return Notify{std::move(socket).value(), *usec};
}

// Whether `path` can be written at the end without touching it now (a failed start must not
// have emptied a previous run's file): an existing file writable and not a directory, or a new
// one in a directory that takes it. The reason when not.
Result<void> writable(const std::string& path) {
  auto fail = [](int e) { return Error{std::strerror(e)}; };
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return fail(EISDIR);
    if (::access(path.c_str(), W_OK) != 0) return fail(errno);
    return {};
  }
  if (errno != ENOENT) return fail(errno);
  const std::string dir = std::filesystem::path(path).parent_path().string();
  if (::access(dir.empty() ? "." : dir.c_str(), W_OK | X_OK) != 0) return fail(errno);
  return {};
}

// Writes the whole text or says why not.
Result<void> write_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return Error{std::strerror(errno)};
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int e = written ? 0 : errno;
  if (std::fclose(f) != 0 && e == 0) e = errno;  // a full disk often shows only here
  if (!written || e != 0) return Error{std::strerror(e != 0 ? e : EIO)};
  return {};
}

}  // namespace

int run(const RunOptions& options, std::ostream& out, std::ostream& err_stream) {
  // Every line below is a record of the log (control/log.hpp): whole, in the chosen format.
  LogSink sink(err_stream, options.log_format, options.log_level);
  LogStream err(sink);
  std::unique_ptr<LogStream> provider_log;  // the provider thread's; outlives the provider
  // Before anything starts: a run whose counters cannot be kept is refused at once, not after.
  if (!options.stats_path.empty()) {
    if (auto ok = writable(options.stats_path); !ok) {
      err << log_error << "magline: --stats " << options.stats_path
          << ": cannot write: " << ok.error().message
          << std::endl;
      return 1;
    }
  }
  auto notify = notify_of_environment();
  if (!notify) {
    err << log_error << "magline: " << notify.error().message << std::endl;
    return 1;
  }
  auto loaded = cfg::load_or_default(options.config_path);
  if (!loaded) {
    err << log_error << loaded.error().message << std::endl;
    return 1;
  }
  const cfg::Config config = std::move(loaded).value();
  if (config.dataplane.ports.empty()) {
    err << log_error << config.source
        << ": dataplane.ports is empty: magline run needs at least one port"
        << std::endl;
    return 1;
  }
  // Everything that can be known before DPDK starts (`check` runs the same): a core this
  // process may not use would otherwise be the EAL's usage text, a missing CA file a watch
  // that retries forever after the ports are up.
  const HostFacts host = HostFacts::of_this_process();
  if (auto ok = preflight(config, host); !ok) {
    err << log_error << ok.error().message << std::endl;
    return 1;
  }
  for (const std::string& w : af_packet_warnings(config)) {
    err << log_warning << config.source << ": " << w << std::endl;
  }
  // The admin address before DPDK too: a port taken is one line, with nothing started. The
  // socket listens from here; requests wait until the workers run.
  std::unique_ptr<AdminServer> admin;
  if (config.admin.enabled) {
    auto bound = AdminServer::bind(config.admin.address, config.admin.port);
    if (!bound) {
      err << log_error << "magline: " << bound.error().message << std::endl;
      return 1;
    }
    admin = std::move(bound).value();
  }
  // DPDK's own lines join the log, in its format; back to standard error once the EAL is gone
  // (the guard goes after the dataplane: declared before it).
  dpdk::set_log_writer([&sink](uint32_t level, std::string_view line) {
    sink.write(level <= dpdk::kLogError     ? LogLevel::error
               : level == dpdk::kLogWarning ? LogLevel::warning
               : level >= dpdk::kLogDebug   ? LogLevel::debug
                                            : LogLevel::info,
               line);
  });
  struct DpdkLogRestore {
    ~DpdkLogRestore() { dpdk::set_log_writer(nullptr); }
  } dpdk_log_restore;
  auto started = DpdkDataplane::start(config);
  if (!started) {
    err << log_error << "magline: " << started.error().message << std::endl;
    return 1;
  }
  DpdkDataplane& dataplane = **started;
  // The EAL pinned this thread to the main core; every thread it starts from here inherits
  // the control CPUs instead, and the Maglev builders are as many (at most 8).
  const std::set<uint32_t> control_set = control_cpus(host.cpus, config.dataplane);
  if (auto bound = bind_this_thread(control_set); !bound) {
    err << log_warning << "magline: " << bound.error().message << std::endl;  // the main core stays
  }
  DpdkWorkers& workers = dataplane.workers();
  AdminView view;
  BuildInfo build = build_info();
  build.dpdk = dpdk::version();
  view.set_static(std::move(build), dataplane.ports(), {{"dpdk", dataplane.dpdk_json()}});
  if (auto warning = dataplane.warning()) {
    err << log_warning << "magline: " << *warning << std::endl;
  }
  ControlThread control(config, options.config_path, dataplane.node(), workers, view, err);
  control.publisher().set_builder_threads(control_set.size());
  if (auto published = control.publish_configuration(now_ms()); !published) {
    err << log_error << config.source << ": " << published.error().message << std::endl;
    return 1;
  }
  if (auto opened = control.open_kernel_interfaces(); !opened) {
    err << log_error << "magline: " << opened.error().message << std::endl;
    return 1;
  }
  if (auto announcing = control.start_announcing(); !announcing) {
    err << log_error << "magline: " << announcing.error().message << std::endl;
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGHUP, on_signal);
  err << "magline: forwarding " << control.publisher().size() << " services on "
      << config.dataplane.ports.size() << " port(s) with " << workers.workers() << " worker(s)";
  const std::vector<std::string> kernel = control.kernel_interfaces();
  for (size_t i = 0; i < dataplane.ports().size(); ++i) {
    const PortReport& p = dataplane.ports()[i];
    err << "; " << p.name << ": " << p.steering;
    if (i < kernel.size() && !kernel[i].empty()) err << ", kernel interface " << kernel[i];
  }
  err << std::endl;
  if (auto launched = workers.launch(control.publisher().registry()); !launched) {
    err << log_error << "magline: " << launched.error().message << std::endl;
    return 1;
  }
  const WorkerViews views = WorkerViews::of(workers);
  // Serving reads `views` and `view`: it stops before they go, however this function ends.
  struct AdminStop {
    std::unique_ptr<AdminServer>& admin;
    ~AdminStop() { admin.reset(); }
  } admin_stop{admin};
  view.set_running(true);
  if (admin) {
    admin->serve(views, view);
    err << "magline: admin listener on " << config.admin.address << ":" << admin->port()
        << std::endl;
  }
  bool failed = false;
  // The provider reads every Service from the feed's watch: one LIST at a start, one WATCH.
  std::shared_ptr<k8s::EventQueue> provider_services;
  if (Provider::wanted(config)) provider_services = std::make_shared<k8s::EventQueue>();
  if (auto k8s = control.start_kubernetes(provider_services); !k8s) {
    err << log_error << "magline: " << k8s.error().message << std::endl;
    failed = true;
  }
  // Shared with the admin listener, which reads its report at each request.
  std::shared_ptr<Provider> provider;
  if (!failed && Provider::wanted(config)) {
    ProviderOptions po;
    po.services = std::move(provider_services);
    po.forwarding_ready = [&view] { return view.ready(); };
    // Its thread writes its own lines: a stream of its own on the same log.
    provider_log = std::make_unique<LogStream>(sink);
    auto started_provider =
        Provider::start(config, control.forwarded(), *provider_log, std::move(po));
    if (!started_provider) {
      err << log_error << "magline: " << started_provider.error().message << std::endl;
      failed = true;
    } else {
      provider = std::move(started_provider).value();
      view.set_provider([provider] { return provider->report(); });
      if (config.provider.l2_speaker) {
        control.speak_l2(provider->identity(), [provider] {
          return ControlThread::L2Facts{provider->live_nodes(), provider->holds_own_lease()};
        });
      }
    }
  }
  // The stop's drain: BGP's, and with the L2 speaker two retry periods (the other nodes see
  // this one gone and announce its addresses within one).
  uint32_t drain_ms = config.bgp.enabled ? config.bgp.drain_ms : 0;
  // The hand-over writes the Leases (each write bounded by the renew deadline): on a thread of
  // its own, so that the control thread goes on serving the workers meanwhile.
  std::function<void()> handover;
  std::thread handing_over;
  if (provider && config.provider.l2_speaker) {
    drain_ms = std::max(drain_ms, 2 * config.provider.election.retry_period_ms);
    handover = [provider, &handing_over] {
      handing_over = std::thread([provider] { provider->stop(); });
    };
  }
  if (!failed) {
    // A notification that cannot be sent is said once; forwarding goes on regardless.
    bool send_failed = false;
    Supervision supervision(
        [&](const std::string& state) {
          if (!notify->socket) return;
          if (auto sent = notify->socket->send(state); !sent && !send_failed) {
            err << log_warning << "magline: $NOTIFY_SOCKET " << notify->socket->address()
                << ": cannot send: " << sent.error().message << std::endl;
            send_failed = true;
          }
        },
        notify->socket ? notify->watchdog_usec : std::optional<uint64_t>(),
        "forwarding on " + std::to_string(config.dataplane.ports.size()) + " port(s) with " +
            std::to_string(workers.workers()) + " worker(s)",
        err);
    control_loop(control, dataplane, workers, view, supervision, options.duration_s, drain_ms,
                 handover, err);
  }
  view.set_ready(false);
  if (handing_over.joinable()) handing_over.join();
  if (provider) provider->stop();
  view.set_running(false);
  workers.stop();
  admin.reset();
  if (failed) return 1;  // it never ran: no counters to report
  nlohmann::ordered_json report = control.report(views);
  report["ports"] = ports_json(dataplane.ports(), dataplane.port_counters());
  report["dpdk"] = dataplane.dpdk_json();
  const std::string text = report.dump(2);
  out << text << std::endl;
  if (!options.stats_path.empty()) {
    if (auto written = write_file(options.stats_path, text + "\n"); !written) {
      err << log_error << "magline: --stats " << options.stats_path
          << ": cannot write: " << written.error().message << std::endl;
      return 1;
    }
  }
  return 0;
}

}  // namespace magline::control
