#include "perf/bench/engine.hpp"

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <string>

#include "control/publisher.hpp"
#include "control/dpdk_workers.hpp"
#include "dataplane/worker.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/parse.hpp"
#include "perf/bench/generator.hpp"

namespace magline::bench {

// ---------------------------------------------------------------------------------------------
// Testbed

Result<std::unique_ptr<Testbed>> Testbed::create(uint32_t ring_size) {
  std::unique_ptr<Testbed> bed(new Testbed);
  bed->ring_size_ = ring_size;
  // Magline's TX ring is four times its RX ring: it absorbs the sink's lcore being preempted
  // for a few hundred microseconds (the kernel's own threads do that here), which would
  // otherwise make Magline count tx_full drops that are the test bed's. The pool holds both
  // rings, Magline's in-flight burst, the sink's held replies and two lcore caches.
  const uint32_t mbufs = std::max<uint32_t>(16383, 8 * ring_size - 1);
  auto pool = dpdk::PktPool::create("mbench", mbufs);
  if (!pool) return pool.error();
  bed->pool_.emplace(std::move(pool).value());
  const unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
  bed->to_lb_ = rte_ring_create("mbench_to_lb", ring_size, SOCKET_ID_ANY, flags);
  bed->from_lb_ = rte_ring_create("mbench_from_lb", 4 * ring_size, SOCKET_ID_ANY, flags);
  if (bed->to_lb_ == nullptr || bed->from_lb_ == nullptr) {
    return Error{"cannot create rings of " + std::to_string(ring_size) + " (a power of two?)"};
  }
  // Magline receives from to_lb and transmits into from_lb.
  if (rte_eth_from_rings("mbench", &bed->to_lb_, 1, &bed->from_lb_, 1, SOCKET_ID_ANY) < 0) {
    return Error{"rte_eth_from_rings failed: " + dpdk::last_error()};
  }
  dpdk::PortConfig pc;
  pc.device = "net_ring_mbench";
  pc.rss = dpdk::RssMode::off;
  auto port = dpdk::Port::open(pc, bed->pool_->get());
  if (!port) return port.error();
  bed->port_.emplace(std::move(port).value());
  if (auto started = bed->port_->start(); !started) return started.error();
  return bed;
}

void Testbed::drain() noexcept {
  void* m[64];
  for (rte_ring* r : {to_lb_, from_lb_}) {
    while (const unsigned n = rte_ring_dequeue_burst(r, m, 64, nullptr)) {
      rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(m), n);
    }
  }
}

Testbed::~Testbed() {
  drain();
  port_.reset();
  rte_ring_free(to_lb_);
  rte_ring_free(from_lb_);
  pool_.reset();
}

namespace {

// ---------------------------------------------------------------------------------------------
// The forwarders on the worker lcore

// The baseline: what testpmd's macswap does, on the same port and rings as Magline.
struct MacswapJob {
  uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rx{0}, tx{0}, polls{0}, idle_polls{0};
};

int macswap_main(void* arg) {
  auto& job = *static_cast<MacswapJob*>(arg);
  rte_mbuf* m[32];
  uint64_t rx = 0, tx = 0, polls = 0, idle = 0;
  while (!job.stop.load(std::memory_order_relaxed)) {
    const uint16_t n = rte_eth_rx_burst(job.port, 0, m, 32);
    ++polls;
    if (n == 0) {
      ++idle;
    } else {
      for (uint16_t i = 0; i < n; ++i) {
        auto* eth = rte_pktmbuf_mtod(m[i], uint8_t*);
        uint8_t tmp[6];
        std::memcpy(tmp, eth, 6);
        std::memcpy(eth, eth + 6, 6);
        std::memcpy(eth + 6, tmp, 6);
      }
      const uint16_t sent = rte_eth_tx_burst(job.port, 0, m, n);
      if (sent < n) rte_pktmbuf_free_bulk(m + sent, n - sent);
      rx += n;
      tx += sent;
    }
    // One relaxed store each per poll: the main lcore reads them at the window's edges.
    job.rx.store(rx, std::memory_order_relaxed);
    job.tx.store(tx, std::memory_order_relaxed);
    job.polls.store(polls, std::memory_order_relaxed);
    job.idle_polls.store(idle, std::memory_order_relaxed);
  }
  return 0;
}

// Magline: a node with one port, one service, the backends' neighbours, and the worker built
// by DpdkWorkers, as `magline run` builds it (control/dpdk_workers.hpp).
struct MaglineSide {
  dp::Node node;
  dp::Service service;
  std::unique_ptr<control::Publisher> publisher;
  dp::SingleWorker steering;
  std::unique_ptr<control::DpdkWorkers> workers;
  // Replaced service states stay alive until the worker has stopped: simpler than grace
  // periods, and just as safe.
  std::vector<std::shared_ptr<const dp::ServiceState>> retired;
  std::vector<dp::Update> churn_updates;
  uint64_t sent = 0;  // updates enqueued

