#include "perf/bench/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

namespace magline::bench {

namespace {

double ns(const RunResult& r, double cycles) {
  return r.hz > 0 ? cycles * 1e9 / r.hz : 0;
}
double ratio(double a, double b) {
  return b > 0 ? a / b : 0;
}

uint64_t total_drops(const RunResult& r) {
  uint64_t s = 0;
  for (uint64_t d : r.drops)
    s += d;
  return s;
}

const char* proto_name(const TrafficSpec& t) {
  if (t.udp) return t.ipv6 ? "udp6" : "udp4";
  return t.ipv6 ? "tcp6" : "tcp4";
}

}  // namespace

std::string device_of(const RunResult& r) {
  if (r.options.forwarding == Forwarding::magline_process) {
    return "net_memif to another process: " + r.forwarder_note +
           "; generator and sink on lcore 0 of this one";
  }
  return "net_ring (in process), one Magline worker on lcore " +
         std::to_string(r.options.worker_lcore) + ", generator and sink on lcore 0";
}

bool across_processes(const RunResult& r) {
  return r.options.forwarding == Forwarding::magline_process ||
         r.options.forwarding == Forwarding::testpmd_macswap;
}

bool disturbed(const Point& p) {
  // Across processes the baseline is testpmd itself, through the same memif: no second opinion.
  if (!p.ring || p.testpmd_pps <= 0 || across_processes(p.magline)) return false;
  // At an offered rate (--rate) the baseline is asked for no more than that rate.
  const double rate = p.magline.options.traffic.rate_pps;
  const double want = rate > 0 ? std::min(p.testpmd_pps, rate) : p.testpmd_pps;
  return figures_of(*p.ring).tx_pps < 0.8 * want;
}

// A Magline figure against testpmd, or nothing when the harness could not show it: its own
// baseline (the ring MAC swap) fell short of 0.8x testpmd, so the ratio would measure the
// generator and whatever else ran, not Magline (issue 19).
std::optional<double> vs_testpmd(const Point& p, double pps) {
  if (disturbed(p)) return std::nullopt;
  return ratio(pps, p.testpmd_pps);
}

nlohmann::ordered_json or_null(std::optional<double> v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

Figures figures_of(const RunResult& r) {
  Figures f;
  const Window& w = r.window;
  if (w.seconds <= 0) return f;
  f.tx_pps = double(w.tx) / w.seconds;
  f.rx_pps = double(w.rx) / w.seconds;
  f.generated_pps = double(w.generated) / w.seconds;
  const double idle = std::min(double(w.cycles), double(w.idle_polls) * r.idle_poll_cycles);
  f.idle_share = w.cycles > 0 ? idle / double(w.cycles) : 0;
  if (w.rx > 0) f.cycles_per_packet = double(w.cycles) / double(w.rx);
  // Taking the idle polls' cycles out estimates the cost of a frame only near saturation: at a
  // low load every poll carries a frame or two and the per-poll cost dominates (and an idle
  // poll's cost, measured without traffic, is only roughly what it is during the run).
  if (w.rx > 0 && f.idle_share < 0.5) {
    f.busy_cycles_per_packet = (double(w.cycles) - idle) / double(w.rx);
    f.capacity_pps = f.busy_cycles_per_packet > 0 ? r.hz / f.busy_cycles_per_packet : 0;
  }
  f.new_connections_per_s = double(w.new_connections) / w.seconds;
  f.handshakes_per_s = double(w.handshakes) / w.seconds;
  if (r.options.traffic.rate_pps > 0) {
    f.bound = "offered rate";
  } else if (f.idle_share < 0.02 && w.backpressure > 0) {
    f.bound = "magline";
  } else {
    f.bound = "generator";
  }
  return f;
}

std::vector<std::string> accounting_errors(const RunResult& r) {
  std::vector<std::string> e;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) e.push_back(what);
  };
  const std::string& into = std::to_string(r.injected_total);
  const uint64_t drops = total_drops(r);
  const bool is_magline = r.options.forwarding == Forwarding::magline ||
                          r.options.forwarding == Forwarding::magline_process;
  const uint64_t sink = r.backend_rx + r.client_rx;
  expect(r.injected_total == r.total.rx, "frames into Magline's port (" + into +
                                             ") != frames it received (" +
                                             std::to_string(r.total.rx) + ")");
  if (is_magline) {
    expect(r.total.rx == r.total.tx + drops + r.to_slow_path,
           "Magline received " + std::to_string(r.total.rx) + " != transmitted " +
               std::to_string(r.total.tx) + " + dropped " + std::to_string(drops) +
               " + slow path " + std::to_string(r.to_slow_path));
    // In process the harness reads the slow-path ring itself; across processes Magline's
    // control thread takes those frames (ARP, NDP) and its answers are not in tx_packets.
    if (r.options.forwarding == Forwarding::magline) {
      expect(r.to_slow_path == r.slow_received + r.slow_full,
             "slow-path frames " + std::to_string(r.to_slow_path) + " != found in its ring " +
                 std::to_string(r.slow_received) + " + ring full " + std::to_string(r.slow_full));
    }
    // tx_full also counts the control thread's frames across processes: exact only without it.
    const bool exact = r.options.forwarding == Forwarding::magline || r.tx_full == 0;
    expect(exact ? r.total.tx == sink + r.tx_full
                 : (sink <= r.total.tx && r.total.tx <= sink + r.tx_full),
           "transmitted " + std::to_string(r.total.tx) + " != received by backends " +
               std::to_string(r.backend_rx) + " + by clients " + std::to_string(r.client_rx) +
               " + refused by the port " + std::to_string(r.tx_full));
  } else {
    expect(r.total.rx == r.total.tx + r.tx_full && r.total.tx == sink,
           "the baseline received " + std::to_string(r.total.rx) + ", transmitted " +
               std::to_string(r.total.tx) + " (the sink saw " + std::to_string(sink) +
               "), refused " + std::to_string(r.tx_full));
  }
  expect(r.injected_total ==
             r.generated_total + r.synack_sent + r.finack_sent + r.fin_back_sent + r.ack_sent +
                 r.udp_answer_sent + r.neighbour_sent,
         "frames into the port " + into +
             " != generated + SYN-ACKs + FIN+ACKs both ways + handshake ACKs + UDP answers + "
             "ARP/NDP frames");
  expect(r.malformed == 0, std::to_string(r.malformed) + " frames not as Magline should send");
  expect(r.warmup_opened == r.options.traffic.flows, std::to_string(r.warmup_opened) + " of " +
                                                         std::to_string(r.options.traffic.flows) +
                                                         " flows open before the measurement");
  return e;
}

