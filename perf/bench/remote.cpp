#include "perf/bench/remote.hpp"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <httplib.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "dataplane/flow_table.hpp"
#include "perf/bench/child.hpp"
#include "perf/bench/generator.hpp"

namespace magline::bench {

namespace {

constexpr const char* kMaglineMac = "02:00:00:00:01:01";  // Magline's end of the memif
constexpr const char* kTestpmdMac = "02:00:00:00:01:02";

uint64_t tsc() noexcept {
  return rte_get_tsc_cycles();
}

std::string memif_args(const MemifOptions& o, bool server, const std::string& mac) {
  // rsize 12: 4096 slots each way, so that the sink's lcore being preempted for a few hundred
  // microseconds does not make Magline drop (the in-process TX ring is 4x deeper for the same
  // reason). The client's sizes are the ones used.
  return std::string("net_memif0,role=") + (server ? "server" : "client") + ",socket=" + o.socket +
         ",socket-abstract=" + (o.socket_abstract ? "yes" : "no") + ",id=0,rsize=12,mac=" + mac;
}

// ---------------------------------------------------------------------------------------------
// Magline's counters over its admin listener

struct RemoteCounters {
  ForwarderView view;
  uint64_t tx_full = 0, slow_full = 0, to_slow_path = 0, rejected = 0;
  uint64_t reset_removed_backend = 0, rescheduled = 0, stateless = 0;
  uint64_t flows_occupied = 0, flow_capacity = 0;
  std::array<uint64_t, dp::kDropReasonCount> drops{};
};

// Worker 0's counters from `magline run`'s /stats JSON (or its final --stats file).
std::optional<RemoteCounters> parse_stats(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.contains("workers") || j["workers"].empty()) return std::nullopt;
  const auto& w = j["workers"][0];
  RemoteCounters c;
  auto u = [&](const char* k) { return w.value(k, uint64_t(0)); };
  c.view.rx = u("rx_packets");
  c.view.tx = u("tx_packets");
  c.view.polls = u("polls");
  c.view.idle_polls = u("idle_polls");
  c.view.new_connections = u("new_connections");
  c.tx_full = u("tx_full");
  c.slow_full = u("slow_ring_full");
  c.to_slow_path = u("to_slow_path");
  c.rejected = u("rejected");
  c.reset_removed_backend = u("reset_removed_backend");
  c.rescheduled = u("rescheduled");
  c.stateless = u("stateless");
  if (w.contains("flows")) {
    c.flows_occupied = w["flows"].value("occupied", uint64_t(0));
    c.flow_capacity = w["flows"].value("capacity", uint64_t(0));
  }
  if (w.contains("drops")) {
    for (size_t i = 1; i < dp::kDropReasonCount; ++i) {
      const std::string name(dp::drop_reason_name(dp::DropReason(i)));
      if (w["drops"].contains(name)) c.drops[i] = w["drops"][name].get<uint64_t>();
      c.view.drops += c.drops[i];
    }
  }
  return c;
}

// A thread that reads /stats and hands the main lcore each new publication of the worker's
// counters (the worker publishes about every 100 ms), stamped with the TSC at which it was
// first seen. Right after one it sleeps for most of the period, then asks back to back, so
// that the next is seen within about one request's time (the stamp's error, reported).
class StatsPoller {
 public:
  explicit StatsPoller(uint16_t port) : port_(port) {}
  ~StatsPoller() { stop(); }

