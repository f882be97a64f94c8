// magline-bench: a traffic generator and sink that drives one Magline worker (the real
// worker_main loop) over net_ring inside one process, with dpdk-testpmd's macswap and a MAC swap
// on the same rings as baselines in the same run; or, with --memif, the real daemon (`magline
// run`) in another process over net_memif, with testpmd's macswap through the same memif as the
// baseline. docs/performance.md ("magline-bench") says what each figure means; engine.hpp and
// remote.hpp draw the test beds.
//
//   magline-bench [--flows N] [--distribution uniform|zipf] [--zipf-s S] [--new-share F]
//                 [--size BYTES] [--ipv6] [--udp] [--rate PPS] [--seconds S] [--backends N]
//                 [--churn] [--ring SLOTS] [--flow-capacity N] [--seed N]
//                 [--testpmd PATH|none] [--no-ring-baseline] [--attempts N]
//                 [--sweep flows=1k,64k,1M | size=64,512,1500 | new-share=0,0.5,1 | ...]
//                 [--json FILE] [--csv FILE] [--plot FILE.png]
//                 [--memif server|client [--memif-socket NAME] [--memif-socket-file]
//                  [--magline PATH] [--admin-port N] [--keep-logs]]
//   magline-bench --smoke      short low-rate runs whose counts must add up; exit 1 if not
//
// Exit status: 0, 1 (a run failed, or its counts did not add up), 2 (bad command line).
#include <rte_cycles.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "dataplane/dpdk/eal.hpp"
#include "perf/bench/cores.hpp"
#include "perf/bench/engine.hpp"
#include "perf/bench/remote.hpp"
#include "perf/bench/report.hpp"
#include "perf/testpmd.hpp"

namespace magline::bench {
namespace {

struct Options {
  TrafficSpec traffic;
  uint32_t ring = 1024;
  size_t flow_capacity = 0;
  uint64_t seed = 1;
  std::string testpmd = "dpdk-testpmd";
  bool ring_baseline = true;
  uint32_t attempts = 3;  // runs of a point while its ring baseline is disturbed
  std::string sweep_key;
  std::vector<std::string> sweep_values;
  std::string json_path, csv_path, plot_path;
  bool smoke = false;
  bool memif = false;
  MemifOptions memif_options;
};

const char* kUsage =
    "usage: magline-bench [--flows N] [--distribution uniform|zipf] [--zipf-s S]\n"
    "         [--new-share F] [--size BYTES] [--ipv6] [--udp] [--rate PPS] [--seconds S]\n"
    "         [--backends N] [--churn] [--ring SLOTS] [--flow-capacity N] [--seed N]\n"
    "         [--testpmd PATH|none] [--no-ring-baseline] [--attempts N]\n"
    "         [--sweep flows=1k,64k,1M|size=64,512,1500|new-share=..|rate=..|backends=..]\n"
    "         [--json FILE] [--csv FILE] [--plot FILE.png]\n"
    "         [--memif server|client [--memif-socket NAME] [--memif-socket-file]\n"
    "          [--magline PATH] [--admin-port N] [--keep-logs]]\n"
    "       magline-bench --smoke\n";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep))
    out.push_back(item);
  return out;
}