std::vector<std::string> smoke_errors(const RunResult& r) {
  std::vector<std::string> e = accounting_errors(r);
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) e.push_back(what);
  };
  const TrafficSpec& t = r.options.traffic;
  expect(total_drops(r) == 0 && r.tx_full == 0 && r.to_slow_path == 0,
         "drops at a low rate: " + std::to_string(total_drops(r)) + " dropped, " +
             std::to_string(r.tx_full) + " refused by the ring, " + std::to_string(r.to_slow_path) +
             " to the slow path");
  // Everything the clients sent reached a backend, or was answered with a reset (churn).
  const uint64_t client_frames = r.generated_total + r.finack_sent + r.ack_sent;
  expect(client_frames == r.backend_rx + r.rst_rx,
         "client frames " + std::to_string(client_frames) + " != received by backends " +
             std::to_string(r.backend_rx) + " + reset " + std::to_string(r.rst_rx));
  if (t.udp) {
    expect(r.udp_answer_sent >= t.flows && r.udp_answer_rx == r.udp_answer_sent,
           "UDP answers: " + std::to_string(r.udp_answer_sent) + " sent for " +
               std::to_string(t.flows) + " flows, " + std::to_string(r.udp_answer_rx) +
               " received");
  } else {
    expect(r.synack_rx == r.syn_sent && r.synack_sent == r.syn_sent,
           "handshakes: " + std::to_string(r.syn_sent) + " SYNs, " + std::to_string(r.synack_sent) +
               " SYN-ACKs sent, " + std::to_string(r.synack_rx) + " received");
    expect(t.new_share == 0 || r.syn_sent > 0, "no new connection was opened");
    expect(r.fin_back_rx == r.fin_back_sent,
           "backends' FIN+ACKs: " + std::to_string(r.fin_back_sent) + " sent, " +
               std::to_string(r.fin_back_rx) + " received");
  }
  const Figures f = figures_of(r);
  expect(t.rate_pps <= 0 || std::abs(f.generated_pps / t.rate_pps - 1) < 0.1,
         "offered " + std::to_string(f.generated_pps) + " pps, asked for " +
             std::to_string(t.rate_pps));
  expect(r.oneway_samples > 0, "no latency sample");
  if (t.churn) {
    const ChurnResult& c = r.churn;
    expect(c.done, "the backend was not removed");
    expect(c.sent_kept == c.received_kept, "frames of connections on remaining backends lost: " +
                                               std::to_string(c.sent_kept - c.received_kept) +
                                               " of " + std::to_string(c.sent_kept));
    expect(c.flows_moved_kept == 0,
           std::to_string(c.flows_moved_kept) + " flows on remaining backends moved");
    expect(c.flows_on_removed > 0 && c.flows_moved <= c.flows_on_removed,
           "flows moved " + std::to_string(c.flows_moved) + ", on the removed backend " +
               std::to_string(c.flows_on_removed));
  }
  return e;
}