  void start() {
    thread_ = std::thread([this] { loop(); });
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

  // The newest reading not taken yet (main lcore; locks only when there is one).
  std::optional<ForwarderView> take() {
    if (seq_.load(std::memory_order_acquire) == taken_) return std::nullopt;
    std::lock_guard<std::mutex> lock(mu_);
    taken_ = seq_.load(std::memory_order_relaxed);
    return latest_;
  }

 private:
  void loop() {
    httplib::Client cli("127.0.0.1", port_);
    // A fresh connection per request: on a kept-alive one, the admin listener's response in two
    // writes (headers, body) meets Nagle and this side's delayed ACK, and a request takes 40 ms.
    cli.set_keep_alive(false);
    cli.set_tcp_nodelay(true);
    cli.set_connection_timeout(1, 0);
    cli.set_read_timeout(2, 0);
    const double hz = double(rte_get_tsc_hz());
    uint64_t last_polls = ~0ull;
    uint64_t prev_mid = 0;
    while (!stop_.load()) {
      const uint64_t t0 = tsc();
      auto res = cli.Get("/stats");
      const uint64_t t1 = tsc();
      const uint64_t mid = t0 / 2 + t1 / 2;
      std::optional<RemoteCounters> c;
      if (res && res->status == 200) c = parse_stats(res->body);
      if (!c) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        prev_mid = 0;
        continue;
      }
      if (c->view.polls != last_polls) {
        // Published between the previous request and this one (both read the counters about
        // half-way through): stamp the middle, error half the gap.
        last_polls = c->view.polls;
        const uint64_t err = prev_mid ? mid - prev_mid : mid - t0 + uint64_t(hz / 10);
        c->view.tsc = prev_mid ? prev_mid / 2 + mid / 2 : mid;
        c->view.error = err / 2;
        {
          std::lock_guard<std::mutex> lock(mu_);
          latest_ = c->view;
          seq_.fetch_add(1, std::memory_order_release);
        }
        prev_mid = 0;
        // The next publication is about 100 ms after this one: sleep most of it.
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        continue;
      }
      prev_mid = mid;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  uint16_t port_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::atomic<uint64_t> seq_{0};
  uint64_t taken_ = 0;
  ForwarderView latest_;
};

// ---------------------------------------------------------------------------------------------
// The targets

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tail(const std::string& path, size_t lines) {
  std::vector<std::string> v;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    v.push_back(line);
  std::string out;
  for (size_t i = v.size() > lines ? v.size() - lines : 0; i < v.size(); ++i)
    out += "\n      " + v[i];
  return out;
}

// `magline run` with one memif port, one service and the traffic's backends.
class MaglineProcess final : public Target {
 public:
  MaglineProcess(MemifBed& bed, const RunOptions& o, size_t capacity)
      : bed_(bed), mo_(bed.options()), o_(o), capacity_(capacity) {
    const std::string tag = std::to_string(getpid()) + "-" + std::to_string(++runs_);
    prefix_ = "magline-bench-mg-" + tag;
    config_ = mo_.workdir + "/magline-" + tag + ".json";
    stats_ = mo_.workdir + "/magline-" + tag + ".stats.json";
    log_ = mo_.workdir + "/magline-" + tag + ".log";
  }

  std::string start(RunResult& r) override {
    write_config(o_.traffic.backends);
    r.forwarder_note = mo_.magline + " run --config " + config_ + " (worker on core " +
                       std::to_string(mo_.worker_core) + ", control thread on core " +
                       std::to_string(mo_.main_core) + ")";
    std::string err = child_.spawn({mo_.magline, "run", "--config", config_, "--stats", stats_},
                                   log_, prefix_);
    if (!err.empty()) return err;
    // Ready when the admin listener answers /healthz (the worker runs; its flow table was
    // faulted in before its first loop), and the memif is up.
    httplib::Client cli("127.0.0.1", mo_.admin_port);
    cli.set_connection_timeout(0, 200000);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      if (!child_.running()) {
        return "magline exited (status " + std::to_string(child_.exit_status()) +
               ") before it was ready; its log:" + tail(log_, 8);
      }
      if (auto res = cli.Get("/healthz"); res && res->status == 200) break;
      if (std::chrono::steady_clock::now() > until) return "magline not ready in 120 s";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    bed_.connect();
    if (!bed_.wait_link(10)) return "the memif to magline did not come up in 10 s";
    r.flow_capacity = capacity_;
    r.flow_table_bytes = dp::FlowTable::memory_bytes(capacity_);
    poller_.start();
    return {};
  }

  std::optional<ForwarderView> poll(const GenCounters&) override {
    return poller_.take();
  }

  bool counts_connections() const override { return true; }
  bool resolves_neighbours() const override { return true; }

  void churn() override {
    // A reload with backend N/2 gone: Magline's SIGHUP path (docs/cli.md), as an operator does.
    write_config(o_.traffic.backends, o_.traffic.backends / 2);
    child_.signal(SIGHUP);
  }

  void stop(RunResult& r, const GenCounters&) override {
    poller_.stop();
    if (!child_.running()) return;
    r.forwarder_rss_bytes = child_.peak_rss();
    if (!child_.stop(SIGTERM, 15)) {
      if (r.error.empty()) r.error = "magline did not stop on SIGTERM in 15 s (killed)";
      return;
    }
    auto c = parse_stats(read_file(stats_));
    if (!c) {
      if (r.error.empty()) r.error = "no final counters in " + stats_ + tail(log_, 8);
      return;
    }
    r.total.rx = c->view.rx;
    r.total.tx = c->view.tx;
    r.total.polls = c->view.polls;
    r.total.idle_polls = c->view.idle_polls;
    r.total.new_connections = c->view.new_connections;
    r.total.drops = c->view.drops;
    r.drops = c->drops;
    r.tx_full = c->tx_full;
    r.slow_full = c->slow_full;
    r.to_slow_path = c->to_slow_path;
    r.rejected = c->rejected;
    r.reset_removed_backend = c->reset_removed_backend;
    r.rescheduled = c->rescheduled;
    r.stateless = c->stateless;
    r.flows_occupied = c->flows_occupied;
    if (c->flow_capacity) r.flow_capacity = c->flow_capacity;
  }

  ~MaglineProcess() override {
    poller_.stop();
    child_.stop(SIGTERM, 5);
    if (!mo_.keep_workdir) {
      std::error_code ignored;
      for (const std::string& f : {config_, stats_, log_})
        std::filesystem::remove(f, ignored);
    }
  }

 private:
  void write_config(uint32_t backends, uint32_t without = ~0u) {
    const TrafficSpec& t = o_.traffic;
    nlohmann::ordered_json be = nlohmann::ordered_json::array();
    for (uint32_t b = 0; b < backends; ++b) {
      if (b == without) continue;
      be.push_back({{"address", dp::to_string(backend_address(t.ipv6, b))}, {"port", kBackendPort}});
    }
    nlohmann::ordered_json j;
    j["flow_table"] = {{"capacity", capacity_}};
    j["admin"] = {{"address", "127.0.0.1"}, {"port", mo_.admin_port}};
    j["dataplane"] = {
        {"main_core", mo_.main_core},
        {"worker_cores", {mo_.worker_core}},
        {"hugepages", false},
        {"memory_mb", 512},
        {"eal_args", {"--file-prefix", prefix_}},
        {"ports",
         {{{"name", "memif0"},
           {"device", bed_.peer_devargs(kMaglineMac)},
           {"addresses",
            {dp::to_string(lb_address(false)) + "/16", dp::to_string(lb_address(true)) + "/64"}}}}}};
    j["services"] = {{{"name", "bench/vip:80"},
                      {"frontends",
                       {{{"address", dp::to_string(vip_address(t.ipv6))},
                         {"port", kVipPort},
                         {"protocol", t.udp ? "udp" : "tcp"}}}},
                      {"backends", be}}};
    // Written whole, then renamed: a SIGHUP never reads half a file.
    std::ofstream(config_ + ".tmp") << j.dump(2) << "\n";
    std::filesystem::rename(config_ + ".tmp", config_);
  }

  static inline unsigned runs_ = 0;
  MemifBed& bed_;
  const MemifOptions& mo_;
  const RunOptions& o_;
  size_t capacity_;
  std::string prefix_, config_, stats_, log_;
  Child child_;
  StatsPoller poller_{mo_.admin_port};
};

// dpdk-testpmd --forward-mode=macswap on a memif port: seen through the generator's counters
// (frames sent, echoes back), which it can read at any time; its final forward statistics give
// the totals.
class TestpmdProcess final : public Target {
 public:
  TestpmdProcess(MemifBed& bed) : bed_(bed), mo_(bed.options()) {
    const std::string tag = std::to_string(getpid()) + "-" + std::to_string(++runs_);
    prefix_ = "magline-bench-tp-" + tag;
    log_ = mo_.workdir + "/testpmd-" + tag + ".log";
  }

  std::string start(RunResult& r) override {
    const std::vector<std::string> argv = {
        mo_.testpmd,       "-l",
        std::to_string(mo_.main_core) + "," + std::to_string(mo_.worker_core),
        "--main-lcore",    std::to_string(mo_.main_core),
        "--no-huge",       "-m",
        "512",             "--no-shconf",
        "--no-pci",        "--no-telemetry",
        "--file-prefix",   prefix_,
        "--vdev",          bed_.peer_devargs(kTestpmdMac),
        "--",              "--forward-mode=macswap",
        "--auto-start",    "--stats-period",
        "1",               "--nb-cores=1",
        "--total-num-mbufs=32768"};
    r.forwarder_note = "dpdk-testpmd macswap on net_memif, forwarding core " +
                       std::to_string(mo_.worker_core) + ", main lcore " +
                       std::to_string(mo_.main_core) + " (sleeps)";
    std::string err = child_.spawn(argv, log_, prefix_);
    if (!err.empty()) return err;
    // testpmd listens (or connects) once its EAL is up: a client here tries again every second.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      bed_.connect();
      if (bed_.wait_link(1)) break;
      if (!child_.running()) {
        return "testpmd exited (status " + std::to_string(child_.exit_status()) +
               ") before its memif came up; its log:" + tail(log_, 8);
      }
      if (std::chrono::steady_clock::now() > until) return "the memif to testpmd did not come up";
    }
    // Forwarding starts after the link: give it a moment.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return {};
  }

  std::optional<ForwarderView> poll(const GenCounters& g) override {
    return ForwarderView{g.injected, g.echo_rx, 0, 0, 0, 0, 0, 0};
  }
  bool counts_connections() const override { return false; }

  void stop(RunResult& r, const GenCounters& g) override {
    if (!child_.running()) return;
    r.forwarder_rss_bytes = child_.peak_rss();
    child_.stop(SIGINT, 10);
    // "RX-packets: N  RX-dropped: N  RX-total: N" then "TX-packets: N  TX-dropped: N ..." for
    // the port, at exit; the last ones are the totals.
    const std::string log = read_file(log_);
    const std::regex rx(R"(RX-packets:\s+(\d+)\s+RX-dropped:\s+(\d+))");
    const std::regex tx(R"(TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+))");
    std::smatch m;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), rx); it != std::sregex_iterator();
         ++it) {
      r.total.rx = std::stoull((*it)[1]) + std::stoull((*it)[2]);
    }
    for (auto it = std::sregex_iterator(log.begin(), log.end(), tx); it != std::sregex_iterator();
         ++it) {
      r.total.tx = std::stoull((*it)[1]);
      r.tx_full = std::stoull((*it)[2]);
    }
    if (r.total.rx == 0 && g.injected > 0 && r.error.empty()) {
      r.error = "no forward statistics in testpmd's output" + tail(log_, 8);
    }
  }

  ~TestpmdProcess() override {
    child_.stop(SIGINT, 5);
    if (!mo_.keep_workdir) {
      std::error_code ignored;
      std::filesystem::remove(log_, ignored);
    }
  }

 private:
  static inline unsigned runs_ = 0;
  MemifBed& bed_;
  const MemifOptions& mo_;
  std::string prefix_, log_;
  Child child_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// MemifBed