  std::string setup(const RunOptions& o, const Testbed& bed, size_t capacity) {
    const TrafficSpec& t = o.traffic;
    dp::NodePort p;
    p.id = 0;
    p.name = "ring0";
    p.mac = bed.lb_mac();
    p.addrs = {{lb_address(false), 16}, {lb_address(true), 64}};
    node.ports.push_back(p);
    service.name = "bench/vip:80";
    service.frontends = {{vip_address(t.ipv6), kVipPort,
                          t.udp ? dp::Protocol::udp : dp::Protocol::tcp,
                          dp::FrontendKind::load_balancer}};
    for (uint32_t b = 0; b < t.backends; ++b) {
      service.backends.push_back({backend_address(t.ipv6, b), kBackendPort, 1, {}});
    }
    publisher = std::make_unique<control::Publisher>(node);
    auto change = publisher->update({service}, {}, 0);
    if (!change) return "publish: " + change.error().message;
    std::vector<dp::Update> ups = change->updates;
    for (uint32_t b = 0; b < t.backends; ++b) {
      dp::Update u;
      u.kind = dp::Update::Kind::neighbor;
      u.neighbor = {backend_address(t.ipv6, b), kBackendMac, 0, true};
      ups.push_back(u);
    }
    control::WorkerSetup ws;
    ws.forwarder.flow_capacity = capacity;
    ws.node = &node;
    ws.steering = &steering;
    ws.port_ids = {bed.port_id()};
    ws.lcores = {o.worker_lcore};
    ws.update_ring = uint32_t(ups.size() + 1024);
    auto built = control::DpdkWorkers::create(ws, bed.pool());
    if (!built) return "cannot build the worker: " + built.error().message;
    workers = std::move(built).value();
    if (workers->send_updates(0, ups.data(), uint32_t(ups.size())) != ups.size()) {
      return "update ring too small";
    }
    sent = ups.size();
    if (t.churn) {
      dp::Service smaller = service;
      smaller.backends.erase(smaller.backends.begin() + t.backends / 2);
      auto next = publisher->update({smaller}, {}, 0);
      if (!next) return "churn: " + next.error().message;
      churn_updates = next->updates;
      for (auto& r : next->retired) retired.push_back(std::move(r));
    }
    return {};
  }

  void send_churn() {
    sent += workers->send_updates(0, churn_updates.data(), uint32_t(churn_updates.size()));
  }
};

uint64_t tsc() noexcept {
  return rte_get_tsc_cycles();
}

// This process's resident memory (VmRSS), bytes: the flow table is faulted in whole.
uint64_t resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

uint64_t sum_drops(const dp::ForwarderCounters& c) {
  uint64_t s = 0;
  for (uint64_t d : c.drops)
    s += d;
  return s;
}

ForwarderView view_of(const dp::WorkerCounters& c) {
  return {c.forwarder.rx_packets, c.forwarder.tx_packets, c.io.polls, c.io.idle_polls,
          c.forwarder.new_connections, sum_drops(c.forwarder)};
}

// Magline's worker on the worker lcore, in this process. Its counters are read when they
// change: the worker publishes a copy about every 100 ms (a seqlock), so a window runs from one
// publication to another and its edges are exact to the main lcore's loop time.
class InProcessMagline final : public Target {
 public:
  InProcessMagline(const Testbed& bed, const RunOptions& o, size_t capacity)
      : bed_(bed), o_(o), capacity_(capacity) {}

  std::string start(RunResult& r) override {
    std::string err = side_.setup(o_, bed_, capacity_);
    if (!err.empty()) return err;
    if (auto launched = side_.workers->launch(side_.publisher->registry()); !launched) {
      return launched.error().message;
    }
    // The worker builds its forwarder (and faults its flow table in) before its first loop.
    const uint64_t hz = rte_get_tsc_hz();
    const uint64_t until = tsc() + 30 * hz;
    while (side_.workers->applied(0) < side_.sent) {
      if (tsc() > until || side_.workers->failed(0)) {
        return "the worker did not start (or did not apply its updates in 30 s)";
      }
      rte_pause();
    }
    r.flow_capacity = capacity_;
    r.flow_table_bytes = dp::FlowTable::memory_bytes(capacity_);
    return {};
  }