nlohmann::ordered_json to_json(const Point& p) {
  const RunResult& r = p.magline;
  const TrafficSpec& t = r.options.traffic;
  const Figures f = figures_of(r);
  nlohmann::ordered_json j;
  j["label"] = p.label;
  j["device"] = device_of(r);
  j["traffic"] = {{"flows", t.flows},
                  {"distribution", t.distribution == Distribution::zipf ? "zipf" : "uniform"},
                  {"zipf_s", t.zipf_s},
                  {"new_share", t.new_share},
                  {"frame_bytes", r.layout.len + 4},
                  {"protocol", proto_name(t)},
                  {"rate_pps", t.rate_pps},
                  {"seconds", t.seconds},
                  {"backends", t.backends},
                  {"churn", t.churn}};
  if (!r.error.empty()) j["error"] = r.error;
  const double ring_pps = p.ring ? figures_of(*p.ring).tx_pps : 0;
  j["disturbed"] = disturbed(p);
  j["attempts"] = p.attempts;
  if (across_processes(r)) {
    j["baseline"] = {{"testpmd_macswap_pps", p.testpmd_pps},
                     {"testpmd", p.testpmd_note},
                     {"testpmd_accounting_ok", p.ring && accounting_errors(*p.ring).empty()}};
  } else {
    j["baseline"] = {{"testpmd_macswap_pps", p.testpmd_pps},
                     {"testpmd", p.testpmd_note},
                     {"ring_macswap_pps", ring_pps},
                     {"ring_macswap_bound", p.ring ? figures_of(*p.ring).bound : ""},
                     {"core_round_trip_cycles", p.core_round_trip_cycles}};
  }
  j["magline"] = {{"window_seconds", r.window.seconds},
                  {"tx_pps", f.tx_pps},
                  {"rx_pps", f.rx_pps},
                  {"tx_vs_testpmd", or_null(vs_testpmd(p, f.tx_pps))},
                  {"tx_vs_ring_macswap", ratio(f.tx_pps, ring_pps)},
                  {"generated_pps", f.generated_pps},
                  {"cycles_per_packet", f.cycles_per_packet},
                  {"busy_cycles_per_packet", f.busy_cycles_per_packet},
                  {"idle_share", f.idle_share},
                  {"idle_poll_cycles", r.idle_poll_cycles},
                  {"polls", r.window.polls},
                  {"idle_polls", r.window.idle_polls},
                  {"capacity_pps", f.capacity_pps},
                  {"capacity_vs_testpmd", or_null(vs_testpmd(p, f.capacity_pps))},
                  {"bound", f.bound},
                  {"new_connections_per_s", f.new_connections_per_s},
                  {"handshakes_per_s", f.handshakes_per_s},
                  {"flow_capacity", r.flow_capacity},
                  {"flow_table_bytes", r.flow_table_bytes},
                  {"flow_entries_at_end", r.flows_occupied},
                  {"warmup_seconds", r.warmup_seconds}};
  if (!across_processes(r)) j["magline"]["process_rss_bytes"] = r.forwarder_rss_bytes;
  if (across_processes(r)) {
    j["magline"]["window_edge_error_s"] = r.window_edge_error_s;
    j["magline"]["process_peak_rss_bytes"] = r.forwarder_rss_bytes;
    j["magline"]["neighbour_frames_received"] = r.neighbour_rx;
    j["magline"]["neighbour_frames_sent"] = r.neighbour_sent;
  }
  j["latency_ns"] = {
      {"oneway_p50", ns(r, r.oneway_p50)},       {"oneway_p99", ns(r, r.oneway_p99)},
      {"oneway_p999", ns(r, r.oneway_p999)},     {"oneway_max", ns(r, r.oneway_max)},
      {"oneway_samples", r.oneway_samples},      {"handshake_p50", ns(r, r.handshake_p50)},
      {"handshake_p99", ns(r, r.handshake_p99)}, {"handshake_p999", ns(r, r.handshake_p999)},
      {"handshake_samples", r.handshake_samples}};
  nlohmann::ordered_json drops = nlohmann::ordered_json::object();
  for (size_t i = 0; i < r.drops.size(); ++i) {
    if (r.drops[i]) drops[std::string(dp::drop_reason_name(dp::DropReason(i)))] = r.drops[i];
  }
  j["drops"] = drops;
  j["counts"] = {{"injected", r.injected_total},
                 {"magline_rx", r.total.rx},
                 {"magline_tx", r.total.tx},
                 {"tx_full", r.tx_full},
                 {"to_slow_path", r.to_slow_path},
                 {"rejected", r.rejected},
                 {"reset_removed_backend", r.reset_removed_backend},
                 {"rescheduled", r.rescheduled},
                 {"stateless", r.stateless},
                 {"generated", r.generated_total},
                 {"syn_sent", r.syn_sent},
                 {"synack_rx", r.synack_rx},
                 {"fin_rx", r.fin_rx},
                 {"ack_sent", r.ack_sent},
                 {"udp_answer_sent", r.udp_answer_sent},
                 {"udp_answer_rx", r.udp_answer_rx},
                 {"rst_rx", r.rst_rx},
                 {"backend_rx", r.backend_rx},
                 {"client_rx", r.client_rx},
                 {"malformed", r.malformed}};
  if (t.churn) {
    const ChurnResult& c = r.churn;
    j["churn"] = {
        {"removed_backend", c.removed_backend},
        {"flows_observed", c.flows_observed},
        {"flows_on_removed", c.flows_on_removed},
        {"flows_moved", c.flows_moved},
        {"moved_share", ratio(double(c.flows_moved), double(c.flows_observed))},
        {"ideal_share", t.backends ? 1.0 / t.backends : 0},
        {"flows_moved_from_remaining", c.flows_moved_kept},
        {"frames_lost_remaining", c.sent_kept - std::min(c.sent_kept, c.received_kept)},
        {"frames_sent_remaining", c.sent_kept},
        {"frames_lost_removed", c.sent_removed - std::min(c.sent_removed, c.received_removed)},
        {"frames_sent_removed", c.sent_removed},
        {"resets", c.resets}};
  }
  const auto errors = accounting_errors(r);
  j["accounting_ok"] = errors.empty();
  if (!errors.empty()) j["accounting_errors"] = errors;
  return j;
}