Result<std::unique_ptr<MemifBed>> MemifBed::create(const MemifOptions& o) {
  std::unique_ptr<MemifBed> bed(new MemifBed);
  bed->o_ = o;
  auto pool = dpdk::PktPool::create("mbench", 32767);
  if (!pool) return pool.error();
  bed->pool_.emplace(std::move(pool).value());
  dpdk::PortConfig pc;
  pc.device = "net_memif0";
  pc.devargs = memif_args(o, o.server, dp::to_string(kClientMac));
  pc.rss = dpdk::RssMode::off;
  pc.mtu = 0;
  auto port = dpdk::Port::open(pc, bed->pool_->get());
  if (!port) return port.error();
  bed->port_.emplace(std::move(port).value());
  // A server listens from now on; a client connects when started, after its peer listens.
  if (o.server) {
    if (auto started = bed->port_->start(); !started) return started.error();
  }
  return bed;
}

MemifBed::~MemifBed() {
  port_.reset();
  pool_.reset();
  if (!o_.socket_abstract && o_.server) {
    std::error_code ignored;
    std::filesystem::remove(o_.socket, ignored);
  }
}

std::string MemifBed::peer_devargs(const std::string& mac) const {
  return memif_args(o_, !o_.server, mac);
}

void MemifBed::connect() {
  if (o_.server) return;
  // The client connects on start; the peer is a new process each run.
  port_->stop();
  (void)port_->start();
}

