// magline-bench's figures: what a run's counters mean (rates, cycles, ratios), the checks that
// its counts add up, and the outputs (table, JSON, CSV, gnuplot PNG). Main lcore, after runs.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "perf/bench/engine.hpp"

namespace magline::bench {

// One measured point: Magline, and in the same process the baselines.
struct Point {
  std::string label;  // the sweep's value ("1M", "512"), or "run"
  RunResult magline;
  std::optional<RunResult> ring;  // the same traffic through a MAC swap on the same rings
  double testpmd_pps = 0;         // dpdk-testpmd macswap on net_null, same core; 0: not measured
  std::string testpmd_note;       // how, or why not
  uint32_t attempts = 1;          // runs of this point (more while the baseline was disturbed)
  // In process: a cache line's round trip between the generator's and the worker's cores
  // (line_round_trip_cycles()), taken before the last attempt's baseline; 0: not measured.
  double core_round_trip_cycles = 0;
};

struct Figures {
  double tx_pps = 0, rx_pps = 0;  // Magline's counters over the window
  double generated_pps = 0;
  double cycles_per_packet = 0;       // every cycle of the worker's core over the window / frames
  double busy_cycles_per_packet = 0;  // without the idle polls' cycles
  double idle_share = 0;              // of the worker core's cycles spent on idle polls
  double capacity_pps = 0;            // hz / busy cycles per packet: what a saturated worker does
  double new_connections_per_s = 0;   // Magline's counter (opened)
  double handshakes_per_s = 0;        // SYN-ACKs the clients received
  const char* bound = "";             // "magline", "generator" or "offered rate"
};

Figures figures_of(const RunResult& r);
// Whether the run drove another process over net_memif (magline run, or testpmd).
bool across_processes(const RunResult& r);
// What the run drove, and how (for the JSON and the plots).
std::string device_of(const RunResult& r);
// The same generator and rings through a MAC swap did less than 0.8x testpmd's macswap (or
// than 0.8x the offered rate, when that is lower): the run shared its cores with something
// else, or the cores' caches are far apart (docs/performance.md), figures not to quote.
bool disturbed(const Point& p);

// The identities every run must satisfy once drained: frames into Magline = frames it
// received = transmitted + dropped + slow path; transmitted = received by the sink + refused by
// the ring. Empty when they hold.
std::vector<std::string> accounting_errors(const RunResult& r);
// The smoke test's expectations at a low rate on top of those: no drops, every frame and
// handshake delivered, no established frame lost to the churn, the offered rate reached.
std::vector<std::string> smoke_errors(const RunResult& r);

nlohmann::ordered_json to_json(const Point& p);
void print_point(const Point& p, std::FILE* out);

// CSV: one line per point; `param` names the swept column.
std::string csv_of(const std::vector<Point>& points, const std::string& param);
// Draws the CSV with gnuplot into `png` (`memif`: no ring MAC swap column). False (and why) if
// gnuplot is missing or fails.
bool plot(const std::string& csv_path, const std::string& param, const std::string& png,
          const std::string& title, bool memif, std::string& why);

}  // namespace magline::bench