// Applies key=value to a traffic spec; an error message, or empty.
std::string apply(TrafficSpec& t, const std::string& key, const std::string& value) {
  try {
    if (key == "flows") {
      const uint64_t n = parse_count(value);
      if (n == 0 || n > kMaxFlows) return "flows: 1 .. 16M";
      t.flows = uint32_t(n);
    } else if (key == "size") {
      const unsigned long n = std::stoul(value);
      if (n < 64 || n > 1518) return "size: 64 .. 1518 bytes on the wire";
      t.size = uint32_t(n);
    } else if (key == "new-share") {
      t.new_share = std::stod(value);
      if (t.new_share < 0 || t.new_share > 1) return "new-share: 0 .. 1";
    } else if (key == "rate") {
      t.rate_pps = double(parse_count(value));
    } else if (key == "backends") {
      const uint64_t n = parse_count(value);
      if (n < 2 || n > kMaxBackends) return "backends: 2 .. 16384";
      t.backends = uint32_t(n);
    } else if (key == "seconds") {
      t.seconds = std::stod(value);
      if (t.seconds <= 0) return "seconds: more than 0";
    } else if (key == "zipf-s") {
      t.zipf_s = std::stod(value);
    } else if (key == "cores") {
      return "cores: this harness runs one Magline worker (two cores: one generator, one worker)";
    } else {
      return "unknown parameter " + key;
    }
  } catch (const std::exception&) {
    return key + ": bad value " + value;
  }
  return {};
}

bool parse(int argc, char** argv, Options& o, std::string& err) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        err = a + " needs a value";
        return {};
      }
      return argv[++i];
    };
    std::string v;
    if (a == "--ipv6") {
      o.traffic.ipv6 = true;
    } else if (a == "--udp") {
      o.traffic.udp = true;
    } else if (a == "--churn") {
      o.traffic.churn = true;
    } else if (a == "--smoke") {
      o.smoke = true;
    } else if (a == "--no-ring-baseline") {
      o.ring_baseline = false;
    } else if (a == "--memif") {
      v = value();
      o.memif = true;
      if (v == "server" || v == "client") {
        o.memif_options.server = v == "server";
      } else {
        err = "--memif: server or client (this process's role on the socket)";
      }
    } else if (a == "--memif-socket") {
      o.memif_options.socket = value();
      if (o.memif_options.socket.empty() || o.memif_options.socket.find(',') != std::string::npos) {
        err = "--memif-socket: a name without commas";
      }
    } else if (a == "--memif-socket-file") {
      o.memif_options.socket_abstract = false;
    } else if (a == "--magline") {
      o.memif_options.magline = value();
    } else if (a == "--keep-logs") {
      o.memif_options.keep_workdir = true;
    } else if (a == "--admin-port") {
      v = value();
      const uint64_t n = parse_count(v);
      if (n == 0 || n > 65535) err = "--admin-port: 1 .. 65535";
      o.memif_options.admin_port = uint16_t(n);
    } else if (a == "--distribution") {
      v = value();
      if (v == "uniform") {
        o.traffic.distribution = Distribution::uniform;
      } else if (v == "zipf") {
        o.traffic.distribution = Distribution::zipf;
      } else {
        err = "--distribution: uniform or zipf";
      }
    } else if (a == "--ring") {
      v = value();
      o.ring = uint32_t(parse_count(v));
      if (o.ring < 64 || (o.ring & (o.ring - 1))) err = "--ring: a power of two, at least 64";
    } else if (a == "--flow-capacity") {
      o.flow_capacity = parse_count(value());
    } else if (a == "--seed") {
      o.seed = parse_count(value());
    } else if (a == "--attempts") {
      v = value();
      o.attempts = uint32_t(parse_count(v));
      if (o.attempts < 1 || o.attempts > 20) err = "--attempts: 1 .. 20";
    } else if (a == "--testpmd") {
      o.testpmd = value();
    } else if (a == "--json") {
      o.json_path = value();
    } else if (a == "--csv") {
      o.csv_path = value();
    } else if (a == "--plot") {
      o.plot_path = value();
    } else if (a == "--sweep") {
      v = value();
      const size_t eq = v.find('=');
      if (eq == std::string::npos) {
        err = "--sweep: key=v1,v2,...";
      } else {
        o.sweep_key = v.substr(0, eq);
        o.sweep_values = split(v.substr(eq + 1), ',');
        TrafficSpec probe = o.traffic;
        for (const std::string& s : o.sweep_values) {
          if (err.empty()) err = apply(probe, o.sweep_key, s);
        }
      }
    } else if (a.rfind("--", 0) == 0 && a.size() > 2) {
      v = value();
      if (err.empty()) err = apply(o.traffic, a.substr(2), v);
    } else {
      err = "unexpected argument " + a;
    }
    if (!err.empty()) return false;
  }
  return true;
}