  std::optional<ForwarderView> poll(const GenCounters&) override {
    const uint64_t seq = side_.workers->share(0).version();
    if (seq == last_seq_ || (seq & 1)) return std::nullopt;
    last_seq_ = seq;
    return view_of(side_.workers->share(0).read());
  }

  bool counts_connections() const override { return true; }
  void churn() override { side_.send_churn(); }

  void stop(RunResult& r, const GenCounters&) override {
    if (!side_.workers || !side_.workers->running()) return;
    r.forwarder_rss_bytes = resident_bytes();  // before the worker frees its flow table
    side_.workers->stop();
    const dp::WorkerCounters c = side_.workers->share(0).read();
    const dp::ForwarderCounters& f = c.forwarder;
    const ForwarderView v = view_of(c);
    r.total.rx = v.rx;
    r.total.tx = v.tx;
    r.total.polls = v.polls;
    r.total.idle_polls = v.idle_polls;
    r.total.new_connections = v.new_connections;
    r.total.drops = v.drops;
    r.drops = f.drops;
    r.tx_full = c.io.tx_full;
    r.slow_full = c.io.slow_full;
    r.to_slow_path = f.to_slow_path;
    r.rejected = f.rejected;
    r.reset_removed_backend = f.reset_removed_backend;
    r.rescheduled = f.rescheduled;
    r.stateless = f.stateless;
    r.flows_occupied = c.flows.occupied;
    dp::SlowPacket sp;
    while (side_.workers->receive_slow(0, &sp, 1) == 1) {
      ++r.slow_received;
      dpdk::free_packet(sp.pkt);
    }
  }

 private:
  const Testbed& bed_;
  const RunOptions& o_;
  size_t capacity_;
  MaglineSide side_;  // stops the worker when it goes
  uint64_t last_seq_ = 0;
};

// The baseline's MAC swap on the worker lcore: its counters can be read at any time.
class InProcessMacswap final : public Target {
 public:
  InProcessMacswap(const Testbed& bed, unsigned lcore) : lcore_(lcore) { job_.port = bed.port_id(); }

  std::string start(RunResult&) override {
    if (rte_eal_remote_launch(macswap_main, &job_, lcore_) != 0) {
      return "cannot launch the baseline on lcore " + std::to_string(lcore_);
    }
    launched_ = true;
    return {};
  }
  std::optional<ForwarderView> poll(const GenCounters&) override { return view(); }
  bool counts_connections() const override { return false; }
  void stop(RunResult& r, const GenCounters&) override {
    if (!launched_) return;
    job_.stop.store(true);
    rte_eal_wait_lcore(lcore_);
    launched_ = false;
    const ForwarderView v = view();
    r.total.rx = v.rx;
    r.total.tx = v.tx;
    r.total.polls = v.polls;
    r.total.idle_polls = v.idle_polls;
    r.tx_full = v.rx - v.tx;
  }
  ~InProcessMacswap() override {
    if (launched_) {
      job_.stop.store(true);
      rte_eal_wait_lcore(lcore_);
    }
  }

