// magline-dpbench: packets per second per worker core through the real forwarding pipeline, next
// to a trivial forwarder and dpdk-testpmd's macswap on the same virtual device, in the same run.
//
// The device is net_null: it hands out buffers at the rate they are asked for and frees what is
// transmitted, like a NIC that is never the bottleneck. Each received buffer is filled with the
// next frame of the traffic mix (a 64-byte copy, the work a NIC's DMA does; testpmd's baseline
// pays the same copy through net_null's copy=1), then forwarded on one worker core:
//
//   copy+macswap   the copy and a MAC swap: Magline's own baseline (bursts, copies)
//   hit-1k         established full-NAT connections (flow-table hits), 1024 flows: the table
//                  stays in cache
//   hit-1M         the same with 2^20 flows in random order: every lookup misses cache and TLB
//   new            every frame a new connection (SYN, new 5-tuple): Maglev choice, source
//                  port search, two flow entries (forward and reply) in a table of
//                  --new-capacity entries (2^21: 144 MiB, out of cache) that fills within
//                  the first half second, after which every SYN evicts half-open entries
//   flood-1M       (full_nat, dnat) hit-1M's connections, every other frame replaced by a flood SYN
//                  (a new made-up tuple) with the SYN proxy on: the established frames must
//                  all be forwarded and no connection reopened, the SYNs answered with cookies
//                  (full-NAT) or sent on without state (DNAT)
//   kernel-flood-1M
//                  hit-1M's connections, every other frame replaced by one for the node's own
//                  address (its port has a kernel interface): the exception path takes them up
//                  to its rate (10,000 a second) and drops the rest as kernel_rate_limited; the
//                  established frames must all be forwarded
//   reply-1M       (dnat) hit-1M's connections answered by their backends (Maglev's pick for
//                  each client): replies by their reply entries, or, for connections of one
//                  entry, translated without one; the per-reply cost of either
//   hit-1k-2w      hit-1k on two workers at once (lcores 0 and 1, a queue and a forwarder
//                  each), against testpmd with two forwarding cores: the scaling figure
//
// Every path writes the same template and patches the client address and port into it, so the
// generating work is the same for all of them.
//
// Usage: magline-dpbench [--seconds S] [--flows N] [--testpmd PATH|none]
//                        [--only copy+macswap|hit-1k|hit-1M|new|flood-1M|kernel-flood-1M|
//                                reply-1M|hit-1k-2w]
//                        [--mode full_nat|dnat|dsr_l2|ipip|gue]   (the service's mode; full_nat
//                                                                  by default)
//                        [--affinity client_ip|none]     (session affinity; none by default)
//                        [--new-capacity N]              (the new path's table, entries)
//                        [--syn-proxy off|on|auto]       (the SYN flood guard: full-NAT's SYN
//                                                         proxy, DNAT's SYNs without state;
//                                                         off by default: `new` then measures
//                                                         a genuine connection's SYN, `on` the
//                                                         flood's)
// Prints a table and one JSON object; ratios are against testpmd macswap on the same core. Exits
// 3 when flood-1M (full-NAT, DNAT) lost an established frame, reopened a connection or handled a
// SYN with state, or kernel-flood-1M lost an established frame.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "control/publisher.hpp"
#include "perf/testpmd.hpp"
#include "dataplane/dpdk/eal.hpp"
#include "dataplane/dpdk/mbuf_io.hpp"
#include "dataplane/dpdk/port.hpp"
#include "dataplane/dpdk/ring.hpp"
#include "dataplane/forwarder.hpp"
#include "dataplane/worker.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/rewrite.hpp"
#include "perf/dpbench_io.hpp"

