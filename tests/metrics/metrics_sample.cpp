// Prints what /metrics would answer for a made-up Magline (two workers with counters, a service
// with a frontend (rate limited) and two backends, two ports, one of them unreadable, a Kubernetes watch with
// update latencies, this process, this build), through the same renderers as the admin
// listener. check_metrics.py reads it with the strict exposition-format checker and compares its
// families with docs/metrics.md. No DPDK, no EAL.
#include <chrono>
#include <iostream>
#include <thread>

#include "control/admin.hpp"
#include "control/health_report.hpp"
#include "control/k8s_client/watcher.hpp"
#include "control/k8s_source.hpp"
#include "control/publisher.hpp"
#include "control/stats.hpp"
#include "tests/unit/fake_link.hpp"

using namespace magline;

int main() {
  test::FakeLink link(2);
  dp::WorkerShare shares[2];  // as the workers would publish them
  control::WorkerViews views;
  for (size_t w = 0; w < link.workers(); ++w) {
    dp::WorkerCounters c;
    c.forwarder.rx_packets = 100 * (w + 1);
    c.forwarder.drops[1] = 3;
    c.flows.capacity = 65536;
    c.flows.occupied = 10 + w;
    c.io.polls = 1000;
    shares[w].publish(c);
    views.shares.push_back(&shares[w]);
    views.traffic.push_back(&link.traffic(w));
  }
  dp::Node node;
  node.ports.push_back({0, "lan0", {}, {{*dp::parse_ip("198.18.0.1"), 16}}, 1500});
  control::Publisher publisher(node);
  dp::Service s;
  s.name = "demo/web:\"http\"";  // a quote, escaped in label values
  s.frontends = {
      {*dp::parse_ip("198.18.100.1"), 80, dp::Protocol::tcp, dp::FrontendKind::load_balancer}};
  s.backends = {{*dp::parse_ip("198.18.1.10"), 8080, 1, {}},
                {*dp::parse_ip("198.18.1.11"), 8080, 1, {}}};
  s.table_size = 251;
  s.new_connections = {.rate = 100, .burst = 10};
  if (!publisher.publish({s}, 0)) return 1;
  // Each worker refused a connection of the frontend's limit.
  for (size_t w = 0; w < link.workers(); ++w) {
    dp::LimitRow& row = link.traffic(w).limit(publisher.services()[0]->frontend_slot(0));
    dp::take_token(row, s.new_connections, 2, 0);  // a fresh bucket: 5 tokens on each worker
    for (int i = 0; i < 5; ++i) dp::take_token(row, s.new_connections, 2, 0);
  }

  control::AdminView::Copy c;
  c.services = std::make_shared<const dp::ServiceList>(publisher.services());
  c.control.updates_published = 1;
  c.control.last_update_ms = 2.5;
  c.build = control::build_info();
  c.build.dpdk = "DPDK 22.11.4";
  c.ports = {{"lan0", "rss-predicted", "why"}, {"wan0", "single-queue", "why"}};
  control::PortCounters lan0{.name = "lan0", .read = true, .rx_packets = 5, .rx_missed = 1};
  lan0.link_up = true;
  lan0.speed_bytes_per_second = 1250000000;
  c.port_counters = {lan0, {.name = "wan0"}};

  // A watch that never reaches a server (nothing listens on port 1): its counters all exist.
  k8s::EventQueue queue;
  k8s::ApiConfig api;
  api.server = "http://127.0.0.1:1";
  k8s::Watcher watcher(api, {}, queue);
  if (!watcher.start().ok()) return 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  watcher.stop();
  control::K8sSource source({});
  control::LatencySamples latency;
  for (double ms : {0.3, 1.9, 2.2, 40.0, 20000.0})
    latency.add(ms);
  c.extra_metrics = control::kubernetes_report_of(&watcher, source, latency).metrics;

  // The LoadBalancer provider's report: a pool, an allocation, a refusal.
  control::ProviderReport provider;
  provider.synced = true;
  provider.assignments = 1;
  provider.refusals["exhausted"] = 1;
  provider.pools = {{"edge", 254, 1}};
  provider.election.leading = true;
  provider.election.live_nodes = {"edge-1"};
  c.provider = [provider] { return provider; };
  // BGP's announcer: one address, one session up.
  control::AnnouncerReport bgp;
  bgp.bird_reachable = true;
  bgp.in_effect = true;
  bgp.announced = {*dp::parse_ip("198.18.100.1")};
  bgp.sessions.push_back({"peer_198_18_0_254", "BGP", "---", "up", "01:02:03", "Established"});
  bgp.configures = 2;
  c.bgp = [bgp] { return bgp; };

  const auto process = control::read_process_stats();
  if (!process) return 1;
  std::cout << control::metrics_of(views, c, &*process);
  // The node prober's families (control/health_report.hpp), rendered beside the rest: one
  // target of each verdict.
  control::HealthReport health;
  health.counts = {.passes = 10, .failures = 2, .verdict_changes = 3};
  health.in_flight = 1;
  for (const k8s::Verdict v :
       {k8s::Verdict::healthy, k8s::Verdict::unhealthy, k8s::Verdict::unknown}) {
    k8s::HealthBook::TargetState t;
    t.verdict = v;
    health.targets.push_back(t);
  }
  std::cout << control::health_check_metrics(health);
  return 0;
}