void print_point(const Point& p, std::FILE* out) {
  const RunResult& r = p.magline;
  const TrafficSpec& t = r.options.traffic;
  const Figures f = figures_of(r);
  std::fprintf(out, "\n== %s: %u flows (%s), %s, %u B frames, new %.2f, %u backends, %s%s\n",
               p.label.c_str(), t.flows, t.distribution == Distribution::zipf ? "zipf" : "uniform",
               proto_name(t), unsigned(r.layout.len + 4), t.new_share, t.backends,
               t.rate_pps > 0 ? (std::to_string(uint64_t(t.rate_pps)) + " pps").c_str()
                              : "as fast as possible",
               t.churn ? ", churn" : "");
  if (!r.error.empty()) {
    std::fprintf(out, "   failed: %s\n", r.error.c_str());
    return;
  }
  const double ring_pps = p.ring ? figures_of(*p.ring).tx_pps : 0;
  std::fprintf(out, "%-34s %10s %11s %11s\n", "", "Mpps", "vs testpmd", "vs ring-fwd");
  // Magline's rows carry no ratio to testpmd when the harness was disturbed (vs_testpmd()).
  auto row = [&](const char* name, double pps, bool magline = false) {
    const std::optional<double> v = magline ? vs_testpmd(p, pps) : ratio(pps, p.testpmd_pps);
    if (v) {
      std::fprintf(out, "%-34s %10.2f %11.2f %11.2f\n", name, pps / 1e6, *v,
                   ratio(pps, ring_pps));
    } else {
      std::fprintf(out, "%-34s %10.2f %11s %11.2f\n", name, pps / 1e6, "-", ratio(pps, ring_pps));
    }
  };
  const bool memif = across_processes(r);
  if (memif) {
    if (p.ring) row("testpmd macswap (same gen, memif)", ring_pps);
  } else {
    if (p.testpmd_pps > 0) row("testpmd macswap (net_null, core 1)", p.testpmd_pps);
    if (p.ring) row("ring macswap (same gen, core 1)", ring_pps);
  }
  row("Magline worker, transmitted", f.tx_pps, true);
  row("Magline worker, capacity (busy)", f.capacity_pps, true);
  if (disturbed(p)) {
    std::fprintf(out,
                 "   DISTURBED: the ring MAC swap did less than 0.8x testpmd (the generator or "
                 "something else on these cores is the bound): no ratio to testpmd\n");
  }
  if (p.core_round_trip_cycles > 0) {
    std::fprintf(out,
                 "   a cache line from the generator's core to the worker's and back: %.0f "
                 "cycles (each frame's lines cross twice)\n",
                 p.core_round_trip_cycles);
  }
  std::fprintf(out, "   bound by %s; worker idle %.1f%%; %.0f cycles/frame (%.0f busy)\n", f.bound,
               f.idle_share * 100, f.cycles_per_packet, f.busy_cycles_per_packet);
  std::fprintf(out, "   latency one way p50/p99/p99.9 %.2f / %.2f / %.2f us (%lu samples)\n",
               ns(r, r.oneway_p50) / 1e3, ns(r, r.oneway_p99) / 1e3, ns(r, r.oneway_p999) / 1e3,
               (unsigned long)r.oneway_samples);
  if (r.handshake_samples) {
    std::fprintf(out, "   handshake SYN->SYN-ACK p50/p99/p99.9 %.2f / %.2f / %.2f us\n",
                 ns(r, r.handshake_p50) / 1e3, ns(r, r.handshake_p99) / 1e3,
                 ns(r, r.handshake_p999) / 1e3);
  }
  if (t.new_share > 0) {
    std::fprintf(out, "   new connections %.3f M/s (handshakes completed %.3f M/s)\n",
                 f.new_connections_per_s / 1e6, f.handshakes_per_s / 1e6);
  }
  std::fprintf(out, "   flow table %lu slots, %.0f MiB", (unsigned long)r.flow_capacity,
               double(r.flow_table_bytes) / 1048576.0);
  if (memif) {
    std::fprintf(out, "; magline process peak RSS %.0f MiB; window edges known to %.2f ms",
                 double(r.forwarder_rss_bytes) / 1048576.0, r.window_edge_error_s * 1e3);
  } else if (r.forwarder_rss_bytes) {
    std::fprintf(out, "; this process's RSS %.0f MiB", double(r.forwarder_rss_bytes) / 1048576.0);
  }
  std::fprintf(out, "\n");
  std::string drops;
  for (size_t i = 0; i < r.drops.size(); ++i) {
    if (r.drops[i]) {
      // Appended apart: g++ 12 at -O3 warns (-Wrestrict) on the concatenation.
      drops += ' ';
      drops += dp::drop_reason_name(dp::DropReason(i));
      drops += '=';
      drops += std::to_string(r.drops[i]);
    }
  }
  std::fprintf(out, "   drops:%s%s\n", drops.empty() ? " none" : drops.c_str(),
               r.tx_full ? (" tx_full=" + std::to_string(r.tx_full)).c_str() : "");
  if (t.churn) {
    const ChurnResult& c = r.churn;
    std::fprintf(out,
                 "   churn: backend %u removed; flows moved %lu of %lu (%.4f, ideal %.4f), "
                 "from remaining backends %lu; frames lost on remaining %lu of %lu; "
                 "resets %lu\n",
                 c.removed_backend, (unsigned long)c.flows_moved, (unsigned long)c.flows_observed,
                 ratio(double(c.flows_moved), double(c.flows_observed)), 1.0 / t.backends,
                 (unsigned long)c.flows_moved_kept,
                 (unsigned long)(c.sent_kept - std::min(c.sent_kept, c.received_kept)),
                 (unsigned long)c.sent_kept, (unsigned long)c.resets);
  }
  for (const std::string& e : accounting_errors(r)) {
    std::fprintf(out, "   ACCOUNTING: %s\n", e.c_str());
  }
}