 private:
  ForwarderView view() const noexcept {
    return {job_.rx.load(std::memory_order_relaxed),
            job_.tx.load(std::memory_order_relaxed),
            job_.polls.load(std::memory_order_relaxed),
            job_.idle_polls.load(std::memory_order_relaxed),
            0,
            0};
  }
  unsigned lcore_;
  MacswapJob job_;
  bool launched_ = false;
};

// A point of the run: the forwarder's counters and the generator's, at one TSC reading.
struct Mark {
  uint64_t tsc = 0;
  ForwarderView fwd;
  GenCounters gen;
};

Mark mark_of(uint64_t now, const ForwarderView& v, const GenCounters& g) {
  return Mark{v.tsc ? v.tsc : now, v, g};
}

Window between(const Mark& a, const Mark& b, double hz) {
  Window w;
  w.cycles = b.tsc - a.tsc;
  w.seconds = double(w.cycles) / hz;
  w.rx = b.fwd.rx - a.fwd.rx;
  w.tx = b.fwd.tx - a.fwd.tx;
  w.polls = b.fwd.polls - a.fwd.polls;
  w.idle_polls = b.fwd.idle_polls - a.fwd.idle_polls;
  w.new_connections = b.fwd.new_connections - a.fwd.new_connections;
  w.drops = b.fwd.drops - a.fwd.drops;
  w.generated = b.gen.generated - a.gen.generated;
  w.injected = b.gen.injected - a.gen.injected;
  w.backpressure = b.gen.backpressure - a.gen.backpressure;
  w.handshakes = b.gen.synack_rx - a.gen.synack_rx;
  w.sink_rx = (b.gen.backend_rx + b.gen.client_rx) - (a.gen.backend_rx + a.gen.client_rx);
  return w;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One run

RunResult run_once(Testbed& bed, const RunOptions& o) {
  bed.drain();
  const TrafficSpec& t = o.traffic;
  const size_t capacity = o.flow_capacity != 0 ? o.flow_capacity : default_flow_capacity(t);
  RunResult r;
  if (o.forwarding == Forwarding::magline) {
    InProcessMagline target(bed, o, capacity);
    r = run_target(target, Link::rings(bed.to_lb(), bed.from_lb()), bed.lb_mac(), bed.pool(), o);
  } else {
    InProcessMacswap target(bed, o.worker_lcore);
    r = run_target(target, Link::rings(bed.to_lb(), bed.from_lb()), bed.lb_mac(), bed.pool(), o);
  }
  bed.drain();
  return r;
}

RunResult run_target(Target& target, const Link& link, const dp::MacAddr& lb_mac,
                     rte_mempool* pool, const RunOptions& o) {
  RunResult r;
  r.options = o;
  r.layout = Layout::of(o.traffic);
  r.hz = double(rte_get_tsc_hz());
  const TrafficSpec& t = o.traffic;
  const bool magline = target.counts_connections();

  Generator gen(t, r.layout, lb_mac, link, pool, o.seed);
  auto fail = [&](std::string why) {
    target.stop(r, gen.counters());
    gen.finish();
    r.error = std::move(why);
    return r;
  };
  r.error = target.start(r);
  if (!r.error.empty()) return fail(r.error);
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t launched = tsc();

  // Across processes Magline learns the backends from their ARP requests (or solicitations)
  // before any traffic, as a real backend's first packet would teach it.
  if (target.resolves_neighbours()) {
    uint32_t next = 0;
    const uint64_t until = tsc() + 2 * hz;
    while ((next < t.backends || gen.counters().neighbour_answers_rx < t.backends) &&
           tsc() < until) {
      if (next < t.backends) next += gen.send_neighbour_requests(next);
      gen.step_idle(tsc());
    }
    if (gen.counters().neighbour_answers_rx < t.backends) {
      return fail("Magline answered " + std::to_string(gen.counters().neighbour_answers_rx) +
                  " of the " + std::to_string(t.backends) + " backends' neighbour requests");
    }
  }

  // Open every established flow: one handshake each (TCP: SYN, SYN-ACK, ACK; UDP: one
  // datagram), in order; wait until every flow's last frame has reached its backend or nothing
  // has for 100 ms. A frame lost on the way (the sink's lcore preempted while Magline's TX ring
  // filled) leaves its flow unopened or half-open, so Magline's own count of connections and the
  // sink's count of completed handshakes decide, and a pass over every flow again opens what is
  // missing (to the others a SYN is a retransmission: they keep their entries and backend).
  if (magline) {
    const uint64_t start = tsc();
    for (int pass = 0; pass < 3; ++pass) {
      gen.restart_warmup();
      const uint64_t before = gen.counters().warmup_received;
      while (!gen.warmup_done())
        gen.step_warmup(tsc());
      uint64_t last = 0, quiet_since = tsc();
      while (gen.counters().warmup_received - before < t.flows && tsc() < quiet_since + hz / 10) {
        gen.step_idle(tsc());
        if (gen.counters().warmup_received != last) {
          last = gen.counters().warmup_received;
          quiet_since = tsc();
        }
      }
      // Two readings: the first may have been published before the last frames arrived.
      const uint64_t until = tsc() + 2 * hz;
      std::optional<ForwarderView> v;
      for (int seen = 0; seen < 2 && tsc() < until;) {
        gen.step_idle(tsc());
        if (auto x = target.poll(gen.counters())) {
          v = x;
          ++seen;
        }
      }
      r.warmup_opened = v ? v->new_connections : 0;
      if (r.warmup_opened >= t.flows && gen.counters().warmup_received - before >= t.flows) break;
    }
    r.warmup_seconds = double(tsc() - start) / double(hz);
  } else {
    r.warmup_opened = t.flows;  // a MAC swap has nothing to open
  }

  // The cost of an idle poll, with no traffic: from the first to the third reading.
  {
    std::optional<Mark> a;
    int seen = 0;
    const uint64_t until = tsc() + 2 * hz;
    const uint64_t min_len = magline ? 0 : hz / 5;  // a MAC swap's counters change every poll
    while (seen < 3 && tsc() < until) {
      const uint64_t now = tsc();
      gen.step_idle(now);
      auto v = target.poll(gen.counters());
      if (!v) continue;
      const Mark m = mark_of(now, *v, {});
      if (!a) {
        a = m;
        seen = 1;
      } else if (m.tsc >= a->tsc + min_len && ++seen == 3) {
        const uint64_t polls = m.fwd.polls - a->fwd.polls;
        if (polls > 0) r.idle_poll_cycles = double(m.tsc - a->tsc) / double(polls);
      }
    }
  }

  // The measurement: the window opens at the first reading and closes at the first reading
  // after traffic.seconds; the churn happens half-way.
  gen.start_measurement(tsc());
  std::optional<Mark> open, close;
  const uint64_t length = uint64_t(t.seconds * double(hz));
  bool churned = false;
  const uint64_t give_up = tsc() + length + 5 * hz;
  // A remote reading's time is known to within its error: the window's edges take readings
  // known to 1 ms, or after a second of none, the next.
  const uint64_t precise = hz / 1000;
  const uint64_t measure_from = tsc();
  while (!close) {
    const uint64_t now = tsc();
    gen.step(now);
    if (now > give_up) break;
    if (open && !churned && t.churn && magline && now >= open->tsc + length / 2) {
      target.churn();
      gen.churn(t.backends / 2);
      churned = true;
    }
    auto v = target.poll(gen.counters());
    if (!v) continue;
    if (!open) {
      if (v->error > precise && now < measure_from + hz) continue;
      open = mark_of(now, *v, gen.counters());
      gen.clear_latency();
    } else if (now >= open->tsc + length) {
      if (v->error > precise && now < open->tsc + length + hz) continue;
      close = mark_of(now, *v, gen.counters());
    }
  }
  if (!close) return fail("the forwarder published no counters during the run");
  r.window = between(*open, *close, double(hz));
  r.window_edge_error_s = double(open->fwd.error + close->fwd.error) / double(hz);

  // Drain: answer what is still in flight until nothing has moved for 20 ms (50 ms across
  // processes, where what is queued at the far end cannot be seen), then stop.
  {
    const uint64_t quiet = link.is_port() ? hz / 20 : hz / 50;
    uint64_t quiet_since = tsc();
    uint64_t last = gen.counters().backend_rx + gen.counters().client_rx;
    while (tsc() < quiet_since + quiet) {
      gen.step_idle(tsc());
      const uint64_t seen = gen.counters().backend_rx + gen.counters().client_rx;
      if (seen != last || link.queued() > 0 || gen.pending() > 0) {
        last = seen;
        quiet_since = tsc();
      }
    }
  }
  const uint64_t stopped = tsc();
  const GenCounters& s = gen.counters();
  target.stop(r, s);
  gen.step_idle(tsc());  // anything transmitted after the last look
  gen.finish();

  r.total.cycles = stopped - launched;
  r.total.seconds = double(r.total.cycles) / double(hz);
  r.total.generated = s.generated;
  r.total.injected = s.injected;
  r.total.backpressure = s.backpressure;
  r.total.handshakes = s.synack_rx;
  r.total.sink_rx = s.backend_rx + s.client_rx;
  r.backend_rx = s.backend_rx;
  r.client_rx = s.client_rx;
  r.syn_sent = s.syn_sent;
  r.synack_sent = s.synack_sent;
  r.synack_rx = s.synack_rx;
  r.finack_sent = s.finack_sent;
  r.ack_sent = s.ack_sent;
  r.udp_answer_sent = s.udp_answer_sent;
  r.udp_answer_rx = s.udp_answer_rx;
  r.fin_rx = s.fin_rx;
  r.fin_back_sent = s.fin_back_sent;
  r.fin_back_rx = s.fin_back_rx;
  r.rst_rx = s.rst_rx;
  r.echo_rx = s.echo_rx;
  r.malformed = s.malformed;
  r.neighbour_rx = s.neighbour_rx;
  r.neighbour_sent = s.neighbour_requests_sent + s.neighbour_answers_sent;
  r.generated_total = s.generated;
  r.injected_total = s.injected;
  r.per_backend = gen.per_backend();
  const LatencyHistogram& one = gen.oneway();
  r.oneway_p50 = one.quantile(0.5);
  r.oneway_p99 = one.quantile(0.99);
  r.oneway_p999 = one.quantile(0.999);
  r.oneway_max = double(one.max());
  r.oneway_samples = one.count();
  const LatencyHistogram& hs = gen.handshake();
  r.handshake_p50 = hs.quantile(0.5);
  r.handshake_p99 = hs.quantile(0.99);
  r.handshake_p999 = hs.quantile(0.999);
  r.handshake_samples = hs.count();
  r.churn = gen.churn_result();
  r.churn.done = churned;
  return r;
}

}  // namespace magline::bench