// The testpmd baseline (perf/testpmd.hpp) and what it was, for the report.
double testpmd_pps(const std::string& testpmd, unsigned frame_len, double seconds,
                   std::string& note) {
  note = "dpdk-testpmd macswap, net_null0 copy=1 size=" + std::to_string(frame_len) +
         ", 1 forwarding core (lcore 1)";
  const double pps = testpmd_macswap_pps(testpmd, 1, frame_len, seconds);
  if (pps == 0) note += ": no Rx-pps read (is " + testpmd + " installed?)";
  return pps;
}

int smoke(Testbed& bed, const Options& o) {
  // A TCP/IPv4 run with handshakes and a backend removed half-way, then UDP/IPv6: low rates,
  // where nothing may be dropped and every frame must be accounted for.
  std::vector<RunOptions> runs(2);
  TrafficSpec& a = runs[0].traffic;
  a.flows = 1024;
  a.new_share = 0.05;
  a.rate_pps = 100000;
  a.seconds = 2;
  a.backends = 16;
  a.churn = true;
  TrafficSpec& b = runs[1].traffic;
  b.flows = 1024;
  b.udp = true;
  b.ipv6 = true;
  b.new_share = 0.02;
  b.rate_pps = 100000;
  b.seconds = 1;
  b.backends = 16;
  int failed = 0;
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (size_t i = 0; i < runs.size(); ++i) {
    runs[i].seed = o.seed + i;
    Point p;
    p.label = i == 0 ? "smoke-tcp4-churn" : "smoke-udp6";
    p.magline = run_once(bed, runs[i]);
    print_point(p, stdout);
    std::vector<std::string> errors = smoke_errors(p.magline);
    if (!p.magline.error.empty()) errors.insert(errors.begin(), p.magline.error);
    for (const std::string& e : errors)
      std::printf("   SMOKE FAILED: %s\n", e.c_str());
    failed += !errors.empty();
    nlohmann::ordered_json j = to_json(p);
    j["smoke_errors"] = errors;
    all.push_back(j);
  }
  std::printf("%s\n", all.dump().c_str());
  if (!o.json_path.empty()) std::ofstream(o.json_path) << all.dump(2) << "\n";
  std::printf("smoke: %s\n", failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}

// `run`: one run on the test bed (in process, or over memif).
int measure(const std::function<RunResult(const RunOptions&)>& run, const Options& o,
            const std::map<unsigned, double>& testpmd,
            const std::map<unsigned, std::string>& notes) {
  std::vector<TrafficSpec> specs;
  std::vector<std::string> labels;
  if (o.sweep_key.empty()) {
    specs.push_back(o.traffic);
    labels.push_back("run");
  } else {
    for (const std::string& v : o.sweep_values) {
      TrafficSpec t = o.traffic;
      apply(t, o.sweep_key, v);
      specs.push_back(t);
      labels.push_back(v);
    }
  }
  std::vector<Point> points;
  int rc = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    RunOptions ro;
    ro.traffic = specs[i];
    ro.flow_capacity = o.flow_capacity;
    ro.seed = o.seed;
    ro.forwarding = o.memif ? Forwarding::magline_process : Forwarding::magline;
    Point p;
    p.label = labels[i];
    const unsigned len = Layout::of(specs[i]).len;
    if (auto it = testpmd.find(len); it != testpmd.end()) {
      p.testpmd_pps = it->second;
      p.testpmd_note = notes.at(len);
    } else {
      p.testpmd_note = "not measured (--testpmd none or --no-ring-baseline)";
    }
    // The baseline: the same generated frames through the same rings (a MAC swap on lcore 1)
    // or the same memif (testpmd's macswap in another process). A disturbed baseline (below
    // 0.8x testpmd: the two cores' caches far apart, see docs/performance.md) is measured again
    // with Magline after it, up to --attempts times; the last attempt is reported either way.
    for (uint32_t attempt = 1;; ++attempt) {
      if (!o.memif) p.core_round_trip_cycles = line_round_trip_cycles(ro.worker_lcore);
      if (o.ring_baseline && (!o.memif || o.testpmd != "none")) {
        RunOptions base = ro;
        base.forwarding = o.memif ? Forwarding::testpmd_macswap : Forwarding::ring_macswap;
        base.traffic.new_share = 0;
        base.traffic.churn = false;
        p.ring = run(base);
        if (o.memif) {
          p.testpmd_pps = p.ring->error.empty() ? figures_of(*p.ring).tx_pps : 0;
          p.testpmd_note = p.ring->error.empty() ? p.ring->forwarder_note + ", same generator"
                                                 : "failed: " + p.ring->error;
          if (!p.ring->error.empty()) std::printf("baseline failed: %s\n", p.ring->error.c_str());
        }
      }
      p.magline = run(ro);
      p.attempts = attempt;
      if (!disturbed(p) || attempt >= o.attempts || !p.magline.error.empty()) break;
      std::printf("attempt %u disturbed: ring MAC swap %.2f Mpps, testpmd %.2f (Magline %.2f): "
                  "again\n", attempt, figures_of(*p.ring).tx_pps / 1e6, p.testpmd_pps / 1e6,
                  figures_of(p.magline).tx_pps / 1e6);
      std::fflush(stdout);
    }
    print_point(p, stdout);
    std::fflush(stdout);
    if (!p.magline.error.empty() || !accounting_errors(p.magline).empty()) rc = 1;
    points.push_back(std::move(p));
  }
  nlohmann::ordered_json j;
  if (o.sweep_key.empty()) {
    j = to_json(points[0]);
  } else {
    j["sweep"] = o.sweep_key;
    j["points"] = nlohmann::ordered_json::array();
    for (const Point& p : points)
      j["points"].push_back(to_json(p));
  }
  std::printf("%s\n", j.dump().c_str());
  if (!o.json_path.empty()) std::ofstream(o.json_path) << j.dump(2) << "\n";
  if (!o.csv_path.empty() || !o.plot_path.empty()) {
    const std::string csv_path = o.csv_path.empty() ? o.plot_path + ".csv" : o.csv_path;
    std::ofstream(csv_path) << csv_of(points, o.sweep_key.empty() ? "run" : o.sweep_key);
    std::printf("csv: %s\n", csv_path.c_str());
    if (!o.plot_path.empty()) {
      std::string why;
      const std::string param = o.sweep_key.empty() ? "run" : o.sweep_key;
      const std::string title =
          o.memif ? "magline-bench: magline run (one worker) over net_memif, by " + param
                  : "magline-bench: one worker, net_ring, by " + param;
      if (plot(csv_path, param, o.plot_path, title, o.memif, why)) {
        std::printf("plot: %s\n", o.plot_path.c_str());
      } else {
        std::printf("plot: not drawn: %s\n", why.c_str());
      }
    }
  }
  return rc;
}