std::string csv_of(const std::vector<Point>& points, const std::string& param) {
  std::ostringstream o;
  o << "swept_" << param
    << ",flows,frame_bytes,protocol,new_share,magline_mpps,capacity_mpps,testpmd_mpps,"
       "ring_mpps,vs_testpmd,vs_ring,cycles_per_packet,busy_cycles_per_packet,bound,"
       "oneway_p50_us,oneway_p99_us,oneway_p999_us,new_conn_per_s,drops,disturbed\n";
  for (const Point& p : points) {
    const RunResult& r = p.magline;
    const Figures f = figures_of(r);
    const double ring_pps = p.ring ? figures_of(*p.ring).tx_pps : 0;
    const TrafficSpec& t = r.options.traffic;
    o << p.label << "," << t.flows << "," << (r.layout.len + 4) << "," << proto_name(t) << ","
      << t.new_share << "," << f.tx_pps / 1e6 << "," << f.capacity_pps / 1e6 << ","
      << p.testpmd_pps / 1e6 << "," << ring_pps / 1e6 << ","
      << vs_testpmd(p, f.tx_pps).value_or(std::nan("")) << "," << ratio(f.tx_pps, ring_pps) << "," << f.cycles_per_packet << ","
      << f.busy_cycles_per_packet << "," << f.bound << "," << ns(r, r.oneway_p50) / 1e3 << ","
      << ns(r, r.oneway_p99) / 1e3 << "," << ns(r, r.oneway_p999) / 1e3 << ","
      << f.new_connections_per_s << "," << total_drops(r) + r.tx_full << ","
      << (disturbed(p) ? 1 : 0) << "\n";
  }
  return o.str();
}

