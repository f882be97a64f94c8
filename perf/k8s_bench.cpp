// magline-k8sbench: the control plane's cost of Kubernetes changes, in process, without the
// network or the workers (the daemon's own event-to-worker latency is measured by
// perf/k8s_update_bench.py against the fake API server; docs/performance.md).
//
//   resync    N Services x E endpoints arrive as one relist each (Services, EndpointSlices):
//             decode, translate, build every Maglev table, publish. Goal: 10,000 x 10 in 2 s.
//   change    one EndpointSlice of one random Service changes (an endpoint turns not-ready),
//             repeated: decode, translate that Service, rebuild its table, publish. Reported as
//             p50/p99 for several N, to show it does not grow with N.
//   memory    resident memory per Service after the resync (Maglev table, state, objects).
//
// Usage: magline-k8sbench [--services N] [--endpoints E] [--changes C] [--table-size M]
//                         [--min-table-size M|0] (per-Service sizes as the daemon; 0: all M)
//                         [--threads T]   (threads building service states; default: all)
// Prints a table and one JSON object.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "control/k8s_source.hpp"
#include "control/publisher.hpp"

namespace magline::bench {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using control::Change;
using control::K8sKind;
using control::K8sSource;
using control::Publisher;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string v4(uint32_t base, uint32_t i) {
  const uint32_t a = base + i;
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
         std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255);
}

json service(uint32_t i) {
  const std::string name = "svc-" + std::to_string(i);
  return {{"metadata", {{"namespace", "bench"}, {"name", name}, {"resourceVersion", "1"}}},
          {"spec",
           {{"type", "LoadBalancer"},
            {"clusterIP", "10.96.0.1"},
            {"ports", json::array({{{"name", "http"}, {"protocol", "TCP"}, {"port", 80}}})}}},
          {"status",
           {{"loadBalancer", {{"ingress", json::array({{{"ip", v4(0xC6120000u, 256 + i)}}})}}}}}};
}

json slice(uint32_t i, uint32_t endpoints, uint32_t version, uint32_t not_ready = ~0u) {
  json eps = json::array();
  for (uint32_t e = 0; e < endpoints; ++e) {
    eps.push_back({{"addresses", json::array({v4(0x0A000000u, i * endpoints + e)})},
                   {"conditions", {{"ready", e != not_ready}}}});
  }
  const std::string svc = "svc-" + std::to_string(i);
  return {{"metadata",
           {{"namespace", "bench"},
            {"name", svc + "-abcde"},
            {"resourceVersion", std::to_string(version)},
            {"labels", {{"kubernetes.io/service-name", svc}}}}},
          {"addressType", "IPv4"},
          {"endpoints", eps},
          {"ports", json::array({{{"name", "http"}, {"protocol", "TCP"}, {"port", 8080}}})}};
}

double rss_mb() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return double(resident) * 4096.0 / (1024.0 * 1024.0);
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, size_t(q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + ptrdiff_t(k), v.end());
  return v[k];
}