// --memif: this process is the generator and sink on lcore 0 only; each run starts its peer.
int run_memif_mode(Options o) {
  MemifOptions& m = o.memif_options;
  const std::string tag = std::to_string(getpid());
  if (m.socket.empty()) m.socket = "magline-bench-" + tag;
  if (m.admin_port == 0) m.admin_port = uint16_t(19100 + getpid() % 1000);
  if (m.magline.empty()) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    m.magline = (self.parent_path().parent_path() / "control" / "magline").string();
  }
  m.testpmd = o.testpmd == "none" ? "dpdk-testpmd" : o.testpmd;
  if (access(m.magline.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "magline-bench: --memif needs the magline binary: %s is not executable "
                 "(build it: ninja -C build-bench control/magline, or give --magline PATH)\n",
                 m.magline.c_str());
    return 2;
  }
  m.workdir = "/tmp/magline-bench-" + tag;
  std::error_code ec;
  std::filesystem::create_directories(m.workdir, ec);
  if (ec) {
    std::fprintf(stderr, "magline-bench: cannot create %s\n", m.workdir.c_str());
    return 1;
  }
  const std::string prefix = "magline-bench-" + tag;
  std::string runtime_dir;
  int rc = 1;
  {
    auto eal = dpdk::EalSession::create({"-l", std::to_string(m.main_core), "--no-huge", "-m",
                                         "512", "--no-shconf", "--no-pci", "--no-telemetry",
                                         "--file-prefix", prefix, "--log-level=*:warning"});
    if (!eal) {
      std::fprintf(stderr, "magline-bench: %s\n", eal.error().message.c_str());
      return 1;
    }
    runtime_dir = eal->runtime_dir();
    auto bed = MemifBed::create(m);
    if (!bed) {
      std::fprintf(stderr, "magline-bench: memif port: %s\n", bed.error().message.c_str());
    } else {
      MemifBed& b = **bed;
      rc = measure([&b](const RunOptions& ro) { return run_memif(b, ro); }, o, {}, {});
    }
  }
  std::filesystem::remove(runtime_dir, ec);
  if (!m.keep_workdir) std::filesystem::remove_all(m.workdir, ec);
  return rc;
}