bool MemifBed::wait_link(double seconds) {
  const uint64_t until = tsc() + uint64_t(seconds * double(rte_get_tsc_hz()));
  do {
    if (port_->link().up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (tsc() < until);
  return false;
}

void MemifBed::drain() noexcept {
  rte_mbuf* m[64];
  while (const uint16_t n = rte_eth_rx_burst(port_->id(), 0, m, 64))
    rte_pktmbuf_free_bulk(m, n);
}

RunResult run_memif(MemifBed& bed, const RunOptions& o) {
  const TrafficSpec& t = o.traffic;
  const size_t capacity = o.flow_capacity != 0 ? o.flow_capacity : default_flow_capacity(t);
  const dp::MacAddr peer =
      *dp::parse_mac(o.forwarding == Forwarding::testpmd_macswap ? kTestpmdMac : kMaglineMac);
  RunResult r;
  if (o.forwarding == Forwarding::testpmd_macswap) {
    TestpmdProcess target(bed);
    r = run_target(target, Link::port(bed.port_id()), peer, bed.pool(), o);
  } else {
    MaglineProcess target(bed, o, capacity);
    r = run_target(target, Link::port(bed.port_id()), peer, bed.pool(), o);
  }
  bed.drain();
  return r;
}

}  // namespace magline::bench