bool plot(const std::string& csv_path, const std::string& param, const std::string& png,
          const std::string& title, bool memif, std::string& why) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    why = "gnuplot is not installed (apt-get install gnuplot-nox)";
    return false;
  }
  // Columns: 6 Magline, 7 capacity, 8 testpmd, 9 ring MAC swap (Mpps); the x axis is the sweep's
  // value, in the order measured.
  std::ostringstream s;
  s << "set terminal pngcairo size 900,520 noenhanced\n"
    << "set output '" << png << "'\n"
    << "set datafile separator ','\n"
    << "set key below\n"
    << "set grid ytics\n"
    << "set title '" << title << "'\n"
    << "set xlabel '" << param << "'\n"
    << "set ylabel 'Mpps'\n"
    << "set yrange [0:*]\n"
    << "set style data linespoints\n"
    << "plot '" << csv_path
    << "' every ::1 using 0:8:xticlabels(1) title '"
    << (memif ? "testpmd macswap (same generator, memif)" : "testpmd macswap (net_null)") << "',"
    << (memif ? "" : " '' every ::1 using 0:9 title 'ring macswap (same generator)',")
    << " '' every ::1 using 0:6 title 'Magline transmitted',"
    << " '' every ::1 using 0:($7 > 0 ? $7 : 1/0) title 'Magline capacity (busy cycles)',"
    << " '' every ::1 using 0:($20 > 0 ? $6 : 1/0) with points pt 6 ps 2.5 lc 'red'"
    << " title 'disturbed (ring macswap < 0.8x testpmd)'\n";
  const std::string script = png + ".gp";
  std::ofstream(script) << s.str();
  if (std::system(("gnuplot '" + script + "'").c_str()) != 0) {
    why = "gnuplot failed on " + script;
    return false;
  }
  return true;
}

}  // namespace magline::bench