int run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  Options o;
  std::string err;
  const bool parsed = parse(argc, argv, o, err);
  if (parsed && o.memif && o.smoke) err = "--smoke runs in process only (without --memif)";
  if (!parsed || !err.empty()) {
    std::fprintf(stderr, "magline-bench: %s\n%s", err.c_str(), kUsage);
    return 2;
  }
  if (o.memif) return run_memif_mode(o);
  // testpmd first, before this process's EAL takes the cores: one run per frame size.
  std::map<unsigned, double> testpmd;
  std::map<unsigned, std::string> notes;
  if (!o.smoke && o.testpmd != "none") {
    std::vector<TrafficSpec> specs{o.traffic};
    for (const std::string& v : o.sweep_values) {
      specs.push_back(o.traffic);
      apply(specs.back(), o.sweep_key, v);
    }
    for (const TrafficSpec& t : specs) {
      const unsigned len = Layout::of(t).len;
      if (testpmd.count(len)) continue;
      std::string note;
      testpmd[len] = testpmd_pps(o.testpmd, len, std::max(3.0, t.seconds) + 2, note);
      notes[len] = note;
      std::printf("baseline: %s: %.2f Mpps\n", note.c_str(), testpmd[len] / 1e6);
    }
  }
  const std::string prefix = "magline-bench-" + std::to_string(getpid());
  std::string runtime_dir;
  int rc = 1;
  {
    auto eal = dpdk::EalSession::create({"-l", "0,1", "--no-huge", "-m", "512", "--no-shconf",
                                         "--no-pci", "--no-telemetry", "--file-prefix", prefix,
                                         "--log-level=*:warning"});
    if (!eal) {
      std::fprintf(stderr, "magline-bench: %s\n", eal.error().message.c_str());
      return 1;
    }
    runtime_dir = eal->runtime_dir();
    auto bed = Testbed::create(o.ring);
    if (!bed) {
      std::fprintf(stderr, "magline-bench: %s\n", bed.error().message.c_str());
    } else {
      Testbed& b = **bed;
      rc = o.smoke ? smoke(b, o)
                   : measure([&b](const RunOptions& ro) { return run_once(b, ro); }, o, testpmd,
                             notes);
    }
  }
  std::error_code ignored;
  std::filesystem::remove(runtime_dir, ignored);
  return rc;
}

}  // namespace
}  // namespace magline::bench

int main(int argc, char** argv) {
  return magline::bench::run(argc, argv);
}