namespace magline::bench {
namespace {

int measure(int argc, char** argv);

// The EAL outlives everything in its memory (the port and pool live in measure()); it leaves an
// empty runtime directory behind, removed here.
constexpr const char* kUsage =
    "Usage: magline-dpbench [--seconds S] [--flows N] [--testpmd PATH|none]\n"
    "                       [--only copy+macswap|hit-1k|hit-1M|new|flood-1M|kernel-flood-1M|\n"
    "                               reply-1M|hit-1k-2w]\n"
    "                       [--mode full_nat|dnat|dsr_l2|ipip|gue] [--affinity client_ip|none]\n"
    "                       [--new-capacity N] [--syn-proxy off|on|auto]\n"
    "Packets per second per worker core through the real worker loop on net_null, next to\n"
    "dpdk-testpmd's macswap on the same device in the same run (docs/performance.md).\n";

int run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  std::string runtime_dir;
  int rc = 1;
  {
    auto eal = dpdk::EalSession::create({"-l", "0,1", "--no-huge", "-m", "1024", "--no-shconf",
                                         "--no-pci", "--no-telemetry", "--file-prefix",
                                         "magline-bench", "--log-level=*:warning"});
    if (!eal) {
      std::fprintf(stderr, "%s\n", eal.error().message.c_str());
      return 1;
    }
    runtime_dir = eal->runtime_dir();
    rc = measure(argc, argv);
  }
  std::error_code ignored;
  std::filesystem::remove(runtime_dir, ignored);
  return rc;
}

int measure(int argc, char** argv) {
  double seconds = 3;
  size_t flows = 1024;  // the cache-resident hit path
  std::string testpmd = "dpdk-testpmd";
  std::string only;  // one path (hit-1k, hit-1M, new) for profiling
  dp::ForwardMode mode = dp::ForwardMode::full_nat;
  std::string mode_name = "full_nat";
  bool affinity = false;
  dp::SynProxy syn_proxy = dp::SynProxy::off;
  std::string syn_proxy_name = "off";
  size_t new_capacity = size_t{1} << 21;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (a == "--affinity") affinity = std::string(argv[i + 1]) == "client_ip";
    else if (a == "--mode") {
      mode_name = argv[i + 1];
      if (mode_name == "full_nat") mode = dp::ForwardMode::full_nat;
      else if (mode_name == "dnat") mode = dp::ForwardMode::dnat;
      else if (mode_name == "dsr_l2") mode = dp::ForwardMode::dsr_l2;
      else if (mode_name == "ipip") mode = dp::ForwardMode::ipip;
      else if (mode_name == "gue") mode = dp::ForwardMode::gue;
      else {
        std::fprintf(stderr, "--mode: full_nat, dnat, dsr_l2, ipip or gue\n");
        return 2;
      }
    }
    else if (a == "--syn-proxy") {
      syn_proxy_name = argv[i + 1];
      if (syn_proxy_name == "off") syn_proxy = dp::SynProxy::off;
      else if (syn_proxy_name == "on") syn_proxy = dp::SynProxy::on;
      else if (syn_proxy_name == "auto") syn_proxy = dp::SynProxy::automatic;
      else {
        std::fprintf(stderr, "--syn-proxy: off, on or auto\n");
        return 2;
      }
    }
    else if (a == "--flows") flows = std::stoul(argv[i + 1]);
    else if (a == "--testpmd") testpmd = argv[i + 1];
    else if (a == "--only") only = argv[i + 1];
    else if (a == "--new-capacity") new_capacity = std::stoul(argv[i + 1]);
    else {
      std::fprintf(stderr, "magline-dpbench: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "magline-dpbench: %s needs a value\n%s", argv[argc - 1], kUsage);
    return 2;
  }
  const unsigned worker_core = 1;
  double baseline = 0;
  if (testpmd != "none") baseline = testpmd_macswap_pps(testpmd, worker_core, 64, seconds + 2);

  auto pool = dpdk::PktPool::create("bench", 16383);
  if (!pool) return 1;
  dpdk::PortConfig pc;
  pc.device = "net_null0";
  pc.devargs = "net_null0,size=64";
  pc.rss = dpdk::RssMode::off;
  auto port = dpdk::Port::open(pc, pool->get());
  if (!port || !port->start()) {
    std::fprintf(stderr, "cannot open net_null0\n");
    return 1;
  }

  dp::Node node;
  // With a kernel interface (kernel-flood-1M): frames for the node go to the slow ring, which
  // nobody drains here; no other path sends any.
  node.ports.push_back({0, "null0", kLbMac, {{dp::IpAddr::v4(198, 18, 0, 1), 16}}, 1500, true});
  // The clients (198.19/16) and flood-1M's made-up ones (198.20/16) behind the edge router, as
  // an edge load balancer sees them: DNAT's replies go without an entry only where a route
  // leads back to the client through a known neighbour.
  const dp::IpAddr router = dp::IpAddr::v4(198, 18, 0, 254);
  node.routes.push_back({{dp::IpAddr::v4(198, 19, 0, 0), 16}, router, 0});
  node.routes.push_back({{dp::IpAddr::v4(198, 20, 0, 0), 16}, router, 0});
  dp::Service svc;
  svc.name = "bench/web:http";
  svc.mode = mode;
  svc.affinity.client_ip = affinity;
  svc.syn_proxy = dp::SynProxy::off;  // the hit paths' connections open mid-stream
  svc.frontends = {{dp::IpAddr::v4(198, 18, 100, 1), 80, dp::Protocol::tcp,
                    dp::FrontendKind::load_balancer}};
  for (uint32_t b = 0; b < 256; ++b) {
    svc.backends.push_back({dp::IpAddr::v4(0xc6120100u + b), 8080, 1, {}});  // 198.18.1.x
  }
  control::Publisher publisher(node);
  auto change = publisher.publish({svc}, 0);
  if (!change) return 1;
  // The new path's service, with --syn-proxy.
  dp::Service fresh_svc = svc;
  const bool guarded = mode == dp::ForwardMode::full_nat || mode == dp::ForwardMode::dnat;
  if (guarded) fresh_svc.syn_proxy = syn_proxy;
  control::Publisher fresh_publisher(node);
  auto fresh_change = fresh_publisher.publish({fresh_svc}, 0);
  if (!fresh_change) return 1;

  // A worker with the service and the backends' and the router's neighbours in its update ring
  // (applied in its first turn).
  auto make_forwarder = [&](const dp::Steering& steering, size_t capacity, uint16_t worker = 0,
                            bool fresh = false) {
    dp::ForwarderConfig fc;
    fc.worker = worker;
    fc.workers = 2;
    fc.flow_capacity = std::max<size_t>(capacity, 1 << 16);
    auto bench = std::make_unique<Bench>();
    bench->updates.emplace(std::move(dpdk::SpscRing<dp::Update>::create(1024)).value());
    bench->slow.emplace(std::move(dpdk::SpscRing<dp::SlowPacket>::create(4096)).value());
    std::vector<dp::Update> ups = fresh ? fresh_change->updates : change->updates;
    for (uint32_t b = 0; b < 256; ++b) {
      dp::Update u;
      u.kind = dp::Update::Kind::neighbor;
      u.neighbor = {dp::IpAddr::v4(0xc6120100u + b), kBackendMac, 0, true};
      ups.push_back(u);
    }
    dp::Update r;
    r.kind = dp::Update::Kind::neighbor;
    r.neighbor = {router, kClientMac, 0, true};
    ups.push_back(r);
    bench->updates->enqueue_burst(ups.data(), uint32_t(ups.size()));
    dp::WorkerRings<dpdk::SpscRing> rings{&*bench->updates, {nullptr, nullptr},
                                          {nullptr, nullptr}, &*bench->slow, nullptr};
    bench->worker = std::make_unique<Bench::W>(fc, node,
                                               (fresh ? fresh_publisher : publisher).registry(),
                                               steering,
                                               bench->io, rings, bench->traffic, bench->share,
                                               kBurst);
    return bench;
  };

  const std::vector<uint8_t> ack = tcp_frame(0xc6130000u, 1024, 0xc6126401u, 80, dp::kTcpAck);
  const std::vector<uint8_t> syn = tcp_frame(0xc6130000u, 1024, 0xc6126401u, 80, dp::kTcpSyn);

  struct Result {
    std::string name;
    Job job;
  };
  std::vector<Result> results;
  auto launch = [&](Job& job, lcore_function_t* entry = measured) {
    rte_eal_remote_launch(entry, &job, worker_core);
    rte_eal_wait_lcore(worker_core);
  };
  dp::SingleWorker steering;
  auto wanted = [&](const std::string& name) {
    // The two-worker figure is a ratio to the one-worker one: hit-1k-2w runs hit-1k too;
    // flood-1M runs on hit-1M's connections.
    return only.empty() || only == name || (only == "hit-1k-2w" && name == "hit-1k") ||
           ((only == "flood-1M" || only == "kernel-flood-1M" || only == "reply-1M") &&
            name == "hit-1M");
  };
  if (wanted("copy+macswap")) {
    Job job{Mode::macswap, port->id(), 0, seconds, &ack, uint32_t(flows), nullptr};
    launch(job);
    results.push_back({"copy+macswap", job});
  }
  std::vector<std::unique_ptr<Bench>> keep;
  std::vector<std::shared_ptr<const dp::ServiceState>> retired;  // alive while workers are
  struct {
    uint64_t dropped = 0, reopened = 0, cookies = 0, frames = 0;
  } flood;
  struct {
    uint64_t frames = 0, forwarded = 0, to_kernel = 0, limited = 0, other_drops = 0;
    uint64_t reopened = 0;
  } kflood;
  struct {
    uint64_t frames = 0, by_entry = 0, without_entry = 0, dropped = 0;
  } replies;
  constexpr uint32_t kMillion = 1u << 20;
  for (const uint32_t n : {uint32_t(flows), kMillion}) {
    if (!wanted(n == kMillion ? "hit-1M" : "hit-1k")) continue;
    auto fwd = make_forwarder(steering, size_t(n) * 4);  // forward and reply entries
    // Open every flow first, so that measured frames hit.
    for (int round = 0; round < 20 && fwd->counters().new_connections < n; ++round) {
      Job warm{Mode::hit, port->id(), 0, 0.5, &ack, n, fwd.get()};
      launch(warm, worker);
    }
    const uint64_t opened = fwd->counters().new_connections;
    Job job{Mode::hit, port->id(), 0, seconds, &ack, n, fwd.get()};
    launch(job);
    if (fwd->counters().new_connections != opened) {
      std::fprintf(stderr, "hit path opened %lu connections while measured\n",
                   (unsigned long)(fwd->counters().new_connections - opened));
    }
    results.push_back({n == kMillion ? "hit-1M" : "hit-1k", job});
    if (n == kMillion && wanted("kernel-flood-1M")) {
      const dp::ForwarderCounters c0 = fwd->counters();
      Job mix{Mode::kernel_flood, port->id(), 0, seconds, &ack, n, fwd.get()};
      launch(mix);
      const dp::ForwarderCounters& c1 = fwd->counters();
      const size_t limited = size_t(dp::DropReason::kernel_rate_limited);
      kflood.frames = mix.packets;
      kflood.forwarded = mix.forwarded;
      kflood.to_kernel = c1.to_kernel - c0.to_kernel;
      kflood.limited = c1.drops[limited] - c0.drops[limited];
      for (size_t r = 0; r < c1.drops.size(); ++r) {
        if (r != limited) kflood.other_drops += c1.drops[r] - c0.drops[r];
      }
      kflood.reopened = c1.new_connections - c0.new_connections;
      results.push_back({"kernel-flood-1M", mix});
    }
    if (n == kMillion && guarded && wanted("flood-1M")) {
      // The same connections with the proxy turned on, and a flood beside them.
      dp::Service proxied = svc;
      proxied.syn_proxy = dp::SynProxy::on;
      auto on = publisher.publish({proxied}, 0);
      if (!on) return 1;
      for (auto& r : on->retired) retired.push_back(std::move(r));
      fwd->updates->enqueue_burst(on->updates.data(), uint32_t(on->updates.size()));
      const dp::ForwarderCounters c0 = fwd->counters();
      Job mix{Mode::flood, port->id(), 0, seconds, &ack, n, fwd.get()};
      launch(mix);
      const dp::ForwarderCounters& c1 = fwd->counters();
      uint64_t dropped = 0;
      for (size_t r = 0; r < c1.drops.size(); ++r) dropped += c1.drops[r] - c0.drops[r];
      // Answered without state: with cookies (full-NAT) or sent on by Maglev alone (DNAT).
      flood = {dropped, c1.new_connections - c0.new_connections,
               c1.syn_cookies_sent - c0.syn_cookies_sent +
                   (c1.syns_without_state - c0.syns_without_state),
               mix.packets};
      results.push_back({"flood-1M", mix});
    }
    if (n == kMillion && mode == dp::ForwardMode::dnat && wanted("reply-1M")) {
      // hit-1M's connections answered by their backends: by their reply entries, or, for
      // connections of one entry, translated without one (docs/architecture.md).
      const dp::ServiceState& state = *publisher.find_by_name(svc.name);
      std::vector<uint8_t> backend_of(n);
      for (uint32_t k = 0; k < n; ++k) {
        dp::FlowKey key;
        key.proto = dp::kProtoTcp;
        dp::store_be32(key.src.data(), 0xc6130000u | (k >> 14));
        dp::store_be32(key.dst.data(), 0xc6126401u);
        key.sport = uint16_t(1024 + (k & 0x3fff));
        key.dport = 80;
        backend_of[k] = state.backend(state.pick(dp::hash_flow(key, dp::kFlowHashSeed)))
                            .addr.bytes[3];
      }
      const dp::ForwarderCounters c0 = fwd->counters();
      Job job{Mode::reply, port->id(), 0, seconds, &ack, n, fwd.get(), backend_of.data()};
      launch(job);
      const dp::ForwarderCounters& c1 = fwd->counters();
      uint64_t dropped = 0;
      for (size_t r = 0; r < c1.drops.size(); ++r) dropped += c1.drops[r] - c0.drops[r];
      replies = {job.packets, c1.replies - c0.replies,
                 c1.stateless_replies - c0.stateless_replies, dropped};
      results.push_back({"reply-1M", job});
    }
    keep.push_back(std::move(fwd));
  }
  auto fresh = make_forwarder(steering, new_capacity, 0, true);
  if (wanted("new")) {
    Job job{Mode::fresh, port->id(), 0, seconds, &syn, 0, fresh.get()};
    launch(job);
    results.push_back({"new", job});
  }

  // Scaling: hit-1k on two workers at once. Lcore 1 is launched and lcore 0 (this thread)
  // works beside it, each polling its own queue of a second port with its own forwarder.
  Job pair[2] = {};
  double baseline2 = 0;
  if (wanted("hit-1k-2w")) {
    if (testpmd != "none") {
      baseline2 = testpmd_macswap_pps(testpmd, worker_core, 64, seconds + 2, 2);
    }
    dpdk::PortConfig pc2 = pc;
    pc2.device = "net_null1";
    pc2.devargs = "net_null1,size=64";
    pc2.rx_queues = pc2.tx_queues = 2;
    auto port2 = dpdk::Port::open(pc2, pool->get());
    if (!port2 || !port2->start()) {
      std::fprintf(stderr, "cannot open net_null1 with two queues\n");
      return 1;
    }
    // Every connection stays on the worker that opened it, as RSS would keep it.
    const dp::SingleWorker own[2] = {dp::SingleWorker(0), dp::SingleWorker(1)};
    std::unique_ptr<Bench> fwd[2];
    for (uint16_t q = 0; q < 2; ++q) {
      fwd[q] = make_forwarder(own[q], size_t(flows) * 4, q);
    }
    auto run_pair = [&](double secs) {
      for (uint16_t q = 0; q < 2; ++q) {
        pair[q] = Job{Mode::hit, port2->id(), q, secs, &ack, uint32_t(flows), fwd[q].get()};
      }
      rte_eal_remote_launch(worker, &pair[1], worker_core);
      worker(&pair[0]);
      rte_eal_wait_lcore(worker_core);
    };
    for (int round = 0; round < 20 && (fwd[0]->counters().new_connections < flows ||
                                       fwd[1]->counters().new_connections < flows);
         ++round) {
      run_pair(0.5);
    }
    run_pair(seconds);
    port2->stop();
  }

  const double hz = double(rte_get_tsc_hz());
  nlohmann::ordered_json j;
  j["device"] = "net_null (64-byte frames)";
  j["flows"] = flows;
  j["mode"] = mode_name;
  j["affinity"] = affinity ? "client_ip" : "none";
  j["syn_proxy"] = syn_proxy_name;
  j["seconds"] = seconds;
  j["testpmd_macswap_pps"] = baseline;
  std::printf("%-16s %12s %10s %10s\n", "path", "Mpps/core", "cyc/pkt", "vs testpmd");
  std::printf("%-16s %12.2f %10s %10s\n", "testpmd", baseline / 1e6, "-", "1.00");
  for (const Result& r : results) {
    const double secs = double(r.job.cycles) / hz;
    const double pps = double(r.job.forwarded) / secs;
    const double cyc = double(r.job.cycles) / double(std::max<uint64_t>(1, r.job.packets));
    const double ratio = baseline > 0 ? pps / baseline : 0;
    std::printf("%-16s %12.2f %10.1f %10.2f\n", r.name.c_str(), pps / 1e6, cyc, ratio);
    j["paths"][r.name] = {{"pps", pps},
                          {"cycles_per_packet", cyc},
                          {"ratio_to_testpmd", ratio},
                          {"received", r.job.packets},
                          {"forwarded", r.job.forwarded}};
  }
  if (pair[0].packets > 0) {
    // Each worker's rate over its own time; the sum is the node's.
    double pps = 0;
    nlohmann::json per_worker = nlohmann::json::array();
    for (const Job& jb : pair) {
      per_worker.push_back(double(jb.forwarded) / (double(jb.cycles) / hz));
      pps += per_worker.back().get<double>();
    }
    const double one = j["paths"].contains("hit-1k") ? j["paths"]["hit-1k"]["pps"].get<double>()
                                                     : 0;
    const double ratio = baseline2 > 0 ? pps / baseline2 : 0;
    const double scaling = one > 0 ? pps / (2 * one) : 0;
    const double testpmd_scaling = baseline > 0 ? baseline2 / (2 * baseline) : 0;
    std::printf("%-16s %12.2f %10s %10.2f   (2 workers, vs testpmd on 2 cores: %.2f Mpps)\n",
                "hit-1k-2w", pps / 1e6, "-", ratio, baseline2 / 1e6);
    std::printf("scaling, 1 -> 2 workers: %.2f of linear (testpmd: %.2f)\n", scaling,
                testpmd_scaling);
    j["paths"]["hit-1k-2w"] = {{"pps", pps},
                               {"workers", 2},
                               {"pps_per_worker", per_worker},
                               {"testpmd_macswap_pps_2_cores", baseline2},
                               {"ratio_to_testpmd_2_cores", ratio},
                               {"scaling_vs_hit_1k", scaling},
                               {"testpmd_scaling", testpmd_scaling},
                               {"received", pair[0].packets + pair[1].packets},
                               {"forwarded", pair[0].forwarded + pair[1].forwarded}};
  }
  const auto& fc = fresh->counters();
  j["new_path"] = {{"capacity", fresh->flows().stats().capacity},
                   {"new_connections", fc.new_connections},
                   {"flow_entries", fresh->flows().stats().occupied},
                   {"evicted_half_open", fresh->flows().stats().evicted_half_open},
                   {"drops_snat_ports_exhausted",
                    fc.drops[size_t(dp::DropReason::snat_ports_exhausted)]},
                   {"drops_flow_table_full", fc.drops[size_t(dp::DropReason::flow_table_full)]}};
  if (j["paths"].contains("flood-1M")) {
    const double hit1m = j["paths"]["hit-1M"]["pps"].get<double>();
    const double mix = j["paths"]["flood-1M"]["pps"].get<double>();
    j["flood_1M"] = {{"frames", flood.frames},
                     {"frames_dropped", flood.dropped},
                     {"connections_reopened", flood.reopened},
                     {"syns_without_state", flood.cookies},
                     {"vs_hit_1M", hit1m > 0 ? mix / hit1m : 0}};
    std::printf("flood-1M / hit-1M: %.2f; of %lu frames (half established, half flood SYNs): "
                "%lu dropped, %lu connections reopened, %lu SYNs handled without state (%s)\n",
                hit1m > 0 ? mix / hit1m : 0, (unsigned long)flood.frames,
                (unsigned long)flood.dropped, (unsigned long)flood.reopened,
                (unsigned long)flood.cookies,
                mode == dp::ForwardMode::dnat ? "sent on by Maglev" : "answered with cookies");
  }
  if (j["paths"].contains("kernel-flood-1M")) {
    // Every frame counts here: half are forwarded, half handled by the exception path.
    const double hit1m = j["paths"]["hit-1M"]["pps"].get<double>();
    const auto& p = j["paths"]["kernel-flood-1M"];
    const double frames_pps = p["pps"].get<double>() * double(kflood.frames) /
                              double(std::max<uint64_t>(1, kflood.forwarded));
    j["kernel_flood_1M"] = {{"frames", kflood.frames},
                            {"frames_pps", frames_pps},
                            {"established_forwarded", kflood.forwarded},
                            {"to_kernel", kflood.to_kernel},
                            {"kernel_rate_limited", kflood.limited},
                            {"other_drops", kflood.other_drops},
                            {"connections_opened", kflood.reopened},
                            {"vs_hit_1M", hit1m > 0 ? frames_pps / hit1m : 0}};
    std::printf("kernel-flood-1M / hit-1M: %.2f (every frame); of %lu frames (half established, "
                "half for the node): %lu forwarded, %lu to the kernel, %lu kernel_rate_limited, "
                "%lu other drops, %lu connections opened\n",
                hit1m > 0 ? frames_pps / hit1m : 0, (unsigned long)kflood.frames,
                (unsigned long)kflood.forwarded, (unsigned long)kflood.to_kernel,
                (unsigned long)kflood.limited, (unsigned long)kflood.other_drops,
                (unsigned long)kflood.reopened);
  }
  if (j["paths"].contains("reply-1M")) {
    const double hit1m = j["paths"]["hit-1M"]["pps"].get<double>();
    const double pps = j["paths"]["reply-1M"]["pps"].get<double>();
    j["reply_1M"] = {{"frames", replies.frames},
                     {"by_entry", replies.by_entry},
                     {"without_entry", replies.without_entry},
                     {"dropped", replies.dropped},
                     {"vs_hit_1M", hit1m > 0 ? pps / hit1m : 0}};
    std::printf("reply-1M / hit-1M: %.2f; of %lu replies: %lu by their entry, %lu without one, "
                "%lu dropped\n",
                hit1m > 0 ? pps / hit1m : 0, (unsigned long)replies.frames,
                (unsigned long)replies.by_entry, (unsigned long)replies.without_entry,
                (unsigned long)replies.dropped);
  }
  if (j["paths"].contains("hit-1M") && j["paths"].contains("new")) {
    const double hit1m = j["paths"]["hit-1M"]["pps"].get<double>();
    const double new_pps = j["paths"]["new"]["pps"].get<double>();
    j["new_vs_hit_1M"] = hit1m > 0 ? new_pps / hit1m : 0;
    std::printf("new / hit-1M: %.2f\n", new_pps / hit1m);
  }
  std::printf("%s\n", j.dump().c_str());
  keep.clear();
  fresh.reset();
  port->stop();
  // flood-1M is a correctness check too: an established frame lost, a connection reopened or a
  // flood SYN not answered with a cookie fails the run.
  if (j.contains("flood_1M") && (flood.dropped != 0 || flood.reopened != 0 ||
                                 flood.cookies * 2 + 1 < flood.frames)) {
    std::fprintf(stderr, "flood-1M: established connections were disturbed by the flood\n");
    return 3;
  }
  // kernel-flood-1M likewise: every established frame forwarded, none reopened.
  if (j.contains("kernel_flood_1M") &&
      (kflood.forwarded * 2 + 1 < kflood.frames || kflood.reopened != 0)) {
    std::fprintf(stderr, "kernel-flood-1M: established frames lost beside the flood\n");
    return 3;
  }
  return 0;
}

}  // namespace
}  // namespace magline::bench

int main(int argc, char** argv) { return magline::bench::run(argc, argv); }