struct Run {
  uint32_t services = 0;
  double resync_ms = 0;
  double resync_build_ms = 0;  // translate + Maglev + publish (the rest is JSON decoding)
  double mb_per_1k = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

Run run(uint32_t n, uint32_t endpoints, uint32_t changes, uint32_t table_size,
        uint32_t min_table_size, uint32_t threads) {
  dp::Node node;
  node.ports.push_back({0, "lan0", {}, {{*dp::parse_ip("10.0.0.1"), 8}}, 1500});
  Publisher pub(node);
  if (threads > 0) pub.set_builder_threads(threads);
  k8s::TranslateOptions opts;
  opts.table_size = table_size;
  opts.min_table_size = min_table_size;
  K8sSource src(opts);

  std::vector<json> services, slices;
  for (uint32_t i = 0; i < n; ++i) {
    services.push_back(service(i));
    slices.push_back(slice(i, endpoints, 1));
  }
  Run r;
  r.services = n;
  const double rss0 = rss_mb();
  const auto t0 = Clock::now();
  src.replace(K8sKind::service, services);
  src.replace(K8sKind::endpoint_slice, slices);
  const auto t1 = Clock::now();
  Change c = src.sync(pub, {}, 0);
  r.resync_ms = ms_since(t0);
  r.resync_build_ms = ms_since(t1);
  if (c.built != n || pub.size() != n) {
    std::fprintf(stderr, "resync published %zu of %u services\n", pub.size(), n);
    std::exit(1);
  }
  services.clear();
  slices.clear();
  r.mb_per_1k = (rss_mb() - rss0) * 1000.0 / double(n);

  std::mt19937 rng(42);
  std::vector<double> lat;
  lat.reserve(changes);
  std::vector<uint32_t> not_ready(n, ~0u);  // per Service: which endpoint is not ready now
  for (uint32_t k = 0; k < changes; ++k) {
    const uint32_t i = rng() % n;
    not_ready[i] = (not_ready[i] + 1) % endpoints;  // always a different set than before
    const json changed = slice(i, endpoints, 2 + k, not_ready[i]);  // built before timing
    const auto s = Clock::now();
    src.upsert(K8sKind::endpoint_slice, changed);
    Change one = src.sync(pub, {}, 0);
    lat.push_back(ms_since(s));
    if (one.built != 1) {
      std::fprintf(stderr, "a change rebuilt %zu services\n", one.built);
      std::exit(1);
    }
  }
  r.p50_ms = quantile(lat, 0.5);
  r.p99_ms = quantile(lat, 0.99);
  r.max_ms = *std::max_element(lat.begin(), lat.end());
  return r;
}

int main_(int argc, char** argv) {
  // The daemon's defaults (kubernetes.table_size, kubernetes.min_table_size).
  uint32_t services = 10000, endpoints = 10, changes = 1000, table_size = 16381,
           min_table_size = 4093, threads = 0;
  constexpr const char* kUsage =
      "usage: magline-k8sbench [--services N] [--endpoints E] [--changes C] [--table-size M]\n"
      "                        [--min-table-size M|0] [--threads T]\n"
      "The control plane's cost of Kubernetes changes: resync, one change, memory\n"
      "(docs/performance.md).\n";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "magline-k8sbench: %s needs a value\n%s", argv[argc - 1], kUsage);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    char* end = nullptr;
    errno = 0;
    const unsigned long n = std::strtoul(argv[i + 1], &end, 10);
    if (errno != 0 || end == argv[i + 1] || *end != '\0' || argv[i + 1][0] == '-' ||
        n > 100000000) {
      std::fprintf(stderr, "magline-k8sbench: %s needs an integer in 0..100000000, not \"%s\"\n%s",
                   a.c_str(), argv[i + 1], kUsage);
      return 2;
    }
    const uint32_t v = uint32_t(n);
    if (a == "--services") services = v;
    else if (a == "--endpoints") endpoints = v;
    else if (a == "--changes") changes = v;
    else if (a == "--table-size") table_size = v;
    else if (a == "--min-table-size") min_table_size = v;
    else if (a == "--threads") threads = v;
    else {
      std::fprintf(stderr, "magline-k8sbench: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (!dp::is_prime(table_size) || (min_table_size != 0 && !dp::is_prime(min_table_size)) ||
      min_table_size > table_size || services == 0 || endpoints == 0 || changes == 0) {
    std::fprintf(stderr, "magline-k8sbench: table sizes must be prime (min at most the size, or "
                         "0), counts positive\n");
    return 2;
  }
  std::vector<uint32_t> sizes;
  for (uint32_t s : {100u, 1000u}) {
    if (s < services) sizes.push_back(s);
  }
  sizes.push_back(services);
  std::printf("%10s %12s %14s %12s %12s %12s %12s\n", "services", "resync ms", "of it build ms",
              "MB/1k svc", "change p50", "change p99", "change max");
  json out = {{"endpoints", endpoints},
              {"table_size", table_size},
              {"min_table_size", min_table_size},
              {"runs", json::array()}};
  for (uint32_t n : sizes) {
    const Run r = run(n, endpoints, changes, table_size, min_table_size, threads);
    std::printf("%10u %12.1f %14.1f %12.2f %10.3fms %10.3fms %10.3fms\n", r.services, r.resync_ms,
                r.resync_build_ms, r.mb_per_1k, r.p50_ms, r.p99_ms, r.max_ms);
    out["runs"].push_back({{"services", r.services},
                           {"resync_ms", r.resync_ms},
                           {"resync_build_ms", r.resync_build_ms},
                           {"mb_per_1000_services", r.mb_per_1k},
                           {"change_p50_ms", r.p50_ms},
                           {"change_p99_ms", r.p99_ms},
                           {"change_max_ms", r.max_ms}});
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace magline::bench

int main(int argc, char** argv) { return magline::bench::main_(argc, argv); }
